"""The nightly flow: the table of contents of a run.

Take the lock, archive what arrived, read it, validate and build the marts, publish
them atomically, write the reports that are due. Each step is one call into
``transforms/`` or ``reports/``; the tasks are coarse (a batch of files each), never
a task per file or row (STACK.md).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from reports.period import TABLES, write_period_reports
from transforms import run as steps
from transforms.publish import read_mart, run_lock


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5,
      retry_condition_fn=lambda task, run, state: isinstance(state.result(raise_on_failure=False), OSError))
def ingest(run: steps.Run) -> list[str]:
    return steps.ingest(run)


@task(cache_policy=NO_CACHE)
def stage(run: steps.Run) -> list[str]:
    return steps.stage(run)


@task(cache_policy=NO_CACHE)
def build_and_publish(run: steps.Run) -> steps.BuildOutcome:
    return steps.build_and_publish(run)


@task(cache_policy=NO_CACHE)
def write_reports(run: steps.Run, outcome: steps.BuildOutcome) -> list[Path]:
    tables = outcome.tables or {name: read_mart(run.root.marts, name) for name in TABLES}
    written: list[Path] = []
    for period, provisional in steps.reports_due(run):
        written += write_period_reports(run.root.reports, tables, run.reference, period=period,
                                        provisional=provisional, produced_at=run.now, data_as_of=run.now)
        steps.mark_reports(run, period, provisional)
    return written


@flow(name="nightly", log_prints=False)
def nightly(data_dir: str | None = None, as_of: date | None = None, demo: bool = False) -> dict:
    """Take whatever arrived, validate it, publish the marts and write the reports that are due."""
    logger = get_run_logger()
    run = steps.open_run(Path(data_dir) if data_dir else None, as_of=as_of, demo=demo)
    with run_lock(run.root.state, run.settings.lock_timeout):
        try:
            ingest(run)
            stage(run)
            outcome = build_and_publish(run)
            reports = write_reports(run, outcome)
        except Exception as exc:
            steps.record_failed_run(run.root, f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise
        summary = steps.finish(run, reports=reports)
    create_markdown_artifact(key="nightly-summary", markdown=_markdown(summary, outcome), description="Nightly run")
    logger.info("run %s: %d file(s) received, %d rejected, %d row(s) rejected, %d report(s) written",
                summary["run_id"], summary["files_received"], summary["files_rejected"],
                summary["rows_rejected"], len(summary["reports"]))
    return summary


def _markdown(summary: dict, outcome: steps.BuildOutcome) -> str:
    lines = [
        f"# Nightly run {summary['run_id']}",
        "",
        f"- outcome: **{summary['outcome']}**",
        f"- files received: {summary['files_received']}; rejected whole: {summary['files_rejected']}; "
        f"with rejected rows: {summary['files_with_row_errors']} ({summary['rows_rejected']} rows)",
        f"- marts: {'rebuilt and published' if outcome.built else 'unchanged'} ({outcome.publish_dir})",
        f"- reports written: {len(summary['reports'])}",
    ]
    lines += [f"  - {p}" for p in summary["reports"]]
    return "\n".join(lines)
