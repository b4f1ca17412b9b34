"""One run of the pipeline as plain steps, each called once by the Prefect flow.

``open_run`` settles the clock, the data root, the key and the reference data; then
``ingest``, ``stage``, ``build_marts``, ``publish_marts`` and ``finish`` do the work.
None of it imports Prefect: the flows only sequence these calls.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from transforms import load, parallel
from transforms.archive import Archive, scan_landing
from transforms.faults import checkpoint
from transforms.periods import end_of_day, nightly_report_periods, reporting_period_of, shift
from transforms.publish import current_build, publish
from transforms.reference import Reference, load_reference, parse_reference
from transforms.settings import DEMO_PSEUDONYMISATION_KEY, DataRoot, Settings, UsageError, resolve_data_root
from transforms.storage import atomic_write_bytes

log = logging.getLogger("qi.run")
# What the worker processes import before their first job (transforms.parallel.start).
WORKER_MODULES = ("transforms.outcomes", "reports.commissioner", "reports.feedback")
# Seconds the warm-up waits before importing Great Expectations (see warm_up).
WARM_UP_DELAY_SECONDS = 2.0
# Bump when a change to the code changes what a build produces from the same inputs.
BUILD_VERSION = "1"


@dataclass
class Run:
    run_id: str
    root: DataRoot
    settings: Settings
    now: datetime  # the run's clock: real now, or the end of the --as-of day
    seen_until: datetime | None
    demo: bool
    key: bytes
    reference: Reference
    archive: Archive
    new_files: list[str] = field(default_factory=list)
    staged_files: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)  # files whose outcome this run settled
    docs_index: Path | None = None  # this run's Great Expectations Data Docs
    summary: dict = field(default_factory=dict)
    build_fingerprint: str | None = None  # the current publish's build, once build_and_publish has run

    @property
    def current_period(self) -> str:
        return reporting_period_of(self.now)

    @property
    def workers(self) -> int:
        """Worker processes for reading many files, the SPC analysis and the workbooks (``QI_WORKERS``)."""
        return parallel.worker_count(self.settings.workers)


def check_environment(data_dir: Path | None, *, demo: bool) -> None:
    """The checks ``open_run`` makes, without side effects: a quick exit 2 before Prefect starts."""
    settings = Settings()
    root = resolve_data_root(data_dir, settings)
    load_reference(root.reference)
    if settings.pseudonymisation_key is None and not demo:
        pseudonymisation_key(settings, demo=False)


def pseudonymisation_key(settings: Settings, *, demo: bool) -> bytes:
    """The key for participant_key; the built-in one only in demo mode, said loudly."""
    if settings.pseudonymisation_key is not None:
        return settings.pseudonymisation_key.get_secret_value().encode()
    if demo:
        log.warning("DEMO MODE: participants are keyed with the built-in demo key; never use demo mode for real data")
        return DEMO_PSEUDONYMISATION_KEY.encode()
    raise UsageError("QI_PSEUDONYMISATION_KEY is not set: it keys participant identifiers. "
                     "Set it (a long random secret, kept safe) or run in demo mode on demo data.")


def open_run(data_dir: Path | None, *, as_of: date | None = None, demo: bool = False,
             settings: Settings | None = None, need_key: bool = True) -> Run:
    """Check the environment and reference data (UsageError, exit 2, on any problem)."""
    settings = settings or Settings()
    root = resolve_data_root(data_dir, settings)
    key = pseudonymisation_key(settings, demo=demo) if need_key else b""
    reference = load_reference(root.reference)
    root.ensure()
    real_now = datetime.now(UTC)
    seen_until = end_of_day(as_of) if as_of else None
    now = min(seen_until, real_now) if seen_until else real_now
    run_id = f"{real_now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    return Run(run_id, root, settings, now, seen_until, demo, key, reference, Archive(root.raw, root.state))


def files_waiting(root: DataRoot, *, as_of: date | None, settings: Settings) -> bool:
    """Whether a nightly run is likely to read and validate files: a landing file whose
    size or mtime the landing index has not seen, or an archived submission still pending.

    Cheap (a directory walk and two small Parquet reads) and only a hint: ``ingest`` decides.
    """
    archive = Archive(root.raw, root.state)
    if ((archive.manifest["kind"] == "submission") & (archive.manifest["outcome"] == "pending")).any():
        return True
    seen_until = end_of_day(as_of) if as_of else None
    now = min(seen_until, datetime.now(UTC)) if seen_until else datetime.now(UTC)
    landing = scan_landing(root.landing, now=now, quiet_seconds=settings.quiet_seconds, seen_until=seen_until)
    return not all(archive.indexed(file) for file in landing)


def warm_up(root: DataRoot, *, as_of: date | None, settings: Settings, validating: bool | None = None) -> None:
    """While Prefect starts its temporary server (seconds in which this process waits), import
    Great Expectations in a background thread if the run will validate rows.

    The thread first lets Prefect's own start-up work in this process go by
    (``WARM_UP_DELAY_SECONDS``): importing beside it only slows both (measured: a new-month
    run about 0.5 s quicker with the delay than without).

    ``validating``: known already (a backfill always validates); else ``files_waiting`` says.
    Never raises: a failure here only loses the head start.
    """
    def decide() -> None:
        time.sleep(WARM_UP_DELAY_SECONDS)
        try:
            from expectations.runner import preload_gx

            if validating or (validating is None and files_waiting(root, as_of=as_of, settings=settings)):
                preload_gx()
        except Exception:  # noqa: BLE001 - a hint only; the run meets any real problem itself
            log.debug("warm-up skipped", exc_info=True)

    threading.Thread(target=decide, name="warm-up", daemon=True).start()


def ingest(run: Run) -> list[str]:
    """Archive the reference data (when changed) and every new landing file."""
    load.archive_reference(run.archive, run.reference, now=run.now, run_id=run.run_id,
                           tmp=run.root.raw / ".reference.incoming")
    run.new_files = load.ingest(run.root, run.archive, now=datetime.now(UTC), quiet_seconds=run.settings.quiet_seconds,
                                seen_until=run.seen_until, run_id=run.run_id)
    run.archive.save()
    log.info("received %d new file(s)", len(run.new_files))
    return run.new_files


def stage(run: Run) -> list[str]:
    """Read every pending archived file into the staged store.

    The staged store depends on the key, the synonym additions and the staging code: when
    any of them changed, or the store is missing (a restore from backup), every archived
    submission is staged again from the archive.
    """
    meta_path = run.root.staged / "_meta.json"
    wanted = staging_meta(run)
    if not meta_path.exists() or json.loads(meta_path.read_text()) != wanted:
        restage_all(run)
    m = run.archive.manifest
    if ((m["kind"] == "submission") & (m["outcome"] == "pending")).any():
        from expectations.runner import preload_gx

        preload_gx()  # new rows will be validated: import Great Expectations while they are read
    # The new files' rows go into a part of their own: the rows staged before are not read or written.
    run.staged_files = load.stage_pending(run.archive, run.root.staged, run.reference, run.key, workers=run.workers)
    if run.staged_files:
        checkpoint("staged")  # (the part is written, the manifest not yet: the next run stages the files again)
        atomic_write_bytes(meta_path, json.dumps(wanted, sort_keys=True).encode())
        m = run.archive.manifest
        for row in m[m["sha256"].isin(run.staged_files) & (m["outcome"] == "rejected")].itertuples(index=False):
            run.recorded.append(row.sha256)
            text = f"file: {row.file_name}\nsha256: {row.sha256}\nreceived_at: {row.received_at}\nreason: {row.reason}\n"
            atomic_write_bytes(run.root.quarantine / row.sha256 / "REJECTED.txt", text.encode(), mode=0o600)
        run.archive.save()
        if merged := load.StagedStore.merge_parts(run.root.staged):
            log.info("staged store: the parts of the last %d staging batches merged", merged)
        # (memory: the new rows, typed and written, are garbage now, none of them in a cycle;
        # what they took goes back to the system rather than staying with the run while it builds)
        parallel.release_memory()
    return run.staged_files


def staging_meta(run: Run) -> dict:
    """What staged rows depend on besides the file itself."""
    inputs = hashlib.sha256()
    for name in ("organisations.csv", "column_synonyms.csv", "value_synonyms.csv"):
        inputs.update(name.encode() + b"\0" + run.reference.files.get(name, b""))
    return {"staging_version": load.STAGING_VERSION, "key": load.key_fingerprint(run.key),
            "reference_inputs": inputs.hexdigest()}


def restage_all(run: Run) -> None:
    """Forget the staged store and mark every archived submission to be staged again."""
    import shutil

    m = run.archive.manifest
    if not ((m["kind"] == "submission") & (m["outcome"] != "pending")).any():
        return  # nothing was staged before: nothing to redo
    log.info("staged store missing or out of date: staging every archived submission again")
    shutil.rmtree(run.root.staged, ignore_errors=True)
    run.root.staged.mkdir(parents=True, exist_ok=True)
    subs = m["kind"] == "submission"
    m.loc[subs, ["outcome", "reason"]] = ["pending", None]
    m.loc[subs, ["rows_received", "rows_rejected"]] = 0
    run.archive.save()


def build_inputs(manifest: pd.DataFrame, until: datetime, resends: pd.DataFrame | None = None) -> pd.DataFrame:
    """Manifest rows of the submissions a build as known at ``until`` includes (rejected ones too).

    Known bytes sent again under another name come as extra rows flagged ``resend``: they
    count for submission status, never as rows.
    """
    m = manifest
    keep = (m["kind"] == "submission") & (m["outcome"] != "pending") & ~m["retracted"].fillna(False)
    keep &= m["received_at"] <= pd.Timestamp(until)
    files = m[keep].assign(resend=False)
    if resends is not None and len(resends):
        seen = resends[resends["received_at"] <= pd.Timestamp(until)]
        again = files.drop(columns=["file_name", "received_at"]).merge(seen, on="sha256").assign(resend=True)
        files = pd.concat([files, again[files.columns]], ignore_index=True)
    return files.sort_values(["received_at", "file_name"], ignore_index=True)


def reference_at(run: Run, until: datetime) -> Reference:
    """The reference data in force at ``until``: the newest archived version received by then."""
    m = run.archive.manifest
    versions = m[(m["kind"] == "reference") & (m["received_at"] <= pd.Timestamp(until))]
    if versions.empty:
        return run.reference
    newest = versions.sort_values("received_at").iloc[-1]
    if newest["sha256"] == run.reference.sha256:
        return run.reference
    bundle = json.loads((run.root.raw / newest["archive_path"]).read_text(encoding="utf-8"))
    return parse_reference({name: text.encode() for name, text in bundle.items()})


def fingerprint(run: Run, files: pd.DataFrame, reference: Reference, current_period: str) -> str:
    """Identifies everything a build depends on: the same fingerprint gives the same marts."""
    digest = hashlib.sha256()
    digest.update(f"{BUILD_VERSION}|{reference.sha256}|{load.key_fingerprint(run.key)}|{current_period}|"
                  f"{run.settings.due_day}".encode())
    for sha, at, name in zip(files["sha256"], files["received_at"], files["file_name"], strict=True):
        digest.update(f"|{sha}@{at.isoformat()}:{name}".encode())
    return digest.hexdigest()


@dataclass
class BuildOutcome:
    built: bool
    publish_dir: Path | None
    fingerprint: str
    tables: dict[str, pd.DataFrame] | None = None
    issues: pd.DataFrame | None = None
    reference: Reference | None = None


def build_and_publish(run: Run, *, until: datetime | None = None, marts_dir: Path | None = None,
                      record: bool = True) -> BuildOutcome:
    """Validate and build the marts as known at ``until`` (default: the run's clock) and publish them.

    Nothing is rebuilt when nothing the marts depend on changed. An as-known-at build
    passes its own ``marts_dir`` (under ``asof/``) and does not touch the manifest.
    """
    until = until or run.now
    marts_dir = marts_dir or run.root.marts
    reference = reference_at(run, until) if until < run.now else run.reference
    files = build_inputs(run.archive.manifest, until, run.archive.resends)
    current_period = reporting_period_of(until)
    fp = fingerprint(run, files, reference, current_period)
    if marts_dir == run.root.marts:
        run.build_fingerprint = fp
    current = current_build(marts_dir)
    unrecorded = record and (run.archive.manifest["outcome"] == "staged").any()
    if current and current.get("fingerprint") == fp and not unrecorded:
        log.info("nothing changed since publish %s: marts left as they are", current["publish_id"])
        return BuildOutcome(False, marts_dir / "current", fp, reference=reference)
    # Worker processes analyse the projects and write the workbooks: started now, they get
    # ready while the rows are validated.
    parallel.start(run.workers, WORKER_MODULES)
    if run.workers <= 1:
        return _build(run, until, marts_dir, record, reference, files, current_period, fp)
    # What exists now outlives the build: the collection after it need not walk it (gc.freeze).
    gc.freeze()
    try:
        outcome = _build(run, until, marts_dir, record, reference, files, current_period, fp)
        # Workbooks written in worker processes read the published marts, so the run has let
        # go of its copy; what the build freed goes back to the system while the workers run.
        parallel.release_memory(collect=True)
    finally:
        gc.unfreeze()
    return outcome


def _build(run: Run, until: datetime, marts_dir: Path, record: bool, reference: Reference, files: pd.DataFrame,
           current_period: str, fp: str) -> BuildOutcome:
    # The store goes straight into build (no reference kept here), which lets go of it once read.
    result, issues = load.build(load.StagedStore.open(run.root.staged), files, reference, current_period=current_period,
                                due_day=run.settings.due_day, workers=run.workers)
    info = {"publish_id": f"{run.now:%Y%m%dT%H%M%S}-{fp[:10]}", "fingerprint": fp, "run_id": run.run_id,
            "built_at": run.now.isoformat(), "known_at": until.isoformat(), "current_period": current_period,
            "files": len(files), "reference_sha256": reference.sha256}
    folder = publish(marts_dir, result.tables, info, keep=run.settings.keep_publishes)
    checkpoint("published")
    if record:
        _record_outcomes(run, result.file_outcomes, issues)
        run.docs_index = _data_docs(run, result.gx_results)
    log.info("published %s (%d files, %d held measure rows)", folder.name, len(files), result.held_measure_rows)
    # Workbooks written in worker processes read the published marts, so the run lets go of
    # its copy (memory: at double the benchmark's size it is about a third of a gigabyte).
    return BuildOutcome(True, folder, fp, result.tables if run.workers <= 1 else None, issues, reference)


def _data_docs(run: Run, results: list) -> Path | None:
    """This run's Data Docs under docs/ (the last 30 runs are kept); a failure here loses nothing."""
    from expectations.docs import write_data_docs

    try:
        return write_data_docs(results, run.root.docs, run.run_id)
    except Exception as exc:  # noqa: BLE001 - docs are a convenience: the run's data is already safe
        log.warning("Data Docs not written: %s", f"{type(exc).__name__}: {exc}".splitlines()[0])
        return None


def _record_outcomes(run: Run, outcomes: pd.DataFrame, issues: pd.DataFrame) -> None:
    """Update the manifest for files staged in this run and quarantine their rejected rows."""
    # Files staged by this run, or by an earlier run that died before recording them.
    m = run.archive.manifest
    fresh = set(run.staged_files) | set(m.loc[m["outcome"] == "staged", "sha256"])
    for row in outcomes.itertuples(index=False):
        if row.sha256 not in fresh:
            continue
        run.archive.update(row.sha256, rows_rejected=row.rows_rejected,
                           outcome="accepted_with_errors" if row.rows_rejected else "accepted")
        run.recorded.append(row.sha256)
        if row.rows_rejected:
            quarantine_rows(run, row.sha256, issues[(issues["source_sha256"] == row.sha256) & (issues["severity"] == "error")])
    run.archive.save()


def quarantine_rows(run: Run, sha256: str, issues: pd.DataFrame) -> Path:
    """Write a file's rejected rows, as sent, with every reason that applies (owner-only)."""
    from transforms.read import read_grids

    grids = {g.sheet: g for g in read_grids(run.archive.path_of(sha256))}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sheet", "row", "reasons", "cells"])
    for (sheet, row), group in issues.groupby(["sheet", "row"], sort=True):
        grid = grids.get(sheet or "")
        cells = grid.rows[int(row) - 1] if grid and 0 < row <= len(grid.rows) else []
        reasons = "; ".join(f"{c}: {m}" for c, m in zip(group["column"], group["message"], strict=True))
        writer.writerow([sheet, int(row), reasons, json.dumps([None if c is None else str(c) for c in cells])])
    path = run.root.quarantine / sha256 / "rejected_rows.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    atomic_write_bytes(path, out.getvalue().encode(), mode=0o600)
    return path


def report_periods(run: Run) -> tuple[str, str | None]:
    return nightly_report_periods(run.now, run.settings.due_day)


def finish(run: Run, *, reports: list[Path], feedback: list[Path] = ()) -> dict:
    """Record the run in the runs ledger and return its summary.

    The worker processes have nothing left to do: they exit while the run winds down."""
    parallel.shutdown(wait=False)
    m = run.archive.manifest
    new = m[m["sha256"].isin(run.new_files)]
    summary = {
        "run_id": run.run_id,
        "as_of": run.seen_until.isoformat() if run.seen_until else None,
        "finished_at": datetime.now(UTC).isoformat(),
        "outcome": "needs_attention" if (new["outcome"].isin(["rejected", "accepted_with_errors"])).any() else "succeeded",
        "files_received": int((new["kind"] == "submission").sum()),
        "files_rejected": int((new["outcome"] == "rejected").sum()),
        "files_with_row_errors": int((new["outcome"] == "accepted_with_errors").sum()),
        "rows_rejected": int(new["rows_rejected"].sum()),
        "reports": [str(p.relative_to(run.root.root)) for p in reports],
        "feedback": [str(p.relative_to(run.root.root)) for p in feedback],
        "demo": run.demo,
        "data_docs": str(run.docs_index) if run.docs_index else None,
    }
    ledger = run.root.state / "runs.jsonl"
    with open(ledger, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(summary) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    run.summary = summary
    return summary


def needs_attention(summary: dict) -> bool:
    return summary["outcome"] == "needs_attention"


__all__ = ["Run", "UsageError", "open_run"]


def reports_due(run: Run) -> list[tuple[str, bool]]:
    """(period, provisional) pairs this nightly run writes: the final period once; the provisional
    one whenever the marts changed since its workbooks were written (or they are gone)."""
    final, provisional = report_periods(run)
    ledger = _report_ledger(run)
    due = [] if ledger.get(final) == "final" else [(final, False)]
    if provisional and not _provisional_current(run, provisional):
        due.append((provisional, True))
    return due


def mark_reports(run: Run, period: str, provisional: bool, paths: list[Path] | None = None) -> None:
    ledger = _report_ledger(run)
    if not provisional:
        ledger[period] = "final"
    else:
        ledger.setdefault(period, "provisional")
    atomic_write_bytes(run.root.state / "reports.json", json.dumps(ledger, indent=2, sort_keys=True).encode())
    if provisional and paths is not None and run.build_fingerprint:
        written = _provisional_ledger(run)
        # Relative to the data root, which may be moved.
        written[period] = {"fingerprint": run.build_fingerprint,
                           "paths": sorted(os.path.relpath(p, run.root.root) for p in paths)}
        atomic_write_bytes(_provisional_ledger_path(run), json.dumps(written, indent=2, sort_keys=True).encode())


def _provisional_ledger_path(run: Run) -> Path:
    return run.root.state / "provisional_reports.json"


def _provisional_ledger(run: Run) -> dict[str, dict]:
    path = _provisional_ledger_path(run)
    return json.loads(path.read_text()) if path.exists() else {}


def _provisional_current(run: Run, period: str) -> bool:
    """True when ``period``'s provisional workbooks were written from the build now published
    and are all still there: writing them again would only change their 'produced at'."""
    entry = _provisional_ledger(run).get(period)
    return bool(entry and run.build_fingerprint and entry.get("fingerprint") == run.build_fingerprint
                and entry.get("paths") and all((run.root.root / p).exists() for p in entry["paths"]))


def report_status(run: Run, period: str) -> str | None:
    """'final', 'provisional' or None: what the nightly runs have written for ``period``."""
    return _report_ledger(run).get(period)


def _report_ledger(run: Run) -> dict[str, str]:
    path = run.root.state / "reports.json"
    return json.loads(path.read_text()) if path.exists() else {}


def retract(run: Run, sha256: str, reason: str) -> dict:
    """Mark an archived submission retracted (it stays archived); the next run rebuilds without it."""
    m = run.archive.manifest
    matches = m[(m["kind"] == "submission") & m["sha256"].str.startswith(sha256.lower())]
    if len(sha256) < 8 or matches.empty:
        raise UsageError(f"no archived submission has a SHA-256 starting {sha256!r} (give at least 8 characters; "
                         "`qi-pipeline status` lists what arrived)")
    if len(matches) > 1:
        raise UsageError(f"{sha256!r} matches {len(matches)} submissions: give more of the SHA-256")
    row = matches.iloc[0]
    if not reason.strip():
        raise UsageError("--reason must say why the file is retracted")
    run.archive.update(row["sha256"], retracted=True, retracted_reason=reason.strip())
    run.archive.save()
    return {"sha256": row["sha256"], "file_name": row["file_name"], "received_at": row["received_at"].isoformat()}


def asof_root(run: Run, day: date) -> Path:
    """Where an as-known-at build goes: ``asof/DATE/`` (never the current publish)."""
    return run.root.root / "asof" / day.isoformat()


def backfill_reports_root(run: Run, plan) -> Path:
    """Where a backfill's workbooks go: ``reports/restated/`` (never over the frozen finals) or ``asof/D/reports/``."""
    return asof_root(run, plan.as_known_at) / "reports" if plan.as_known_at else run.root.reports / "restated"


@dataclass(frozen=True)
class FeedbackJob:
    """Everything one submission's feedback workbook says, and where it goes."""

    sha256: str
    period: str
    file_name: str
    organisation_code: str | None
    received_at: datetime
    outcome: str
    reason: str | None
    counts: dict
    issues: pd.DataFrame
    notes: pd.DataFrame


def feedback_jobs(run: Run, outcome: BuildOutcome) -> list[FeedbackJob]:
    """One job per submission whose outcome this run settled."""
    if not run.recorded:
        return []
    wanted = list(dict.fromkeys(run.recorded))
    rows = run.archive.manifest.drop_duplicates("sha256").set_index("sha256").loc[wanted].reset_index()
    # (the notes alone: the store's rows are about a quarter of a gigabyte at double the benchmark's size)
    store_notes = load.StagedStore.read_notes(run.root.staged)
    issues = outcome.issues if outcome.issues is not None else pd.DataFrame(columns=["source_sha256", "severity"])
    notes = store_notes[store_notes["kind"] != "header"]
    # Split once, not a filter per file; a file with nothing to say shares one empty frame.
    issues_of = {sha: part.reset_index(drop=True) for sha, part in issues.groupby("source_sha256", sort=False)}
    notes_of = {sha: part.reset_index(drop=True) for sha, part in notes.groupby("source_sha256", sort=False)}
    warnings = issues[issues["severity"] == "warning"].groupby("source_sha256").size().to_dict()
    no_issues, no_notes = issues.iloc[:0].reset_index(drop=True), notes.iloc[:0].reset_index(drop=True)
    jobs = []
    for row in rows.itertuples(index=False):
        rejected = int(row.rows_rejected)
        jobs.append(FeedbackJob(
            sha256=row.sha256, period=reporting_period_of(row.received_at), file_name=row.file_name,
            organisation_code=row.organisation_code, received_at=row.received_at.to_pydatetime(),
            outcome=row.outcome, reason=row.reason,
            counts={"rows_received": int(row.rows_received), "rows_accepted": int(row.rows_received) - rejected,
                    "rows_rejected": rejected, "warnings": int(warnings.get(row.sha256, 0))},
            issues=issues_of.get(row.sha256, no_issues),
            notes=notes_of.get(row.sha256, no_notes),
        ))
    return jobs


def delivery_messages(run: Run, finals: list[Path], feedback: list[tuple[FeedbackJob, Path]]) -> list:
    """Messages owed for this run: final workbooks to commissioners, feedback to senders, alerts."""
    from transforms import delivery

    messages = []
    commissioners = run.reference.commissioners.set_index("code", drop=False)
    for path in finals:
        code, period = path.name.split("_qi_programme_")[0], path.parent.name
        if code not in commissioners.index:
            continue
        headline = delivery.headline_from_workbook(path)
        previous = path.parent.parent / shift(period, -1) / path.name.replace(period, shift(period, -1))
        before = delivery.headline_from_workbook(previous) if previous.exists() else None
        messages.append(delivery.commissioner_message(commissioners.loc[code], period, path, headline,
                                                      delivery.changes_since(before, headline, period)))
    organisations = run.reference.organisations.set_index("code", drop=False)
    for job, path in feedback:
        if job.organisation_code in organisations.index:
            messages.append(delivery.feedback_message(
                organisations.loc[job.organisation_code], job.file_name, job.sha256, job.outcome, job.counts, path,
                period=job.period, always=run.settings.feedback_always))
    return messages


def alert_messages(root: DataRoot, settings: Settings, now: datetime) -> list:
    """An e-mail per open incident (a failed last run, or no success for 36 hours), once each."""
    from transforms import delivery

    runs_path = root.state / "runs.jsonl"
    runs = [json.loads(line) for line in runs_path.read_text().splitlines() if line.strip()] if runs_path.exists() else []
    return [delivery.alert_message(settings.alert_to, incident) for incident in delivery.check_alerts(runs, now)]


def deliver(run: Run, messages: list, *, resend: bool = False):
    """Send (or write to the outbox) every message not yet delivered, and whatever is still owed."""
    from transforms import delivery

    ledger = delivery.DeliveryLedger.for_root(run.root)
    owed = [] if resend else ledger.owed()
    return delivery.deliver([*messages, *owed], settings=run.settings, root=run.root, ledger=ledger, resend=resend)


def record_failed_run(root: DataRoot, error: str) -> None:
    """Append a failed run to the runs ledger (the run itself could not finish)."""
    entry = {"run_id": f"failed-{datetime.now(UTC):%Y%m%dT%H%M%SZ}", "finished_at": datetime.now(UTC).isoformat(),
             "outcome": "failed", "error": error}
    root.state.mkdir(parents=True, exist_ok=True)
    with open(root.state / "runs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
