"""The feedback workbook for a sender (SPEC 8), one per processed submission.

Written for a partner's data lead, not an analyst: what happened to the file, how many
rows were loaded, and each problem with the sheet, row and column as the sender wrote
them, the value, the rule and how to fix it. It goes back to the sender, who holds the
data already, so it may quote the offending cell; it never carries names, e-mails or
mentors (those columns are never written, and a problem in one of them is described
without its value). Same house style as the commissioner workbook (``reports.layout``).

Path: ``data/reports/YYYY-MM/feedback/<org>_<original file stem>_<sha8>_feedback.xlsx``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reports.layout import (
    NOT_APPLICABLE,
    NOT_AVAILABLE,
    Link,
    contents_sheet,
    cover_sheet,
    is_missing,
    long_date,
    new_book,
    notes_sheet,
    plural,
    sheet_header,
    write_table,
)
from transforms.parallel import run_jobs

PERSONAL_COLUMNS = frozenset({"first_name", "surname", "email", "mentor"})
PERSONAL_HIDDEN = "[not shown: personal data]"
ISSUE_COLUMNS = ("dataset", "sheet", "row", "column", "source_column", "rule", "severity", "value", "message", "fix")
NOTE_KINDS = {"skipped_sheet": "Sheet not read", "unknown_column": "Column ignored"}
OUTCOMES = ("accepted", "accepted_with_errors", "rejected")
DATASET_WORDS = {"enrolment_return": "Enrolment return", "project_register": "Project register",
                 "measure_data": "Measure data"}
SEVERITY_WORDS = {"file": "File rejected", "error": "Error: row not loaded",
                  "warning": "Warning: row loaded, please check"}
SEVERITY_ORDER = {"file": 0, "error": 1, "warning": 2}
FEEDBACK_CHUNK = 32  # at most this many workbooks per task in a worker process
FEEDBACK_IN_PROCESS_BELOW = 16  # fewer than this are quicker written here (the run's workers are already up)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[A-Za-z]{2,}")


def without_emails(text: str) -> str:
    """Header text is the sender's own, but an e-mail address in it never goes back in a workbook."""
    return _EMAIL.sub("[e-mail address removed]", text)


def feedback_path(reports_dir: Path, period: str, organisation_code: str | None, file_name: str, sha256: str) -> Path:
    """``<reports>/<period>/feedback/<org>_<file stem>_<sha8>_feedback.xlsx``, safe on any file system."""
    org = _UNSAFE_NAME.sub("_", (organisation_code or "UNKNOWN").strip()).strip("._") or "UNKNOWN"
    stem = Path(str(file_name).replace("\\", "/")).stem
    stem = _UNSAFE_NAME.sub("_", stem).strip("._")[:60] or "file"
    return reports_dir / period / "feedback" / f"{org}_{stem}_{sha256[:8]}_feedback.xlsx"


def _text_or_x(value: Any) -> str:
    return value if isinstance(value, str) and value else NOT_AVAILABLE


def _int(value: Any) -> Any:
    return NOT_AVAILABLE if is_missing(value) else int(value)


def _what_happened(outcome: str, reason: str | None, counts: dict) -> str:
    received, accepted = _int(counts.get("rows_received")), _int(counts.get("rows_accepted"))
    rejected, warnings = _int(counts.get("rows_rejected")), _int(counts.get("warnings"))
    checks = (f" {plural(warnings, 'warning')} {'is' if warnings == 1 else 'are'} listed on the Issues sheet: "
              f"{'that row was' if warnings == 1 else 'those rows were'} loaded, but please check "
              f"{'it' if warnings == 1 else 'them'}." if warnings else "")
    if outcome == "rejected":
        return (f"Your file could not be used, so nothing from it was loaded. Reason: {reason or 'not recorded'}. "
                "Please correct it and send it again.")
    if outcome == "accepted_with_errors":
        return (f"Your file was loaded, but {rejected} of its {plural(received, 'row')} "
                f"{'was' if rejected == 1 else 'were'} not: the Issues sheet lists each problem and how to fix it. "
                f"{plural(accepted, 'row')} {'was' if accepted == 1 else 'were'} loaded.{checks}")
    return (f"Your file was loaded in full ({plural(received, 'row')})."
            + (checks if warnings else " There is nothing to fix."))


def issues_frame(issues: pd.DataFrame) -> pd.DataFrame:
    """The Issues table: one row per problem, in sheet, row, column order; personal values never shown."""
    columns = ["Sheet", "Row", "Column (as you wrote it)", "Value", "Problem", "Severity", "How to fix", "Return",
               "Rule"]
    if issues.empty:  # most files: no sorting to do
        return pd.DataFrame([{c: NOT_APPLICABLE for c in columns} | {"Problem": "No problems found", "Severity": "None"}],
                            columns=columns)
    frame = issues.reindex(columns=list(ISSUE_COLUMNS))  # only these columns, whatever else the frame has
    frame = frame.assign(
        _sev=frame["severity"].map(SEVERITY_ORDER).fillna(3),
        _row=pd.to_numeric(frame["row"], errors="coerce"),
        _sheet=frame["sheet"].fillna("").astype(str),
    ).sort_values(["_sheet", "_row", "column", "_sev", "rule"], kind="stable", na_position="first")
    rows = []
    for issue in frame.itertuples(index=False):
        column = issue.column if isinstance(issue.column, str) else ""
        personal = column in PERSONAL_COLUMNS
        value = issue.value
        message = issue.message if isinstance(issue.message, str) and issue.message else NOT_AVAILABLE
        if personal:
            if isinstance(value, str) and value and value in message:
                message = message.replace(value, "[not shown]")
            value = PERSONAL_HIDDEN
        elif is_missing(value) or value == "":
            value = "(blank)"
        sheet = issue.sheet if isinstance(issue.sheet, str) and issue.sheet else "(CSV file: no sheets)"
        sender_column = issue.source_column if isinstance(issue.source_column, str) and issue.source_column else column
        rows.append({
            "Sheet": sheet,
            "Row": _int(issue.row),
            "Column (as you wrote it)": sender_column or NOT_APPLICABLE,
            "Value": value,
            "Problem": message,
            "Severity": SEVERITY_WORDS.get(issue.severity, _text_or_x(issue.severity)),
            "How to fix": _text_or_x(issue.fix),
            "Return": DATASET_WORDS.get(issue.dataset, _text_or_x(issue.dataset)),
            "Rule": _text_or_x(issue.rule),
        })
    return pd.DataFrame(rows, columns=columns)


def build_feedback_workbook(path: Path, *, file_name: str, organisation_code: str | None, received_at: datetime,
                            outcome: str, reason: str | None, counts: dict, issues: pd.DataFrame,
                            notes: pd.DataFrame, produced_at: datetime | None = None) -> Path:
    """Write the feedback workbook for one submission; return ``path``.

    ``outcome``: 'accepted', 'accepted_with_errors' or 'rejected' (``reason`` says why,
    for a file rejected as a whole). ``counts``: rows_received, rows_accepted,
    rows_rejected, warnings. ``issues``: dataset, sheet, row, column, source_column, rule,
    severity, value, message, fix. ``notes``: kind ('skipped_sheet' or 'unknown_column'),
    sheet, text. ``produced_at`` defaults to ``received_at``, so the same submission
    always gives the same bytes.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    org = organisation_code or "unknown"
    received = pd.Timestamp(received_at)
    title = f"Feedback on your file {file_name}"
    book = new_book(title=title, subject=f"Feedback on a submission to the QI programme ({org})",
                    created=produced_at or received_at, keywords="feedback, data quality",
                    comments="What happened to the file and how to fix each problem.")
    fmt = book.fmt
    table = issues_frame(issues)
    n_errors = int((issues["severity"] == "error").sum()) if "severity" in issues.columns else 0
    n_problems = len(issues)
    summary_line = _what_happened(outcome, reason, counts)

    cover_sheet(book, title, [
        ("What happened", [summary_line]),
        ("Your file", [
            f"File: {file_name}",
            f"Organisation: {org}",
            f"Received: {long_date(received, time=True)}",
        ]),
        ("What to do next", [
            "Look at the Issues sheet: each row says which sheet, row and column of your file has a problem, what the "
            "problem is and how to fix it. Row numbers are as you see them when you open your file.",
            "Correct the rows in your own copy and send the corrected file as usual.",
            Link("'Contents'!A1", "Go to the contents"),
        ]),
        ("About this workbook", [
            "It quotes values from your own file so you can find them; names, e-mail addresses and mentors are "
            "never shown.",
            f"Shorthand: {NOT_AVAILABLE} not available; {NOT_APPLICABLE} not applicable.",
        ]),
    ])
    contents_sheet(book, [
        ("Notes", "What the words in this workbook mean"),
        ("Summary", "The outcome and the number of rows"),
        ("Issues", "Every problem found, with where it is and how to fix it"),
        ("Not read", "Sheets that were not read and columns that were ignored"),
    ])
    notes_sheet(book, [
        "Row numbers are as a spreadsheet program shows them when you open your file (title rows counted). For a "
        "CSV file, the row is the line as a spreadsheet program shows it.",
        "Error: the row was not loaded; correct it and send it again. Warning: the row was loaded, but something "
        "looks wrong; please check it. File rejected: nothing from the file was loaded.",
        "Values are quoted from your file so you can find them. Names, e-mail addresses and mentors are never "
        "shown in this workbook.",
    ], shorthand=[NOT_AVAILABLE, NOT_APPLICABLE])

    sheet = book.add_sheet("Summary")
    start = sheet_header(sheet, fmt, f"Summary of your file {file_name}", [
        "This worksheet contains one table.", summary_line])
    summary = pd.DataFrame([
        ("Outcome", {"accepted": "Accepted", "accepted_with_errors": "Accepted with errors: some rows not loaded",
                     "rejected": "Rejected: nothing loaded"}[outcome]),
        ("Reason the file was rejected", reason if outcome == "rejected" and reason else NOT_APPLICABLE),
        ("Rows received", _int(counts.get("rows_received"))),
        ("Rows loaded", _int(counts.get("rows_accepted"))),
        ("Rows not loaded (errors)", _int(counts.get("rows_rejected"))),
        ("Warnings (rows loaded, please check)", _int(counts.get("warnings"))),
        ("Problems listed on the Issues sheet", n_problems),
        ("Of which errors", n_errors),
    ], columns=["Item", "Value"])
    write_table(sheet, fmt, start, summary, name="summary", widths={"Item": 42, "Value": 70},
                formats={"Value": [fmt.integer if isinstance(v, int) else fmt.wrap for v in summary["Value"]]},
                description="Outcome and counts")

    sheet = book.add_sheet("Issues")
    start = sheet_header(sheet, fmt, "Problems found in your file", [
        "This worksheet contains one table: one row per problem, in the order of your file [note 1] [note 2].",
        "Severity is in words; the fill colour only repeats it (orange: the row was not loaded).",
    ])
    fills = [fmt.bad if s == SEVERITY_WORDS["error"] or s == SEVERITY_WORDS["file"] else fmt.neutral
             for s in table["Severity"]]
    write_table(sheet, fmt, start, table, name="issues",
                widths={"Sheet": 18, "Row": 8, "Column (as you wrote it)": 24, "Value": 24, "Problem": 60,
                        "Severity": 24, "How to fix": 60, "Return": 18, "Rule": 28},
                formats={"Row": fmt.integer, "Problem": fmt.wrap, "How to fix": fmt.wrap, "Severity": fills},
                description="Problems found in the file")

    sheet = book.add_sheet("Not read")
    start = sheet_header(sheet, fmt, "Sheets not read and columns ignored", [
        "This worksheet contains one table. Hidden sheets and sheets without a recognisable return are not read; "
        "columns we do not recognise are ignored (the rest of the sheet is read)."])
    skipped = notes.reindex(columns=["kind", "sheet", "text"])
    skipped_table = pd.DataFrame({
        "What": [NOTE_KINDS.get(k, k) if isinstance(k, str) else NOT_AVAILABLE for k in skipped["kind"]],
        "Sheet": [s if isinstance(s, str) and s else NOT_APPLICABLE for s in skipped["sheet"]],
        "Detail": [without_emails(t) if isinstance(t, str) and t else NOT_AVAILABLE for t in skipped["text"]],
    })
    if skipped_table.empty:
        skipped_table = pd.DataFrame({"What": ["Nothing"], "Sheet": [NOT_APPLICABLE],
                                      "Detail": ["Every visible sheet was read and every column was recognised."]})
    write_table(sheet, fmt, start, skipped_table, name="not_read", widths={"What": 20, "Sheet": 24, "Detail": 90},
                formats={"Detail": fmt.wrap}, description="Sheets not read and columns ignored")

    book.workbook.worksheets()[0].activate()
    return book.save(path)


def _write_feedback_job(job: tuple[Path, Any, datetime | None]) -> Path:
    path, j, produced_at = job
    return build_feedback_workbook(path, file_name=j.file_name, organisation_code=j.organisation_code,
                                   received_at=j.received_at, outcome=j.outcome, reason=j.reason, counts=j.counts,
                                   issues=j.issues, notes=j.notes, produced_at=produced_at)


def write_feedback_workbooks(reports_dir: Path, jobs: Sequence[Any], *, produced_at: datetime | None,
                             workers: int = 1) -> list[Path]:
    """One feedback workbook per job (``transforms.run.FeedbackJob``); their paths, in job order.

    With more than one worker they are written in worker processes, a few dozen a task
    (one workbook is about 7 ms of work, so each task must carry several).
    """
    work = [(feedback_path(reports_dir, j.period, j.organisation_code, j.file_name, j.sha256), j, produced_at)
            for j in jobs]
    chunk = min(FEEDBACK_CHUNK, -(-len(work) // max(1, workers)))  # a month's few dozen: one task per worker
    return run_jobs(_write_feedback_job, work, workers=workers, chunksize=chunk,
                    in_process_below=FEEDBACK_IN_PROCESS_BELOW)


__all__ = ["PERSONAL_COLUMNS", "build_feedback_workbook", "feedback_path", "issues_frame", "write_feedback_workbooks"]
