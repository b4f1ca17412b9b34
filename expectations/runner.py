"""Run the suites: one Great Expectations validation per dataset per run, in batch.

Rows from every file of a run are validated together (a GX run has a fixed cost of
about 65 ms, STACK.md); each failure is mapped back to its row through ``_row_id``.
Personal columns are never handed to GX, so Data Docs cannot show them. The raw GX
results are kept on the ``ValidationResult`` for ``expectations.docs.write_data_docs``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field

import pandas as pd

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
        import great_expectations as gx

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return gx


def _context():
    gx = import_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False, "profilers": False}
    return gx, context


def validate(frames: dict[str, pd.DataFrame], reference: Reference, *, run_name: str = "run") -> ValidationResult:
    """Validate each dataset's frame (with ``_row_id`` and ``chk_*`` columns) in one batch.

    ``frames``: dataset name -> every row of that dataset in the run, with ``_row_id``
    (unique within the frame) and the ``chk_*`` columns of ``transforms.checks``.
    Returns one issue per failing row per rule, success per dataset and the raw GX results.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _validate(frames, reference, run_name)


def _validate(frames: dict[str, pd.DataFrame], reference: Reference, run_name: str) -> ValidationResult:
    present = {name: frame for name, frame in frames.items() if len(frame)}
    if not present:
        return ValidationResult(pd.DataFrame(columns=ISSUE_COLUMNS), {})
    gx, context = _context()
    source = context.data_sources.add_pandas("qi")
    found: list[pd.DataFrame] = []
    success: dict[str, bool] = {}
    results: list = []
    skipped: dict[str, list[str]] = {}
    for name, frame in present.items():
        checks: list[Check] = SUITES[name](reference)
        safe = frame[[c for c in frame.columns if c not in PERSONAL]]
        suite = gx.ExpectationSuite(name=name)
        for index, check in enumerate(checks):
            if check.checked_column not in safe.columns:
                skipped.setdefault(name, []).append(check.rule)
                continue
            meta = {"check": index, "rule": check.rule, "severity": check.severity, "column": check.column}
            expectation = getattr(gx.expectations, check.expectation)(
                **check.kwargs, meta=meta, description=check.description(),
                severity="critical" if check.severity == "error" else "warning",
            )
            suite.add_expectation(expectation)
        suite = context.suites.add(suite)
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(f"{name}_{run_name}")
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_{run_name}", data=batch, suite=suite))
        # _row_id maps failures back; file, sheet and row let an analyst find them from the Data Docs.
        index_columns = ["_row_id", *[c for c in LOCATION_COLUMNS if c in safe.columns]]
        result = definition.run(
            batch_parameters={"dataframe": safe},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index_columns},
        )
        success[name] = bool(result.success)
        results.append(result)
        for item in result.results:
            if item.success:
                continue
            check = checks[item.expectation_config.meta["check"]]
            failure = _exception_message(item)
            if failure:
                # A rule that could not be evaluated must not pass rows silently.
                raise RuntimeError(f"validation rule {name}.{check.rule} could not be evaluated: {failure}")
            rows = [entry["_row_id"] for entry in item.result.get("unexpected_index_list") or []]
            if not rows:
                continue
            found.append(
                pd.DataFrame(
                    {
                        "dataset": name,
                        "_row_id": pd.array(rows, dtype="int64"),
                        "rule": check.rule,
                        "column": check.column,
                        "severity": check.severity,
                        "message": check.message,
                        "fix": check.fix,
                    }
                )
            )
    issues = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=ISSUE_COLUMNS)
    return ValidationResult(issues, success, results, skipped)


def _exception_message(item) -> str | None:
    """The message of an exception GX caught while evaluating one expectation, if any."""
    info = item.exception_info or {}
    entries = info.values() if info and "raised_exception" not in info else [info]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error").splitlines()[0]
    return None
