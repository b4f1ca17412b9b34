"""The ``qi-pipeline`` command line (SPEC 9).

Exit codes: 0 done; 1 done, but something needs attention; 2 bad usage, environment or
reference data; 3 another run holds the lock. Bad input gets one clear line, never a
traceback.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from transforms.settings import DataRoot, Settings, UsageError, resolve_data_root

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Reporting pipeline for the regional QI training programme.")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data root (default: QI_DATA_DIR, else ./data).")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"qi-pipeline: {message}", err=True)
    return typer.Exit(code)


def _parse_day(text: str | None, option: str = "--as-of") -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option} {text!r} is not a date: use YYYY-MM-DD", 2) from None


def _root(data_dir: Path | None) -> DataRoot:
    try:
        return resolve_data_root(data_dir, Settings())
    except UsageError as exc:
        raise _fail(str(exc), 2) from None


def _run_flow(root: DataRoot, flow_name: str, **parameters: object) -> dict:
    """Run a flow in this process; map failures to one line and an exit code."""
    from flows.environment import configure_prefect

    configure_prefect(root.state)
    from transforms.publish import LockHeld
    from transforms.run import check_environment

    try:  # settings, key and reference data are checked before Prefect starts: a bad one is a quick exit 2
        check_environment(root.root, demo=bool(parameters.get("demo")))
    except UsageError as exc:
        raise _fail(str(exc), 2) from None
    if flow_name == "nightly":
        from flows.nightly import nightly as target
    else:
        from flows.backfill import backfill as target
    from transforms.run import warm_up

    warm_up(root, as_of=parameters.get("as_of"), settings=Settings(),  # type: ignore[arg-type]
            validating=True if flow_name == "backfill" else None)
    try:
        return target(data_dir=str(root.root), **parameters)
    except UsageError as exc:
        raise _fail(str(exc), 2) from None
    except LockHeld as exc:
        raise _fail(str(exc), 3) from None
    except Exception as exc:  # noqa: BLE001 - a person gets one line; the log file has the traceback
        raise _fail(f"the {flow_name} run failed: {type(exc).__name__}: {exc}. The last publish is intact; "
                    f"details in {os.environ.get('QI_LOG_FILE')}", 1) from None


Demo = Annotated[bool, typer.Option("--demo", help="Demo mode: built-in pseudonymisation key (synthetic data only).")]


@app.command()
def run(
    data_dir: DataDir = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run as if today were this date (YYYY-MM-DD).")] = None,
    demo: Demo = False,
) -> None:
    """Run the nightly job once: ingest, validate, build and publish the marts, write the reports due."""
    day = _parse_day(as_of)
    root = _root(data_dir)
    summary = _run_flow(root, "nightly", as_of=day, demo=demo)
    typer.echo(
        f"run {summary['run_id']}: {summary['files_received']} file(s) received, {summary['files_rejected']} rejected, "
        f"{summary['rows_rejected']} row(s) rejected; {len(summary['reports'])} commissioner and "
        f"{len(summary['feedback'])} feedback workbook(s) written under {root.reports}"
    )
    if summary.get("data_docs"):
        typer.echo(f"validation results (Data Docs): {summary['data_docs']}")
    if summary["outcome"] == "needs_attention":
        typer.echo("Some files or rows were rejected: see data_quality_issues in the marts, the feedback workbooks "
                   "and data/quarantine/.")
        raise typer.Exit(1)


@app.command()
def backfill(
    first: Annotated[str | None, typer.Option("--from", help="First reporting period, YYYY-MM.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last reporting period, YYYY-MM.")] = None,
    as_known_at: Annotated[str | None, typer.Option("--as-known-at", help="Build as known at this date (YYYY-MM-DD), "
                                                    "under data/asof/DATE/; default: restated with all data known now.")] = None,
    only_failed: Annotated[bool, typer.Option("--only-failed", help="Repeat just the failed periods of the last backfill.")] = False,
    data_dir: DataDir = None,
    demo: Demo = False,
) -> None:
    """Rebuild reporting periods: marts, and each period's commissioner workbooks."""
    day = _parse_day(as_known_at, "--as-known-at")
    if only_failed and (first or last or day):
        raise _fail("--only-failed repeats the last backfill as it was: give no --from, --to or --as-known-at", 2)
    if not only_failed:
        from transforms.periods import parse_period

        for option, text in (("--from", first), ("--to", last)):
            if text is None:
                raise _fail(f"backfill needs {option} YYYY-MM (or --only-failed)", 2)
            try:
                parse_period(text)
            except ValueError as exc:
                raise _fail(f"{option}: {exc}", 2) from None
        if first > last:
            raise _fail(f"--from {first} is after --to {last}", 2)
    root = _root(data_dir)
    result = _run_flow(root, "backfill", first=first, last=last, as_known_at=day, only_failed=only_failed, demo=demo)
    ok = len(result["periods"]) - len(result["failed"])
    typer.echo(f"backfill {result['backfill_id']} ({result['label']}): {ok} period(s) succeeded, "
               f"{len(result['failed'])} failed{': ' + ', '.join(result['failed']) if result['failed'] else ''}; "
               f"marts at {result['marts']}")
    if result["failed"]:
        typer.echo("Re-run just the failed periods with: qi-pipeline backfill --only-failed")
        raise typer.Exit(1)


@app.command()
def retract(
    sha256: Annotated[str, typer.Argument(help="The file's SHA-256 (or its first 8+ characters), from `status`.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the file is retracted (kept in the manifest).")],
    data_dir: DataDir = None,
) -> None:
    """Retract a file sent by mistake: it stays archived, and the next run rebuilds without it."""
    from transforms import run as steps
    from transforms.publish import LockHeld, run_lock

    root = _root(data_dir)
    try:
        run_state = steps.open_run(root.root, need_key=False)
        with run_lock(root.state, run_state.settings.lock_timeout):
            retracted = steps.retract(run_state, sha256, reason)
    except UsageError as exc:
        raise _fail(str(exc), 2) from None
    except LockHeld as exc:
        raise _fail(str(exc), 3) from None
    typer.echo(f"retracted {retracted['file_name']} ({retracted['sha256'][:12]}…): the next run rebuilds without it")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Spreadsheets to check (.xlsx, .xlsm, .csv).")],
    data_dir: DataDir = None,
) -> None:
    """Check files against the reference data and the current project register; write nothing.

    Exit 0 when there are no errors, 1 when there are.
    """
    from datetime import UTC

    import pandas as pd

    from transforms.load import check_files
    from transforms.publish import current_dir, read_mart
    from transforms.reference import load_reference

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise _fail(f"no such file: {', '.join(missing)}", 2)
    root = _root(data_dir)
    try:
        reference = load_reference(root.reference)
    except UsageError as exc:
        raise _fail(str(exc), 2) from None
    register = read_mart(root.marts, "dim_project") if current_dir(root.marts) else None
    results = check_files(list(files), reference, known_projects=register, now=datetime.now(UTC))
    errors = 0
    for result in results:
        if result.rejection:
            errors += 1
            typer.echo(f"{result.path}: REJECTED - {result.rejection}")
            continue
        issues = result.issues
        n_err = int((issues["severity"] == "error").sum())
        errors += n_err
        typer.echo(f"{result.path}: {result.rows} row(s), {n_err} error(s), "
                   f"{int((issues['severity'] == 'warning').sum())} warning(s)")
        for note in result.notes:
            typer.echo(f"  note: {note}")
        for r in issues.itertuples(index=False):
            column = r.source_column if isinstance(r.source_column, str) else r.column
            where = (f"sheet {r.sheet!r}, " if r.sheet else "") + f"row {r.row}, column {column!r}"
            value = f" = {r.value!r}" if r.value is not None and not pd.isna(r.value) else ""
            typer.echo(f"  {r.severity.upper()}: {where}{value}: {r.message} Fix: {r.fix}")
    if errors:
        raise typer.Exit(1)


@app.command()
def status(
    data_dir: DataDir = None,
    days: Annotated[int, typer.Option(help="List files received in the last N days.")] = 7,
) -> None:
    """What arrived, what is late or missing this period, the last runs and the current publish."""
    from datetime import UTC

    from rich.console import Console
    from rich.table import Table

    from transforms.status import collect

    root = _root(data_dir)
    settings = Settings()
    now = datetime.now(UTC)
    state = collect(root, now=now, due_day=settings.due_day, days=days, settings=settings)
    console = Console(width=160)
    passed = "passed" if now > state.due else "not yet passed"
    console.print(f"[bold]Reporting period {state.period}[/bold]: returns due by {state.due:%d %b %Y %H:%M} UTC ({passed})")
    if len(state.submissions):
        table = Table("organisation", "dataset", "status", "files", "rows rejected")
        for r in state.submissions.itertuples(index=False):
            table.add_row(r.organisation_code, r.dataset, r.status, str(r.files), str(r.rows_rejected))
        console.print(table)
    else:
        console.print("  nothing received or expected for this period in the current publish")
    console.print(f"[bold]Received in the last {days} day(s)[/bold]: {len(state.arrived)} file(s)")
    if len(state.arrived):
        table = Table("received", "org", "file", "outcome", "rows", "rejected", "sha256")
        for r in state.arrived.head(50).itertuples(index=False):
            table.add_row(f"{r.received_at:%Y-%m-%d %H:%M}", str(r.organisation_code), r.file_name, str(r.outcome),
                          str(r.rows_received), str(r.rows_rejected), r.sha256[:12])
        console.print(table)
    console.print("[bold]Last runs[/bold]")
    for entry in state.runs:
        console.print(f"  {entry.get('finished_at', '')[:19]}  {entry.get('outcome'):16} {entry.get('run_id')}"
                      f"{'  ' + entry['error'] if entry.get('error') else ''}")
    if not state.runs:
        console.print("  no runs yet")
    publish = state.publish
    console.print("[bold]Current publish[/bold]: " + (
        f"{publish['publish_id']} ({publish['files']} files, built {publish['built_at'][:19]})" if publish else "none yet"))
    if len(state.retractions):
        console.print("[bold]Retracted files[/bold]")
        for r in state.retractions.itertuples(index=False):
            console.print(f"  {r.sha256[:12]}  {r.file_name}: {r.retracted_reason}")
    if len(state.deliveries):
        console.print("[bold]Deliveries[/bold] (latest attempt per message)")
        for r in state.deliveries.tail(20).itertuples(index=False):
            console.print(f"  {str(r.at)[:19]}  {r.status:18} {r.key}  to {r.to}"
                          f"{'  ' + str(r.error) if isinstance(r.error, str) and r.error else ''}")
    if state.alerts:
        console.print("[bold]Alerts[/bold]: " + "; ".join(state.alerts))
    if state.backfills:
        console.print("[bold]Last backfill periods[/bold]")
        for entry in state.backfills:
            console.print(f"  {entry['backfill_id']}  {entry['period']}  {entry['status']}"
                          f"{'  ' + entry['reason'] if entry.get('reason') else ''}")


@app.command()
def serve(
    data_dir: DataDir = None,
    port: Annotated[int, typer.Option(help="Port of the local Prefect server started when PREFECT_API_URL is unset.")] = 4200,
    demo: Demo = False,
) -> None:
    """Serve the nightly deployment (02:00 Europe/London) and the backfill deployment until stopped."""
    root = _root(data_dir)
    from flows.environment import configure_prefect

    configure_prefect(root.state)
    from flows.serve import serve as serve_deployments

    typer.echo(f"serving nightly (cron 0 2 * * *, Europe/London) and backfill for {root.root}; Ctrl-C or SIGTERM stops")
    try:
        serve_deployments(root.root, demo=demo, port=port)
    except RuntimeError as exc:
        raise _fail(str(exc), 2) from None


@app.command()
def deliver(
    period: Annotated[str, typer.Option("--period", help="Reporting period whose final workbooks to send, YYYY-MM.")],
    commissioner: Annotated[str | None, typer.Option("--commissioner", help="Only this commissioner's workbook.")] = None,
    resend: Annotated[bool, typer.Option("--resend", help="Send again even if already delivered.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Send a period's final commissioner workbooks (each once; again only with --resend)."""
    from transforms import run as steps
    from transforms.periods import parse_period
    from transforms.publish import LockHeld, run_lock

    try:
        parse_period(period)
    except ValueError as exc:
        raise _fail(f"--period: {exc}", 2) from None
    root = _root(data_dir)
    try:
        state = steps.open_run(root.root, need_key=False)
        if (state.root.state / "reports.json").exists() and steps.report_status(state, period) != "final":
            raise UsageError(f"the reports for {period} are not final yet: only final reports are delivered")
        codes = list(state.reference.commissioners["code"])
        if commissioner and commissioner not in codes:
            raise UsageError(f"--commissioner {commissioner!r} is not in reference/commissioners.csv ({', '.join(codes)})")
        finals = [state.root.reports / period / f"{code}_qi_programme_{period}.xlsx"
                  for code in codes if commissioner in (None, code)]
        missing = [p.name for p in finals if not p.exists()]
        if missing:
            raise UsageError(f"no final workbook for {period}: {', '.join(missing)} (run the nightly job first)")
        with run_lock(root.state, state.settings.lock_timeout):
            report = steps.deliver(state, steps.delivery_messages(state, finals, []), resend=resend)
    except UsageError as exc:
        raise _fail(str(exc), 2) from None
    except LockHeld as exc:
        raise _fail(str(exc), 3) from None
    for line in report.lines():
        typer.echo(line)
    if not (report.sent or report.written or report.failed):
        typer.echo(f"nothing to send for {period}: already delivered (use --resend to send again)")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def templates(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the templates to.")] = Path("templates"),
    data_dir: DataDir = None,
) -> None:
    """Write the three submission templates (.xlsx, with drop-down lists) and a data dictionary."""
    from reports.templates import write_templates
    from transforms.reference import load_reference

    root = _root(data_dir)
    try:
        reference = load_reference(root.reference)
    except UsageError as exc:
        raise _fail(str(exc), 2) from None
    for path in write_templates(out, reference):
        typer.echo(f"wrote {path}")


@app.command()
def demo(
    data_dir: DataDir = None,
    scale: Annotated[float, typer.Option(help="Multiply participants and projects by this.")] = 1.0,
    months: Annotated[int, typer.Option(help="How many monthly reporting periods of history.")] = 36,
    end_period: Annotated[str | None, typer.Option("--end-period", help="Last reporting period, YYYY-MM (default: last month).")] = None,
    force: Annotated[bool, typer.Option(help="Generate even when landing/ already holds files.")] = False,
) -> None:
    """Create synthetic demo data (and a data root with demo reference data) if landing/ is empty."""
    from transforms.demo import ensure_demo, write_truth
    from transforms.periods import parse_period

    if end_period:
        try:
            parse_period(end_period)
        except ValueError as exc:
            raise _fail(f"--end-period: {exc}", 2) from None
    root = resolve_data_root(data_dir, Settings(), create=True)
    try:
        truth = ensure_demo(root.root, scale=scale, months=months, end_period=end_period, force=force)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    if truth is None:
        typer.echo(f"{root.landing} already holds files: no demo data generated (use --force to add it anyway).")
        return
    root.state.mkdir(parents=True, exist_ok=True)
    write_truth(truth, root.state / "demo_truth.json")
    typer.echo(f"demo data: {truth.files} file(s) for {len(truth.periods)} period(s) written to {root.landing}")


def main() -> None:
    # Registered first, so it runs last at exit: what is still alive then is not walked by
    # the interpreter's final garbage collection (after a run that wrote workbooks: seconds).
    atexit.register(gc.freeze)
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
