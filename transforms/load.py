"""From the archive to a build: take new files, stage them, validate, and build the marts.

The journey of a row: ``ingest`` archives a new file by hash; ``stage_pending`` reads it
(``transforms/staging.py``), keys its participants and adds its typed rows to the staged
store (``state/staged/``, no personal data); ``build`` validates every staged row in
one batch per dataset against the reference data in force, applies supersession
(SPEC 4) and returns the marts. The build is a pure function of the archive, so any
past state can be rebuilt from it.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from transforms import checks, marts, outcomes
from transforms.archive import Archive, scan_landing
from transforms.datasets import BY_NAME, DATASETS, ENROLMENT_RETURN, MEASURE_DATA, PROJECT_REGISTER
from transforms.faults import checkpoint
from transforms.parallel import release_memory, run_jobs, shutdown
from transforms.periods import due_at, periods_between, reporting_period_of
from transforms.reference import Reference
from transforms.settings import DataRoot
from transforms.staging import no_cycle_collection
from transforms.storage import atomic_write_bytes, empty_frame, fsync_dir, read_arrow, write_table

log = logging.getLogger("qi.load")

_ARROW = {"code": pa.string(), "text": pa.string(), "category": pa.string(), "personal": pa.string(),
          "date": pa.timestamp("ms"), "number": pa.float64()}
LINEAGE = [("source_sha256", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64()),
           ("source_column", pa.string())]
PERSONAL_DROPPED = ("first_name", "surname", "email", "mentor")
NO_DATA_ROWS = ("The file has column headers but no rows of data, so nothing was loaded. "
                "Send it again with your rows filled in.")
# Bump when staging code changes what a file becomes: the archive is staged again.
STAGING_VERSION = "1"
# What GX said of rows already validated (expectations.runner.ValidationMemo), next to the staged store.
VALIDATION_MEMO = "validation_memo.parquet"


def _staged_schema(dataset: str) -> pa.Schema:
    fields = []
    for column in BY_NAME[dataset].columns:
        if column.name in PERSONAL_DROPPED:
            continue
        if column.name == "staff_id":
            fields += [("participant_key", pa.string()), ("chk_staff_id_format", pa.bool_())]
            continue
        fields.append((column.name, _ARROW[column.kind]))
    return pa.schema(fields + LINEAGE)


STAGED_SCHEMAS = {name: _staged_schema(name) for name in DATASETS}
PARSE_ISSUE_SCHEMA = pa.schema(
    [("source_sha256", pa.string()), ("dataset", pa.string()), ("sheet", pa.string()), ("row", pa.int64()),
     ("column", pa.string()), ("source_column", pa.string()), ("rule", pa.string()), ("severity", pa.string()),
     ("value", pa.string()), ("message", pa.string())]
)
NOTE_SCHEMA = pa.schema([("source_sha256", pa.string()), ("kind", pa.string()), ("sheet", pa.string()),
                         ("text", pa.string())])


def participant_key(key: bytes, organisation_code: str, staff_id: str) -> str:
    """HMAC-SHA256 of organisation and staff id: the same person gets the same key in every return."""
    return hmac.new(key, f"{organisation_code}|{staff_id}".encode(), hashlib.sha256).hexdigest()


def key_fingerprint(key: bytes) -> str:
    """Identifies the pseudonymisation key without revealing it."""
    return hmac.new(key, b"qi-key-fingerprint", hashlib.sha256).hexdigest()[:16]


# --- ingest ---------------------------------------------------------------------------------------


def ingest(root: DataRoot, archive: Archive, *, now: datetime, quiet_seconds: int, seen_until: datetime | None,
           run_id: str) -> list[str]:
    """Archive every new file in landing (by hash); return the new hashes in received order."""
    new: list[str] = []
    for file in scan_landing(root.landing, now=now, quiet_seconds=quiet_seconds, seen_until=seen_until):
        digest = archive.hash_of(file)
        if archive.known(digest):
            archive.add_resend(file, digest)
            continue
        archive.add(file.path, sha256=digest, kind="submission", file_name=file.rel,
                    received_at=file.modified_at, run_id=run_id)
        new.append(digest)
        checkpoint(f"archive:{len(new)}")
    return new


def archive_reference(archive: Archive, reference: Reference, *, now: datetime, run_id: str, tmp: Path) -> bool:
    """Archive the reference data by hash (as one JSON bundle); True when it is a new version."""
    if archive.known(reference.sha256):
        return False
    bundle = json.dumps({n: b.decode("utf-8-sig") for n, b in sorted(reference.files.items())}, sort_keys=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(tmp, bundle.encode(), mode=0o600)
    archive.add(tmp, sha256=reference.sha256, kind="reference", file_name="reference", received_at=now, run_id=run_id)
    archive.update(reference.sha256, outcome="accepted")
    tmp.unlink(missing_ok=True)
    return True


# --- staging --------------------------------------------------------------------------------------


STAGED_TABLES = {**{f"{name}.parquet": schema for name, schema in STAGED_SCHEMAS.items()},
                 "parse_issues.parquet": PARSE_ISSUE_SCHEMA, "notes.parquet": NOTE_SCHEMA}
PARTS = "parts"  # under the staged store: one folder per staging batch since the last merge
PART_FILES = "files.json"  # in a part: every submission that batch staged (rows or not)
# Parts merged into the base files once there are this many. Each part read costs about 4 ms
# a build, a merge about 0.3 s (measured with the benchmark's 318,000 measure rows): merging
# every dozen batches keeps the two together at about 0.05 s a night.
MERGE_PARTS_AT = 12


@dataclass
class StagedStore:
    """Typed rows of every staged file under ``state/staged/``.

    The store is base Parquet files, one per table, plus a part for each staging batch
    since they were last merged (``parts/000001/``, ...: the same tables, holding that
    batch's rows only, and the list of files it staged). A night's staging writes its own
    part and never rewrites the rows staged before; ``merge_parts`` folds the parts into
    the base files once there are ``MERGE_PARTS_AT`` of them. Read back, the rows come in
    the order they were staged.

    A file staged again (the manifest was not saved after its part was written, so it was
    still pending) is read from the newest part that staged it, never twice; and rows a
    merge copied into the base are read from their part for as long as the part is there.
    """

    folder: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    parse_issues: pd.DataFrame | None = None
    notes: pd.DataFrame | None = None

    @classmethod
    def open(cls, folder: Path) -> StagedStore:
        store = cls(folder)
        pieces = _store_pieces(folder)
        for name, schema in STAGED_SCHEMAS.items():
            store.tables[name] = _read_pieces(pieces, f"{name}.parquet", schema)
        store.parse_issues = _read_pieces(pieces, "parse_issues.parquet", PARSE_ISSUE_SCHEMA)
        store.notes = _read_pieces(pieces, "notes.parquet", NOTE_SCHEMA)
        return store

    @staticmethod
    def read_notes(folder: Path) -> pd.DataFrame:
        """The notes alone (what staging saw besides rows), without the rows' tables."""
        return _read_pieces(_store_pieces(folder), "notes.parquet", NOTE_SCHEMA)

    @staticmethod
    def add_part(folder: Path, shas: set[str], staged: dict[str, list[pd.DataFrame]], issues: list[pd.DataFrame],
                 notes: list[pd.DataFrame]) -> Path:
        """Write one staging batch as a new part: the rows of ``shas`` (replacing any staged before)."""
        parts = folder / PARTS
        parts.mkdir(parents=True, exist_ok=True)
        for leftover in parts.glob(".part-*"):  # a batch interrupted while written (one run at a time: the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        number = 1 + max((int(p.name) for p in parts.iterdir() if p.name.isdigit()), default=0)
        tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=parts))
        frames = {**{f"{name}.parquet": staged.get(name, []) for name in STAGED_SCHEMAS},
                  "parse_issues.parquet": issues, "notes.parquet": notes}
        for file, schema in STAGED_TABLES.items():
            written = [f for f in frames[file] if len(f)]
            if written:
                write_table(pd.concat(written, ignore_index=True) if len(written) > 1 else written[0], tmp / file,
                            schema)
        atomic_write_bytes(tmp / PART_FILES, json.dumps(sorted(shas)).encode())
        part = parts / f"{number:06d}"
        os.rename(tmp, part)
        fsync_dir(parts)
        return part

    @classmethod
    def merge_parts(cls, folder: Path, *, at: int = MERGE_PARTS_AT) -> int:
        """Fold the parts into the base files once there are ``at`` or more; how many it folded.

        Safe to interrupt: the base files are replaced one by one, each atomically, and
        the parts removed oldest first afterwards; whatever is left of them is read in
        preference to the base, so the store reads the same at every step."""
        parts = _parts(folder)
        if len(parts) < at:
            return 0
        store = cls.open(folder)
        tables = {**{f"{name}.parquet": frame for name, frame in store.tables.items()},
                  "parse_issues.parquet": store.parse_issues, "notes.parquet": store.notes}
        del store
        for file, schema in STAGED_TABLES.items():
            write_table(tables.pop(file), folder / file, schema)
        for part in parts:
            shutil.rmtree(part)
        fsync_dir(folder / PARTS)
        return len(parts)


def _parts(folder: Path) -> list[Path]:
    parts = folder / PARTS
    return sorted(p for p in parts.iterdir() if p.name.isdigit()) if parts.is_dir() else []


def _store_pieces(folder: Path) -> list[tuple[Path, set[str] | None]]:
    """The base folder, then each part oldest first, with the files each part staged."""
    return [(folder, None), *((p, set(json.loads((p / PART_FILES).read_text()))) for p in _parts(folder))]


def _read_pieces(pieces: list[tuple[Path, set[str] | None]], file: str, schema: pa.Schema) -> pd.DataFrame:
    """One table of the store: its rows in every piece, each file's from the newest piece that staged it."""
    tables: list[pa.Table] = []
    later: set[str] = set()  # files staged by a newer part: their rows in older pieces are stale
    for folder, shas in reversed(pieces):
        path = folder / file
        if path.exists():
            table = read_arrow(path, schema)
            if later:
                stale = pc.is_in(table["source_sha256"], value_set=pa.array(sorted(later), pa.string()))
                if pc.any(stale).as_py():
                    table = table.filter(pc.invert(stale))
            tables.append(table)
        later |= shas or set()
    if not tables:
        return empty_frame(schema)
    return (tables[0] if len(tables) == 1 else pa.concat_tables(tables[::-1])).to_pandas()


def _conform(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for f in schema:
        column = frame[f.name] if f.name in frame.columns else pd.Series(None, index=frame.index, dtype="object")
        if pa.types.is_timestamp(f.type):
            column = pd.to_datetime(column, errors="coerce").astype("datetime64[ms]")
        elif pa.types.is_floating(f.type):
            column = pd.to_numeric(column, errors="coerce").astype("float64")
        elif pa.types.is_integer(f.type):
            column = column.astype("int64")
        elif pa.types.is_boolean(f.type):
            column = column.astype("boolean")
        else:
            column = column.astype("object").where(column.notna(), None)
        out[f.name] = column
    return out.reset_index(drop=True)


def key_participants(frame: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Replace ``staff_id`` with ``participant_key`` and its format check; staff ids go no further."""
    staff = frame["staff_id"].astype("object")
    orgs = frame["organisation_code"].astype("object")
    present = staff.notna()
    out = frame.drop(columns=["staff_id"])
    out["participant_key"] = [
        participant_key(key, "" if pd.isna(org) else org, sid) if has else None
        for org, sid, has in zip(orgs, staff, present, strict=True)
    ]
    fmt = staff.where(present, "").astype(str).str.fullmatch(checks.STAFF_ID_PATTERN)
    out["chk_staff_id_format"] = pd.array(fmt.where(present, None), dtype="boolean")
    return out


STAGE_IN_PROCESS_BELOW = 200  # fewer files are read here: starting worker processes would cost more
STAGE_CHUNK = 16  # files per task in a worker process


def _stage_one(job: tuple[Path, str, dict, dict]):
    from transforms.staging import stage_file

    path, sha256, column_synonyms, value_synonyms = job
    return stage_file(path, sha256=sha256, column_synonyms=column_synonyms, value_synonyms=value_synonyms,
                      frames=False)


@no_cycle_collection()  # a million small objects, none in a cycle (staging.py)
def stage_pending(archive: Archive, staged_folder: Path, reference: Reference, key: bytes, *,
                  workers: int = 1) -> list[str]:
    """Read every archived submission still ``pending`` into a new part of the staged store
    (``StagedStore.add_part``); return their hashes.

    With ``workers`` > 1 and many files, the files are read in worker processes; what is
    done with each file's rows, and in what order, is the same.
    """
    from transforms.normalise import default_value_synonyms
    from transforms.staging import TypedColumns, staged_frame
    from transforms.tables import default_column_synonyms

    pending = archive.manifest[(archive.manifest["kind"] == "submission") & (archive.manifest["outcome"] == "pending")]
    if pending.empty:
        return []
    column_synonyms = default_column_synonyms(reference.column_synonyms)
    value_synonyms = default_value_synonyms(reference.value_synonyms)
    org_codes = reference.org_codes
    # Rows are gathered per dataset and typed once at the end: per-file pandas work costs
    # more than reading the file.
    raw: dict[str, list[TypedColumns]] = {}
    issue_rows: list[dict] = []
    note_rows: list[tuple[str, str, str, str]] = []
    rows = list(pending.itertuples(index=False))
    results = run_jobs(_stage_one, [(archive.raw / row.archive_path, row.sha256, column_synonyms, value_synonyms)
                                    for row in rows],
                       workers=workers, chunksize=STAGE_CHUNK, in_process_below=STAGE_IN_PROCESS_BELOW)
    # (memory: workers that read files keep what they grew to, so they go now, not after the
    # rows are typed here; new ones start for the workbooks)
    shutdown(wait=False)
    for row, result in zip(rows, results, strict=True):
        orgs: list[str] = []
        for name, parts in result.columns.items():
            for typed, _ in parts:
                orgs += [o for o in typed.get("organisation_code", ()) if isinstance(o, str) and o]
            raw.setdefault(name, []).extend(parts)
        issue_rows += [{**issue, "source_sha256": row.sha256} for issue in result.issues]
        note_rows += [(row.sha256, "skipped_sheet", s, r) for s, r in result.skipped_sheets]
        note_rows += [(row.sha256, "unknown_column", s, f"{d}: {h}") for s, d, h in result.unknown_columns]
        note_rows += [(row.sha256, "header", s, json.dumps({"dataset": d, "columns": c}, sort_keys=True))
                      for s, d, c in result.headers]
        organisation = _organisation_of(orgs, row.file_name, org_codes)
        rows = sum(n for parts in result.columns.values() for _, n in parts)
        if not result.rejection and rows == 0:
            # An empty enrolment return would say everyone left: never take it as a return.
            result.rejection = NO_DATA_ROWS
        archive.update(
            row.sha256,
            organisation_code=organisation,
            datasets=",".join(sorted(result.columns)),
            outcome="rejected" if result.rejection else "staged",
            reason=result.rejection,
            rows_received=rows,
        )
        if result.rejection:
            log.info("rejected %s: %s", row.file_name, result.rejection)
        checkpoint("stage")
    del results  # (memory: ``raw`` is left holding the only reference to the cells: each dataset's go once typed)
    staged: dict[str, list[pd.DataFrame]] = {}
    for name in list(raw):
        frame = staged_frame(name, raw.pop(name))  # (memory: each dataset's cells go once typed)
        frame = frame.drop(columns=[c for c in PERSONAL_DROPPED if c in frame.columns])
        if name == ENROLMENT_RETURN:
            frame = key_participants(frame, key)
        staged[name] = [_conform(frame, STAGED_SCHEMAS[name])]
    issues = [_conform(pd.DataFrame(issue_rows), PARSE_ISSUE_SCHEMA)] if issue_rows else []
    notes = [pd.DataFrame(note_rows, columns=["source_sha256", "kind", "sheet", "text"])[NOTE_SCHEMA.names]] \
        if note_rows else []
    # (memory: the cells' memory goes back to the system before the part is written, which
    # takes Arrow's copy of the rows: at double the benchmark's size the run's highest point
    # is here, 1.03 GiB, 1.08 without this)
    release_memory()
    StagedStore.add_part(staged_folder, set(pending["sha256"]), staged, issues, notes)
    return list(pending["sha256"])


def _organisation_of(codes: list[str], file_name: str, known: set[str]) -> str:
    """The sender: the rows' (known) organisation_code, else the nearest folder named after one, else unknown."""
    codes = [c for c in codes if c in known]
    if codes:
        counts = Counter(codes)
        top = max(counts.values())
        return min(code for code, n in counts.items() if n == top)  # the most frequent; a tie, the first in order
    for part in reversed(Path(file_name).parts[:-1]):
        if part.upper() in known:
            return part.upper()
    return "unknown"


# --- build ----------------------------------------------------------------------------------------


@dataclass
class Build:
    tables: dict[str, pd.DataFrame]
    file_outcomes: pd.DataFrame  # sha256, rows_rejected, outcome
    held_measure_rows: int
    gx_results: list


def _with_files(frame: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    meta = files[["sha256", "received_at", "file_name", "reporting_period"]].rename(columns={"sha256": "source_sha256"})
    return frame.merge(meta, on="source_sha256", how="inner")


@dataclass
class Validated:
    """Rows after validation: checked frames (``_row_id``, ``chk_*``), which of their rows
    are accepted, the issues."""

    checked: dict[str, pd.DataFrame]
    accepted_rows: dict[str, np.ndarray]  # per dataset, True for each row of ``checked`` with no error
    issues: pd.DataFrame  # the data_quality_issues shape
    gx_results: list  # the raw GX results, for Data Docs

    def accepted(self, name: str) -> pd.DataFrame:
        """The rows of ``checked[name]`` with no error."""
        return _rows(self.checked[name], self.accepted_rows[name])


def _rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    # (memory: taking rows copies every column, the text too; all of them need no copy)
    return frame if keep.all() else frame[keep]


def validate_rows(frames: dict[str, pd.DataFrame], parse_issues: pd.DataFrame, notes: pd.DataFrame,
                  files: pd.DataFrame, reference: Reference, *, known_projects: pd.DataFrame | None = None,
                  memo_path: Path | None = None) -> Validated:
    """Validate staged rows (joined to their files) in one GX batch per dataset.

    The register goes first: the measure rules need each project's primary measure type,
    from the accepted register rows plus ``known_projects`` (the published register,
    for ``validate`` on files alone). With ``memo_path`` rows validated before under the
    same suite are not validated again (``expectations.runner.ValidationMemo``).
    """
    from expectations.runner import ValidationMemo, validate

    memo = ValidationMemo.open(memo_path) if memo_path is not None else None

    frames = {name: frame.assign(_row_id=range(len(frame))) for name, frame in frames.items()}
    headers = notes[notes["source_sha256"].isin(files["sha256"])]
    parse = parse_issues[parse_issues["source_sha256"].isin(files["sha256"])]

    def located(result_issues: pd.DataFrame, checked: dict[str, pd.DataFrame]) -> pd.DataFrame:
        names = set(checked)
        return _merge_issues(_locate_issues(result_issues, checked, headers), parse[parse["dataset"].isin(names)], files)

    register = checks.register_checks(frames[PROJECT_REGISTER])
    reg_result = validate({PROJECT_REGISTER: register}, reference, run_name="register", memo=memo)
    reg_issues = located(reg_result.issues, {PROJECT_REGISTER: register})
    register_ok = _rows(register, _accepted_rows(register, reg_issues))
    projects = marts.dim_project(register_ok)
    if known_projects is not None and len(known_projects):
        projects = pd.concat([known_projects[~known_projects["project_id"].isin(projects["project_id"])], projects])

    enrolment = checks.enrolment_checks(frames[ENROLMENT_RETURN], reference.cohorts)
    enrolment = checks.project_registered_check(enrolment, projects["project_id"])
    measures = checks.measure_checks(frames[MEASURE_DATA], projects[["project_id", "measure_name", "measure_type"]])
    rest = {ENROLMENT_RETURN: enrolment, MEASURE_DATA: measures}
    rest_result = validate(rest, reference, run_name="rows", memo=memo)
    if memo is not None:
        memo.save()
    rest_issues = located(rest_result.issues, rest)
    issues = pd.concat([reg_issues, rest_issues], ignore_index=True).sort_values(
        ["file_name", "sheet", "row", "column", "rule"], ignore_index=True
    )
    checked = {PROJECT_REGISTER: register, **rest}
    accepted = {PROJECT_REGISTER: _accepted_rows(register, reg_issues),
                ENROLMENT_RETURN: _accepted_rows(enrolment, rest_issues),
                MEASURE_DATA: _accepted_rows(measures, rest_issues)}
    return Validated(checked, accepted, issues, reg_result.results + rest_result.results)


def _accepted_rows(frame: pd.DataFrame, issues: pd.DataFrame) -> np.ndarray:
    """True for each row of ``frame`` with no error (by file, sheet and row)."""
    errors = issues[issues["severity"] == "error"]
    bad = set(zip(errors["source_sha256"], errors["sheet"], errors["row"], strict=True))
    # Only rows of files with an error can be bad: look at those alone (a few, of many rows).
    suspect = frame["source_sha256"].isin(errors["source_sha256"].unique()).to_numpy()
    keep = np.ones(len(frame), dtype=bool)
    part = frame[suspect]
    keep[suspect] = [k not in bad for k in zip(part["source_sha256"], part["source_sheet"].fillna(""),
                                               part["source_row"], strict=True)]
    return keep


def build(store: StagedStore, submissions: pd.DataFrame, reference: Reference, *, current_period: str,
          due_day: int, workers: int = 1) -> tuple[Build, pd.DataFrame]:
    """Validate every staged row of ``submissions`` and build the marts.

    ``submissions`` are the manifest rows of the submissions in this build (received by
    the build's date, not retracted; those rejected whole only count in
    mart_submission_status). Returns the build and the issues (one row per failing row
    and rule, with its location).
    """
    submissions = submissions.assign(reporting_period=[reporting_period_of(t) for t in submissions["received_at"]])
    resend = submissions["resend"].fillna(False).astype(bool) if "resend" in submissions else False
    files = submissions[(submissions["outcome"] != "rejected") & ~resend]
    frames = {name: _with_files(store.tables[name], files) for name in DATASETS}
    parse_issues, notes, memos = store.parse_issues, store.notes, store.folder
    del store  # (memory: the marts are built from the validated rows; a build holds every row several times)
    checkpoint("validate")
    validated = validate_rows(frames, parse_issues, notes, files, reference, memo_path=memos / VALIDATION_MEMO)
    # Rows rejected per file count errors, all found by validation (absence warnings come later).
    file_rows = _rows_per_file(frames, validated.issues)
    del frames
    measures, accepted = validated.checked.pop(MEASURE_DATA), validated.accepted_rows.pop(MEASURE_DATA)
    # (memory: what Great Expectations built around the rows it validated is garbage now,
    # in reference cycles that hold those rows too: about a quarter of a gigabyte at double
    # the benchmark's size, otherwise kept until the collector next looks at old objects)
    gc.collect()
    all_issues = validated.issues
    enrolment = validated.checked[ENROLMENT_RETURN]
    enrol_ok = validated.accepted(ENROLMENT_RETURN)
    projects = marts.dim_project(validated.accepted(PROJECT_REGISTER))
    registered = measures["project_id"].isin(projects["project_id"]).to_numpy()
    held = int((accepted & ~registered).sum())
    history = marts.fct_measure_history(measures, keep=accepted & registered)
    del measures, accepted, registered  # (memory: the history has every accepted value of a registered project)

    first = files["reporting_period"].min() if len(files) else current_period
    periods = periods_between(min(first, current_period), current_period)
    measure = marts.fct_measure(history)
    enrolment_facts = marts.fct_enrolment(enrol_ok, enrolment)
    all_issues = pd.concat([all_issues, absence_warnings(enrolment_facts, enrolment, files)], ignore_index=True)
    project_outcomes, spc_points = outcomes.build_outcome_marts(projects, measure, periods, workers=workers,
                                                                memo_path=memos)
    if workers > 1:
        # (memory: what the analysis's input and the pieces sent to the workers took goes back
        # to the system before the last marts are built and published: the build's highest
        # point, with the workers idle beside it; a few milliseconds)
        release_memory()
    tables = {
        "dim_organisation": marts.dim_organisation(reference.organisations),
        "dim_cohort": marts.dim_cohort(reference.cohorts),
        "dim_participant": marts.dim_participant(enrol_ok),
        "dim_project": projects,
        "fct_enrolment": enrolment_facts,
        "fct_measure_history": history,
        "fct_measure": measure,
        "mart_programme_summary": marts.mart_programme_summary(enrol_ok, reference.cohorts, periods),
        "mart_project_outcomes": project_outcomes,
        "mart_spc_points": spc_points,
        "data_quality_issues": all_issues,
        "mart_submission_status": marts.mart_submission_status(
            submissions, file_rows, enrolment_facts, projects, reference.cohorts, periods,
            {p: pd.Timestamp(due_at(p, due_day)) for p in periods},
        ),
    }
    tables = {name: frame[marts.SCHEMAS[name].names].reset_index(drop=True) for name, frame in tables.items()}
    rejected_rows = (
        all_issues[all_issues["severity"] == "error"]
        .drop_duplicates(["source_sha256", "dataset", "sheet", "row"])
        .groupby("source_sha256")
        .size()
    )
    per_file = files[["sha256"]].copy()
    per_file["rows_rejected"] = per_file["sha256"].map(rejected_rows).fillna(0).astype("int64")
    return Build(tables, per_file, held, validated.gx_results), all_issues


def absence_warnings(facts: pd.DataFrame, returns: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    """A warning on each organisation's newest return for every participant missing from it
    without a leaving status (SPEC 3.4), pointing at where they were last reported."""
    columns = marts.SCHEMAS["data_quality_issues"].names
    missing = facts[facts["absent_from_latest_return"] & facts["status"].isin(["Enrolled", "Active"])]
    if missing.empty:
        return pd.DataFrame(columns=columns)
    last_rows = (returns.sort_values(marts.ORDER_KEYS, kind="stable")
                 .drop_duplicates(subset=["organisation_code"], keep="last")
                 .set_index("organisation_code"))
    newest, newest_sheet = last_rows["source_sha256"], last_rows["source_sheet"].fillna("")
    meta = files.set_index("sha256")
    rows = []
    for fact in missing.itertuples(index=False):
        sha = newest.get(fact.organisation_code)
        if sha is None:
            continue
        last = meta.loc[fact.source_sha256, "file_name"]
        where = f"{last}" + (f", sheet {fact.source_sheet!r}" if fact.source_sheet else "") + f", row {fact.source_row}"
        rows.append({
            "source_sha256": sha, "file_name": meta.loc[sha, "file_name"], "organisation_code": fact.organisation_code,
            "reporting_period": meta.loc[sha, "reporting_period"], "dataset": ENROLMENT_RETURN,
            "sheet": newest_sheet[fact.organisation_code], "row": 0,  # row 0: the participant has no row here
            "column": "staff_id", "source_column": None, "rule": "participant_missing_from_return",
            "severity": "warning", "value": None,
            "message": f"A participant ({fact.cohort_code}, last reported as {fact.status} in {where}) is not in "
                       "this return.",
            "fix": "Each return is your full list: add them back, or send their row with status Completed, "
                   "Withdrawn or Deferred and the date it happened.",
        })
    return pd.DataFrame(rows, columns=columns).astype({"row": "int64"})


def _rows_per_file(frames: dict[str, pd.DataFrame], issues: pd.DataFrame) -> pd.DataFrame:
    """sha256 x dataset: rows received and rows rejected (with at least one error).

    Both count spreadsheet rows (file, sheet, row), so a wide measure row holding twelve
    periods is one row received, as it is one row rejected.
    """
    received = pd.concat(
        [f[["source_sha256", "source_sheet", "source_row"]].drop_duplicates().groupby("source_sha256").size()
         .rename("rows_received").reset_index().assign(dataset=n)
         for n, f in frames.items() if len(f)] or [pd.DataFrame(columns=["source_sha256", "rows_received", "dataset"])],
        ignore_index=True,
    )
    errors = issues[issues["severity"] == "error"].drop_duplicates(["source_sha256", "dataset", "sheet", "row"])
    rejected = errors.groupby(["source_sha256", "dataset"]).size().rename("rows_rejected").reset_index()
    out = received.merge(rejected, on=["source_sha256", "dataset"], how="left").fillna({"rows_rejected": 0})
    return out.rename(columns={"source_sha256": "sha256"}).astype({"rows_received": "int64", "rows_rejected": "int64"})


def _locate_issues(issues: pd.DataFrame, frames: dict[str, pd.DataFrame], notes: pd.DataFrame) -> pd.DataFrame:
    """Attach file, sheet, row, sender's column and value to each GX failure."""
    headers = {}
    for sha, sheet, text in notes.loc[notes["kind"] == "header", ["source_sha256", "sheet", "text"]].itertuples(index=False):
        record = json.loads(text)
        headers[(sha, sheet or "", record["dataset"])] = record["columns"]
    parts = []
    for name, frame in frames.items():
        sub = issues[issues["dataset"] == name]
        if sub.empty:
            continue
        rows = frame.set_index("_row_id")
        located = sub.join(rows[["source_sha256", "source_sheet", "source_row", "source_column"]], on="_row_id")
        # The sender's own header: the wide-form period header for a value, else the header row's.
        located["source_column"] = [
            wide if (c in ("value", "period") and isinstance(wide, str)) else headers.get((sha, sheet or "", name), {}).get(c)
            for c, wide, sha, sheet in zip(located["column"], located["source_column"], located["source_sha256"],
                                           located["source_sheet"], strict=True)
        ]
        values = []
        for rid, column in zip(sub["_row_id"], sub["column"], strict=True):
            if column == "staff_id" or column not in rows.columns:
                values.append(None)
            else:
                values.append(_display(rows.at[rid, column]))
        located["value"] = values
        parts.append(located)
    if not parts:
        return pd.DataFrame(columns=[*issues.columns, "source_sha256", "source_sheet", "source_row", "value"])
    out = pd.concat(parts, ignore_index=True)
    out["message"] = [m.replace("{value}", repr(v) if v is not None else "").replace("  ", " ")
                      for m, v in zip(out["message"], out["value"], strict=True)]
    return out.rename(columns={"source_sheet": "sheet", "source_row": "row"})


def _display(value: object) -> str | None:
    """A cell value as a sender would recognise it: 03/04/2025, 70, 116.67."""
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.6g}"
    return str(value)


def _merge_issues(located: pd.DataFrame, parse: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    """One table of row issues in the data_quality_issues shape; personal values redacted."""
    parse = parse.assign(fix="Correct the cell; see the message for the expected form.")
    # A cell that failed to parse is blank to the suites: drop the duplicate 'required' failure.
    cells = set(zip(parse["source_sha256"], parse["sheet"].fillna(""), parse["row"], parse["column"], strict=True))
    if len(located):
        located = located[[
            not (r.endswith("_required") and (s, sh or "", row, c) in cells)
            for r, s, sh, row, c in zip(located["rule"], located["source_sha256"], located["sheet"],
                                        located["row"], located["column"], strict=True)
        ]]
    cols = ["source_sha256", "dataset", "sheet", "row", "column", "source_column", "rule", "severity", "value", "message", "fix"]
    combined = pd.concat([located.reindex(columns=cols), parse.reindex(columns=cols)], ignore_index=True)
    meta = files[["sha256", "file_name", "organisation_code", "reporting_period"]].rename(columns={"sha256": "source_sha256"})
    combined = combined.merge(meta, on="source_sha256", how="left")
    combined.loc[combined["column"].isin(["staff_id", "first_name", "surname", "email", "mentor"]), "value"] = "[redacted]"
    combined["sheet"] = combined["sheet"].fillna("")
    combined["row"] = combined["row"].astype("int64")
    return combined[marts.SCHEMAS["data_quality_issues"].names]


# --- validate files without loading them ------------------------------------------------------


@dataclass
class FileCheck:
    """What ``validate`` found in one file: its rejection or its row issues."""

    path: Path
    rejection: str | None
    rows: int
    issues: pd.DataFrame  # data_quality_issues shape (values not redacted: the user holds the file)
    notes: list[str]


def check_files(paths: list[Path], reference: Reference, *, known_projects: pd.DataFrame | None,
                now: datetime) -> list[FileCheck]:
    """Stage and validate ``paths`` as if received now; nothing is written anywhere."""
    import os

    from transforms.archive import display_name, sha256_file
    from transforms.normalise import default_value_synonyms
    from transforms.staging import stage_file
    from transforms.tables import default_column_synonyms

    column_synonyms = default_column_synonyms(reference.column_synonyms)
    value_synonyms = default_value_synonyms(reference.value_synonyms)
    throwaway_key = os.urandom(32)  # keys are never kept: validate writes nothing
    staged: dict[str, list[pd.DataFrame]] = {}
    parse, notes, rows_of, results = [], [], {}, {}
    files = []
    for index, path in enumerate(paths):
        sha = sha256_file(path)
        tag = f"{sha}:{index}"  # the same bytes twice on the command line are still two files
        result = stage_file(path, sha256=tag, column_synonyms=column_synonyms, value_synonyms=value_synonyms)
        extra = [f"sheet {s!r} skipped: {r}" for s, r in result.skipped_sheets]
        extra += [f"sheet {s!r}: column {h!r} not recognised, ignored" for s, _, h in result.unknown_columns]
        rows_of[tag] = sum(len(f) for f in result.tables.values())
        if not result.rejection and rows_of[tag] == 0:
            result.rejection = NO_DATA_ROWS
        results[tag] = (path, result.rejection, extra)
        for name, frame in result.tables.items():
            frame = frame.drop(columns=[c for c in PERSONAL_DROPPED if c in frame.columns])
            if name == ENROLMENT_RETURN:
                frame = key_participants(frame, throwaway_key)
            staged.setdefault(name, []).append(_conform(frame, STAGED_SCHEMAS[name]))
        if result.issues:
            parse.append(_conform(pd.DataFrame(result.issues).assign(source_sha256=tag), PARSE_ISSUE_SCHEMA))
        if result.headers:
            notes.append(pd.DataFrame(
                [("header", s, json.dumps({"dataset": d, "columns": c}, sort_keys=True)) for s, d, c in result.headers],
                columns=["kind", "sheet", "text"]).assign(source_sha256=tag)[NOTE_SCHEMA.names])
        files.append({"sha256": tag, "file_name": display_name(str(path)), "organisation_code": None,
                      "received_at": pd.Timestamp(now), "reporting_period": reporting_period_of(now)})
    frame_of = {
        name: pd.concat(staged[name], ignore_index=True) if name in staged else empty_frame(STAGED_SCHEMAS[name])
        for name in DATASETS
    }
    file_table = pd.DataFrame(files)
    file_table["received_at"] = pd.to_datetime(file_table["received_at"], utc=True)
    frames = {name: _with_files(frame, file_table) for name, frame in frame_of.items()}

    def concat(parts: list[pd.DataFrame], schema: pa.Schema) -> pd.DataFrame:
        return pd.concat(parts, ignore_index=True) if parts else empty_frame(schema)

    validated = validate_rows(frames, concat(parse, PARSE_ISSUE_SCHEMA), concat(notes, NOTE_SCHEMA), file_table,
                              reference, known_projects=known_projects)
    out = []
    for tag, (path, rejection, extra) in results.items():
        issues = validated.issues[validated.issues["source_sha256"] == tag]
        out.append(FileCheck(path, rejection, rows_of[tag], issues.reset_index(drop=True), extra))
    return out
