"""The backfill flow: rebuild a range of reporting periods, restated or as known at a date.

One coarse step builds the marts (restated: all data and reference data known now,
becoming the current publish; as known at D: only what had been received by the end of
D, with the reference data then in force, under ``asof/D/``); then one step per period
writes that period's reports. A failing period is recorded and never stops the others;
``--only-failed`` repeats just the failed ones.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.progress import progress
from flows.retries import transient_io
from reports.period import write_reports
from transforms import backfill as ledger
from transforms import run as steps
from transforms.periods import end_of_day
from transforms.publish import run_lock


@task(cache_policy=NO_CACHE)
def build_marts(run: steps.Run, plan: ledger.BackfillPlan) -> steps.BuildOutcome:
    steps.stage(run)
    if plan.as_known_at is None:
        return steps.build_and_publish(run)
    root = steps.asof_root(run, plan.as_known_at)
    return steps.build_and_publish(run, until=end_of_day(plan.as_known_at), marts_dir=root / "marts", record=False)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1, retry_condition_fn=transient_io)
def backfill_period(run: steps.Run, plan: ledger.BackfillPlan, outcome: steps.BuildOutcome, period: str) -> list[Path]:
    written = write_reports(steps.backfill_reports_root(run, plan), outcome.reference, [(period, False)],
                            produced_at=run.now, data_as_of=run.now, marts=outcome.publish_dir, tables=outcome.tables,
                            workers=run.workers, due_day=run.settings.due_day,
                            suppression_memo=run.root.suppression_memo)
    return written[(period, False)]


@flow(name="backfill")
def backfill(first: str | None = None, last: str | None = None, data_dir: str | None = None,
             as_known_at: date | None = None, only_failed: bool = False, demo: bool = False) -> dict:
    """Rebuild reporting periods ``first`` to ``last`` (YYYY-MM), restated or as known at a date."""
    logger = get_run_logger()
    run = steps.open_run(Path(data_dir) if data_dir else None, demo=demo)
    with run_lock(run.root.state, run.settings.lock_timeout):
        plan = ledger.plan(run.root.state, first=first, last=last, as_known_at=as_known_at,
                           only_failed=only_failed, latest_period=run.current_period)
        logger.info("backfill %s: %d period(s), %s", plan.backfill_id, len(plan.periods), plan.label)
        outcome = build_marts(run, plan)
        results = []
        with progress(len(plan.periods), f"backfill ({plan.label})") as advance:
            for period in plan.periods:
                state = backfill_period(run, plan, outcome, period, return_state=True)
                if state.is_completed():
                    paths = [str(p) for p in state.result()]
                    results.append(ledger.record(run.root.state, plan, period, "succeeded", outputs=paths))
                else:
                    reason = _reason(state)
                    logger.warning("period %s failed: %s", period, reason)
                    results.append(ledger.record(run.root.state, plan, period, "failed", reason=reason))
                advance(f"{period} {results[-1]['status']}")
    failed = [r["period"] for r in results if r["status"] == "failed"]
    create_table_artifact(key="backfill-periods", description=f"Backfill {plan.backfill_id} ({plan.label})",
                          table=[{k: r[k] for k in ("period", "status", "reason")} for r in results])
    return {"backfill_id": plan.backfill_id, "label": plan.label, "periods": results, "failed": failed,
            "marts": str(outcome.publish_dir)}


def _reason(state) -> str:
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the reason goes to the ledger as one line
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return state.message or "failed"
