"""Run the suites: one Great Expectations validation per dataset per run, in batch.

Rows from every file of a run are validated together (a GX run has a fixed cost of
about 65 ms, STACK.md); each failure is mapped back to its row through ``_row_id``.
Personal columns are never handed to GX, so Data Docs cannot show them. The raw GX
results are kept on the ``ValidationResult`` for ``expectations.docs.write_data_docs``.

Every expectation is row-wise (cross-row rules are ``chk_*`` columns computed before), so
a row's outcome depends only on the values of the columns its suite checks. With a
``ValidationMemo`` a row already validated under the same suite is not handed to GX again:
its failures come from the memo. A nightly run then validates only the rows that are new
or changed, and the Data Docs show those.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from expectations import enrolment_return, measure_data, project_register
from expectations.checks import Check
from transforms.reference import Reference

SUITES = {
    enrolment_return.DATASET: enrolment_return.build,
    project_register.DATASET: project_register.build,
    measure_data.DATASET: measure_data.build,
}
# Columns that must never reach GX results or Data Docs.
PERSONAL = {"staff_id", "first_name", "surname", "email", "mentor"}

# Where a failing row is, as shown in the Data Docs next to each unexpected value.
LOCATION_COLUMNS = ("file_name", "source_sheet", "source_row")

ISSUE_COLUMNS = ["dataset", "_row_id", "rule", "column", "severity", "message", "fix"]


@dataclass
class ValidationResult:
    issues: pd.DataFrame  # ISSUE_COLUMNS, one row per failing row per rule
    success: dict[str, bool]
    # The GX ExpectationSuiteValidationResult of each dataset validated, for the Data Docs.
    results: list = field(default_factory=list)
    # dataset -> rules not checked because the frame lacks the column they look at.
    skipped: dict[str, list[str]] = field(default_factory=dict)


_preloading: threading.Thread | None = None
log = logging.getLogger("qi.validate")

# Bump when a change here changes which rows fail for the same suite and values.
MEMO_VERSION = "1"
# A save that would make this many parts rewrites the memo with the parts folded in instead.
MEMO_MERGE_PARTS_AT = 12
MEMO_SCHEMA = pa.schema([
    ("suite", pa.string()),  # suite_fingerprint of the checks applied
    ("h1", pa.uint64()),  # two independent 64-bit hashes of the checked values: a 128-bit key
    ("h2", pa.uint64()),
    ("failed", pa.string()),  # indices (in the suite's check list) of the checks the row fails, comma-separated
])


def row_wise(check: Check) -> bool:
    """Whether a row's outcome under ``check`` depends on that row alone: GX's column map
    expectations (``ExpectColumnValuesTo...``). A suite with any other kind (a table or
    aggregate expectation) is always validated whole, memo or not."""
    return check.expectation.startswith("ExpectColumnValuesTo")


def suite_fingerprint(dataset: str, checks: list[tuple[int, Check]]) -> str:
    """Identifies a suite as applied: its checks (with their value sets), GX's version and ours."""
    def plain(value: object) -> object:
        return sorted(value, key=str) if isinstance(value, set | frozenset) else str(value)

    spec = [dataset, MEMO_VERSION, version("great_expectations"),
            [(i, c.rule, c.expectation, c.severity, c.kwargs) for i, c in checks]]
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=plain).encode()).hexdigest()[:32]


def row_keys(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes of each row's values in ``columns`` (in that order).

    A column of Python objects is hashed with each value's type, so 5 and '5' (which a
    rule may treat differently) never share a key; staged columns are typed anyway."""
    sub = frame[list(dict.fromkeys(columns))]
    loose = [c for c in sub.columns if sub[c].dtype == object]
    if loose:
        sub = sub.assign(**{c: [f"{type(v).__name__}:{v!r}" for v in sub[c]] for c in loose})
    return (pd.util.hash_pandas_object(sub, index=False, hash_key="qi-validated-v1a").to_numpy(),
            pd.util.hash_pandas_object(sub, index=False, hash_key="qi-validated-v1b").to_numpy())


class ValidationMemo:
    """What GX said of each row already validated: (suite, row key) -> the checks it fails.

    Kept next to the staged store (derived data: losing it only costs time) as a Parquet
    file, plus a part for each run since it was last rewritten (``<name>.parts/000001.parquet``,
    ...: the entries that run added), read after it. Entries are only ever added for rows GX
    has just validated. A save that would make the ``MEMO_MERGE_PARTS_AT``-th part rewrites
    the file with the parts folded in instead, keeping the entries used or added in that
    run, plus older ones while the memo is small. (Rewriting the file every night cost a
    new month about 0.13 s at the benchmark's size, and more as the history grows.)
    """

    def __init__(self, path: Path | None, frame: pd.DataFrame | None = None, parts: list[Path] | None = None,
                 *, whole: bool = False) -> None:
        self.path = path
        self.frame = frame if frame is not None else MEMO_SCHEMA.empty_table().to_pandas()
        self._parts = list(parts or [])  # the part files read into ``frame``, oldest first
        self._whole = whole  # the next save rewrites the file and drops the parts
        self._index: pd.Index | None = None
        self._hits: list[np.ndarray] = []  # positions in ``frame`` looked up in this run
        self._added: list[pd.DataFrame] = []

    @staticmethod
    def parts_folder(path: Path) -> Path:
        return path.with_name(f"{path.stem}.parts")

    @classmethod
    def open(cls, path: Path) -> ValidationMemo:
        """The memo at ``path``; an empty one when it is missing or unreadable (every row is validated)."""
        from transforms.storage import read_table

        folder = cls.parts_folder(path)
        parts = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        try:
            pieces = [read_table(piece, MEMO_SCHEMA) for piece in [path, *parts] if piece.exists()]
        except Exception as exc:  # noqa: BLE001 - a cache: start again rather than fail the run
            log.warning("validation memo unreadable, validating every row again: %s", type(exc).__name__)
            return cls(path, parts=parts, whole=True)
        frame = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else (pieces[0] if pieces else None)
        return cls(path, frame, parts, whole=not path.exists())

    @staticmethod
    def _key(suite: str | np.ndarray, h1: np.ndarray) -> np.ndarray:
        """One 64-bit number of (suite, h1), to find entries with a flat index (h2 and the
        suite are compared on each hit, so a collision here only costs a validation)."""
        if isinstance(suite, str):
            return h1 ^ np.uint64(_suite_salt(suite))
        codes, names = pd.factorize(suite)
        return h1 ^ np.array([_suite_salt(str(n)) for n in names], dtype=np.uint64)[codes]

    def _keys(self) -> pd.Index:
        if self._index is None:
            self._index = pd.Index(self._key(self.frame["suite"].to_numpy(dtype=object),
                                             self.frame["h1"].to_numpy(dtype=np.uint64)))
        return self._index

    def lookup(self, suite: str, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """Each row's failed checks ('' when it passed), or None when the memo has not seen it."""
        if not len(self.frame) or not len(h1):
            return np.full(len(h1), None, dtype=object)
        index = self._keys()
        if not index.is_unique:  # entries sharing (suite, h1), or repeated: keep the newest of each
            self.frame = self.frame[~index.duplicated(keep="last")].reset_index(drop=True)
            self._index = None
            index = self._keys()
        position = index.get_indexer(self._key(suite, np.asarray(h1, dtype=np.uint64)))
        found = position >= 0
        at = np.maximum(position, 0)
        found &= self.frame["h2"].to_numpy(dtype=np.uint64)[at] == np.asarray(h2, dtype=np.uint64)
        found &= self.frame["suite"].to_numpy(dtype=object)[at] == suite
        out = np.where(found, self.frame["failed"].to_numpy(dtype=object)[at], None)
        if found.any():
            self._hits.append(position[found])
        return out

    def add(self, suite: str, h1: np.ndarray, h2: np.ndarray, failed: list[str]) -> None:
        self._added.append(pd.DataFrame({"suite": suite, "h1": h1, "h2": h2, "failed": failed}))

    def save(self, keep_unused_below: int = 2_000_000) -> None:
        """Write what this run added (atomically), as a new part; or, instead of the
        ``MEMO_MERGE_PARTS_AT``-th part, rewrite the memo with the parts folded in. Older
        entries are kept while the memo stays under ``keep_unused_below`` rows, so a backfill
        of early periods does not forget later rows; past that, only the entries used or
        added in this run."""
        from transforms.storage import write_table

        if self.path is None or not self._added:
            return
        added = pd.concat(self._added, ignore_index=True).drop_duplicates(["suite", "h1", "h2"], keep="last")
        large = len(self.frame) + len(added) >= keep_unused_below
        if not (self._whole or large or len(self._parts) + 1 >= MEMO_MERGE_PARTS_AT):
            # (an added row was not found in the memo: no entry is there twice)
            folder = self.parts_folder(self.path)
            folder.mkdir(exist_ok=True)
            part = folder / f"{int(self._parts[-1].stem) + 1 if self._parts else 1:06d}.parquet"
            write_table(added, part, MEMO_SCHEMA)
            self._parts.append(part)
            frame = pd.concat([self.frame, added], ignore_index=True)
        else:
            kept = self.frame
            if large:
                kept = self.frame.iloc[np.unique(np.concatenate(self._hits))] if self._hits else self.frame.iloc[0:0]
            frame = pd.concat([kept, added], ignore_index=True)
            write_table(frame, self.path, MEMO_SCHEMA)
            # (stopped here, the parts are read again next time: entries twice, the newest used)
            for part in self._parts:
                part.unlink(missing_ok=True)
            self._parts, self._whole = [], False
        self.frame, self._index, self._hits, self._added = frame, None, [], []


@functools.lru_cache(maxsize=None)
def _suite_salt(suite: str) -> int:
    """A suite name as 64 bits, mixed into each row hash of the memo's flat index."""
    return int(hashlib.sha256(suite.encode()).hexdigest()[:16], 16)


def preload_gx() -> None:
    """Start importing Great Expectations in a background thread (about 2 s of imports).

    Called when files are about to be read, so the import overlaps the reading (which
    mostly waits for worker processes); ``import_gx`` waits for it to finish. An import
    error is not raised here: ``import_gx`` meets it again.
    """
    global _preloading
    if _preloading is not None or "great_expectations" in sys.modules:
        return
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    def load() -> None:
        try:
            _lazy_module("scipy.stats")
            import great_expectations  # noqa: F401
        except Exception:  # noqa: BLE001 - raised again, with its traceback, by import_gx
            pass

    _preloading = threading.Thread(target=load, name="preload-great-expectations", daemon=True)
    _preloading.start()


def import_gx():
    """Import Great Expectations quietly (no analytics, no progress bars, no INFO logs)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if _preloading is not None:
        _preloading.join()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _lazy_module("scipy.stats")
        import great_expectations as gx

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return gx


def _lazy_module(name: str) -> None:
    """Make ``import name`` give a module whose code runs on first use (importlib's LazyLoader).

    For ``scipy.stats``: Great Expectations imports it with every expectation class, for
    distribution expectations this project does not use; loading it is about a third of
    GX's import time. Anything that does use it loads it then, unchanged."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        return
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)


def _context():
    gx = import_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False, "profilers": False}
    return gx, context


def validate(frames: dict[str, pd.DataFrame], reference: Reference, *, run_name: str = "run",
             memo: ValidationMemo | None = None) -> ValidationResult:
    """Validate each dataset's frame (with ``_row_id`` and ``chk_*`` columns) in one batch.

    ``frames``: dataset name -> every row of that dataset in the run, with ``_row_id``
    (unique within the frame) and the ``chk_*`` columns of ``transforms.checks``.
    ``memo``: rows it has seen under the same suite are not validated again (and GX is
    not even imported when it has seen them all); the caller saves it.
    Returns one issue per failing row per rule, success per dataset and the raw GX results
    (of the rows GX validated).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _validate(frames, reference, run_name, memo)


def _validate(frames: dict[str, pd.DataFrame], reference: Reference, run_name: str,
              memo: ValidationMemo | None) -> ValidationResult:
    present = {name: frame for name, frame in frames.items() if len(frame)}
    if not present:
        return ValidationResult(pd.DataFrame(columns=ISSUE_COLUMNS), {})
    found: list[pd.DataFrame] = []
    success: dict[str, bool] = {}
    results: list = []
    skipped: dict[str, list[str]] = {}
    gx = context = source = None
    for name, frame in present.items():
        checks: list[Check] = SUITES[name](reference)
        safe = frame[[c for c in frame.columns if c not in PERSONAL]]
        applied = [(i, c) for i, c in enumerate(checks) if c.checked_column in safe.columns]
        if missing := [c.rule for c in checks if c.checked_column not in safe.columns]:
            skipped[name] = missing
        failing: dict[int, list[int]] = {}  # check index -> _row_ids, from GX or the memo
        remembered = memo is not None and all(row_wise(c) for _, c in applied)
        if remembered:
            fingerprint = suite_fingerprint(name, applied)
            h1, h2 = row_keys(safe, [c.checked_column for _, c in applied])
            known = memo.lookup(fingerprint, h1, h2)
            fresh = pd.isna(known)
            for row_id, failed in zip(safe["_row_id"].to_numpy()[~fresh], known[~fresh], strict=True):
                for index in failed.split(",") if failed else ():
                    failing.setdefault(int(index), []).append(int(row_id))
            safe = safe[fresh]
        if len(safe):
            if gx is None:
                gx, context = _context()
                source = context.data_sources.add_pandas("qi")
            result, fresh_failing = _run_suite(gx, context, source, name, checks, applied, safe, run_name)
            results.append(result)
            for index, rows in fresh_failing.items():
                failing.setdefault(index, []).extend(rows)
            if remembered:
                failed_of: dict[int, list[str]] = {}
                for index, rows in fresh_failing.items():
                    for row_id in rows:
                        failed_of.setdefault(row_id, []).append(str(index))
                memo.add(fingerprint, h1[fresh], h2[fresh],
                         [",".join(failed_of.get(int(r), ())) for r in safe["_row_id"].to_numpy()])
        success[name] = not failing
        for index in sorted(failing):
            check = checks[index]
            found.append(
                pd.DataFrame(
                    {
                        "dataset": name,
                        "_row_id": pd.array(sorted(failing[index]), dtype="int64"),
                        "rule": check.rule,
                        "column": check.column,
                        "severity": check.severity,
                        "message": check.message,
                        "fix": check.fix,
                    }
                )
            )
    if source is not None:
        # GX keeps the last context (a module global), and the context's data source every
        # batch it validated: the rows, held until the process ended. Without the source they
        # are garbage, in reference cycles (``transforms.load.build`` collects them).
        context.data_sources.delete(source.name)
    issues = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=ISSUE_COLUMNS)
    return ValidationResult(issues, success, results, skipped)


def _run_suite(gx, context, source, name: str, checks: list[Check], applied: list[tuple[int, Check]],
               safe: pd.DataFrame, run_name: str) -> tuple[object, dict[int, list[int]]]:
    """One GX validation of ``safe`` against the ``applied`` checks: the result and, per
    failing check (its index in ``checks``), the ``_row_id`` of each failing row."""
    suite = gx.ExpectationSuite(name=name)
    for index, check in applied:
        meta = {"check": index, "rule": check.rule, "severity": check.severity, "column": check.column}
        expectation = getattr(gx.expectations, check.expectation)(
            **check.kwargs, meta=meta, description=check.description(),
            severity="critical" if check.severity == "error" else "warning",
        )
        suite.add_expectation(expectation)
    suite = context.suites.add(suite)
    batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(f"{name}_{run_name}")
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_{run_name}", data=batch,
                                                                            suite=suite))
    # _row_id maps failures back; file, sheet and row let an analyst find them from the Data Docs.
    index_columns = ["_row_id", *[c for c in LOCATION_COLUMNS if c in safe.columns]]
    result = definition.run(
        batch_parameters={"dataframe": safe},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index_columns},
    )
    failing: dict[int, list[int]] = {}
    for item in result.results:
        if item.success:
            continue
        index = item.expectation_config.meta["check"]
        failure = _exception_message(item)
        if failure:
            # A rule that could not be evaluated must not pass rows silently.
            raise RuntimeError(f"validation rule {name}.{checks[index].rule} could not be evaluated: {failure}")
        rows = [int(entry["_row_id"]) for entry in item.result.get("unexpected_index_list") or []]
        if rows:
            failing[int(index)] = rows
    return result, failing


def _exception_message(item) -> str | None:
    """The message of an exception GX caught while evaluating one expectation, if any."""
    info = item.exception_info or {}
    entries = info.values() if info and "raised_exception" not in info else [info]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error").splitlines()[0]
    return None
