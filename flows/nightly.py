"""The nightly flow: the table of contents of a run.

Take the lock, archive what arrived, read it, validate and build the marts, publish
them atomically, write the reports that are due and each sender's feedback, deliver
what is owed. Each step is one call into ``transforms/`` or ``reports/``; the tasks are
coarse (a batch of files each), never a task per file or row (STACK.md).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.retries import transient_io
from reports.feedback import write_feedback_workbooks
from reports.period import write_reports as write_reports_due
from transforms import run as steps
from transforms.publish import run_lock


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=transient_io)
def ingest(run: steps.Run) -> list[str]:
    return steps.ingest(run)


@task(cache_policy=NO_CACHE)
def stage(run: steps.Run) -> list[str]:
    return steps.stage(run)


@task(cache_policy=NO_CACHE)
def build_and_publish(run: steps.Run) -> steps.BuildOutcome:
    return steps.build_and_publish(run)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=transient_io)
def write_reports(run: steps.Run, outcome: steps.BuildOutcome) -> tuple[list[Path], list[Path]]:
    """The commissioner workbooks due: (all written, the final ones)."""
    due = steps.reports_due(run)
    if not due:
        return [], []
    by_period = write_reports_due(run.root.reports, run.reference, due, produced_at=run.now, data_as_of=run.now,
                                  marts=outcome.publish_dir, tables=outcome.tables, workers=run.workers,
                                  due_day=run.settings.due_day, suppression_memo=run.root.suppression_memo)
    written, finals = [], []
    for (period, provisional), paths in by_period.items():
        steps.mark_reports(run, period, provisional, paths)
        written += paths
        finals += [] if provisional else paths
    return written, finals


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=transient_io)
def write_feedback(run: steps.Run, outcome: steps.BuildOutcome) -> list[tuple[steps.FeedbackJob, Path]]:
    """One feedback workbook per submission processed in this run."""
    jobs = steps.feedback_jobs(run, outcome)
    paths = write_feedback_workbooks(run.root.reports, jobs, produced_at=run.now, workers=run.workers)
    return list(zip(jobs, paths, strict=True))


@task(cache_policy=NO_CACHE)
def deliver(run: steps.Run, finals: list[Path], feedback: list) -> dict:
    messages = steps.delivery_messages(run, finals, feedback)
    messages += steps.alert_messages(run.root, run.settings, run.now)
    return steps.deliver(run, messages).summary()


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
            reports, finals = write_reports(run, outcome)
            feedback = write_feedback(run, outcome)
        except Exception as exc:
            steps.record_failed_run(run.root, f"{type(exc).__name__}: {exc}".splitlines()[0])
            deliver(run, [], [])  # the failure alert
            raise
        summary = steps.finish(run, reports=reports, feedback=[path for _, path in feedback])
        summary["deliveries"] = deliver(run, finals, feedback)
    create_markdown_artifact(key="nightly-summary", markdown=_markdown(summary, outcome), description="Nightly run")
    logger.info("run %s: %d file(s) received, %d rejected, %d row(s) rejected; %d commissioner and %d feedback "
                "workbook(s) written", summary["run_id"], summary["files_received"], summary["files_rejected"],
                summary["rows_rejected"], len(summary["reports"]), len(summary["feedback"]))
    return summary


def _markdown(summary: dict, outcome: steps.BuildOutcome) -> str:
    lines = [
        f"# Nightly run {summary['run_id']}",
        "",
        f"- outcome: **{summary['outcome']}**",
        f"- files received: {summary['files_received']}; rejected whole: {summary['files_rejected']}; "
        f"with rejected rows: {summary['files_with_row_errors']} ({summary['rows_rejected']} rows)",
        f"- marts: {'rebuilt and published' if outcome.built else 'unchanged'} ({outcome.publish_dir})",
        f"- commissioner workbooks written: {len(summary['reports'])}; feedback workbooks: {len(summary['feedback'])}",
        f"- deliveries: {summary.get('deliveries')}",
        f"- validation results (Great Expectations Data Docs): {summary.get('data_docs') or 'not rebuilt (nothing new)'}",
    ]
    lines += [f"  - {p}" for p in summary["reports"]]
    return "\n".join(lines)
