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
from reports.feedback import build_feedback_workbook, feedback_path
from reports.period import TABLES, write_period_reports
from transforms import run as steps
from transforms.publish import read_mart, run_lock


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
    tables = outcome.tables or {name: read_mart(run.root.marts, name) for name in TABLES}
    written, finals = [], []
    for period, provisional in due:
        paths = write_period_reports(run.root.reports, tables, run.reference, period=period,
                                     provisional=provisional, produced_at=run.now, data_as_of=run.now)
        steps.mark_reports(run, period, provisional, paths)
        written += paths
        finals += [] if provisional else paths
    return written, finals


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=transient_io)
def write_feedback(run: steps.Run, outcome: steps.BuildOutcome) -> list[tuple[steps.FeedbackJob, Path]]:
    """One feedback workbook per submission processed in this run."""
    written = []
    for job in steps.feedback_jobs(run, outcome):
        path = feedback_path(run.root.reports, job.period, job.organisation_code, job.file_name, job.sha256)
        build_feedback_workbook(path, file_name=job.file_name, organisation_code=job.organisation_code,
                                received_at=job.received_at, outcome=job.outcome, reason=job.reason,
                                counts=job.counts, issues=job.issues, notes=job.notes, produced_at=run.now)
        written.append((job, path))
    return written


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
