"""Staging: one received file -> typed, canonical frames, one per dataset (SPEC 3, 3.4).

Staging renames and casts only: it finds each sheet's table, maps the sender's headers to
canonical columns, parses every cell to its column's type and drops personal data. Cells
that are not blank but do not parse become null and are reported as issues; rules about
the values themselves (required, ranges, reference data) belong to the validation suites.

Frame types: codes, text and categories are pandas ``str`` (missing = NaN); dates are
``datetime64[ms]`` at midnight (missing = NaT); numbers are ``float64``; ``source_row``
is ``int64``. Every frame carries ``source_sha256``, ``source_sheet`` ("" for CSV) and
``source_row``; measure_data also ``source_column`` (the period header for wide-form
rows, null for long form).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from transforms import datasets
from transforms.normalise import (
    INVALID,
    cell_text,
    default_value_synonyms,
    match_category,
    normalise_code,
    normalise_text,
    parse_date,
    parse_number,
    parse_period,
)
from transforms.read import SheetGrid, UnreadableFile, read_grids
from transforms.tables import FoundTable, default_column_synonyms, find_table

# Personal data never leaves staging; staff_id stays (the loader keys participants on it).
DROPPED_COLUMNS = frozenset({"first_name", "surname", "email", "mentor"})
LINEAGE_COLUMNS = ("source_sha256", "source_sheet", "source_row")

NO_DATASET = (
    "No sheet holds a recognisable enrolment return, project register or measure data "
    "header row in its first 30 rows"
)
SKIP_HIDDEN = "hidden sheet"
SKIP_EMPTY = "empty sheet"
SKIP_NO_DATASET = "no recognisable dataset (instructions or lists?)"


# One table's typed cells: canonical column (and lineage column) -> values, and its row count.
TypedColumns = tuple[dict[str, list[object]], int]


@dataclass
class StagedFile:
    """What staging made of one file: typed frames by dataset, cell issues, skipped sheets,
    unrecognised headers, or a file-level rejection (then ``tables`` is empty)."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    issues: list[dict] = field(default_factory=list)
    skipped_sheets: list[tuple[str, str]] = field(default_factory=list)
    unknown_columns: list[tuple[str, str, str]] = field(default_factory=list)
    # (sheet, dataset, canonical column -> the sender's header), to name columns as the sender did.
    headers: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    rejection: str | None = None
    # The rows of ``tables`` before they become frames: dataset -> one entry per table.
    columns: dict[str, list[TypedColumns]] = field(default_factory=dict)


def staged_columns(dataset: str) -> list[str]:
    """The columns of a staged frame of ``dataset``, in order."""
    names = [c.name for c in datasets.BY_NAME[dataset].columns if c.name not in DROPPED_COLUMNS]
    names += LINEAGE_COLUMNS
    if dataset == datasets.MEASURE_DATA:
        names.append("source_column")
    return names


def column_label(name: str) -> str:
    """A canonical column as a sender would name it: 'staff_id' -> 'Staff ID'."""
    return " ".join("ID" if w == "id" else w.capitalize() for w in name.split("_"))


def stage_file(
    path: Path,
    *,
    sha256: str,
    column_synonyms: dict[str, dict[str, str]] | None = None,
    value_synonyms: dict[str, dict[str, str]] | None = None,
    frames: bool = True,
) -> StagedFile:
    """Read, find and type every dataset table in the file at ``path``. Never raises for bad input.

    With ``frames=False`` only ``columns`` is filled, not ``tables``: for a caller that
    gathers many files' rows and makes one frame per dataset with ``staged_frame``
    (building a DataFrame per file costs more than reading the file).
    """
    with no_cycle_collection():
        return _stage_file(path, sha256, column_synonyms, value_synonyms, frames)


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: reading makes a million small objects, none in a cycle,
    and the collector (run every few hundred allocations) would scan them again and again,
    a fifth of the time of staging a large file."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stage_file(path: Path, sha256: str, column_synonyms: dict[str, dict[str, str]] | None,
                value_synonyms: dict[str, dict[str, str]] | None, frames: bool) -> StagedFile:
    column_synonyms = column_synonyms if column_synonyms is not None else default_column_synonyms()
    value_synonyms = value_synonyms if value_synonyms is not None else default_value_synonyms()
    try:
        grids = read_grids(path)
    except UnreadableFile as e:
        return StagedFile(rejection=e.reason)

    staged = StagedFile()
    found: list[tuple[SheetGrid, FoundTable]] = []
    for grid in grids:
        if not grid.visible:
            staged.skipped_sheets.append((grid.sheet, SKIP_HIDDEN))
            continue
        if not any(cell is not None for row in grid.rows for cell in row):
            staged.skipped_sheets.append((grid.sheet, SKIP_EMPTY))
            continue
        table = find_table(grid, column_synonyms)
        if table is None:
            staged.skipped_sheets.append((grid.sheet, SKIP_NO_DATASET))
            continue
        found.append((grid, table))
        staged.headers.append((grid.sheet, table.dataset, dict(table.source_columns)))
        staged.unknown_columns += [(grid.sheet, table.dataset, h) for h in table.unknown_columns]
    if not found:
        staged.rejection = NO_DATASET
        return staged
    missing = [_missing_columns_reason(t) for _, t in found if t.missing_required]
    if missing:
        staged.rejection = "; ".join(missing)
        return staged

    for grid, table in found:
        typed, n, issues = _stage_columns(grid, table, sha256, value_synonyms)
        staged.columns.setdefault(table.dataset, []).append((typed, n))
        staged.issues += issues
    if frames:
        staged.tables = {name: staged_frame(name, parts) for name, parts in staged.columns.items()}
    return staged


def staged_frame(dataset: str, parts: list[TypedColumns]) -> pd.DataFrame:
    """One typed frame of ``dataset`` from the typed columns of one or more tables, in order."""
    if len(parts) == 1:
        return _frame(dataset, *parts[0])
    merged: dict[str, list[object]] = {}
    for name in staged_columns(dataset):
        if any(name in typed for typed, _ in parts):
            values: list[object] = []
            for typed, n in parts:
                part = typed.get(name)
                values.extend(part if part is not None else [None] * n)
            merged[name] = values
    return _frame(dataset, merged, sum(n for _, n in parts))


def _missing_columns_reason(table: FoundTable) -> str:
    title = datasets.BY_NAME[table.dataset].title.lower()
    where = f"Sheet '{table.sheet}'" if table.sheet else "The file"
    labels = [column_label(c) for c in table.missing_required]
    if len(labels) == 1:
        return (f"{where} looks like {_a(title)} but has no {labels[0]} column "
                "(add it, or rename yours to the name in the template)")
    return (f"{where} looks like {_a(title)} but has no {', '.join(labels[:-1])} or {labels[-1]} column "
            "(add them, or rename yours to the names in the template)")


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


# --- Typing cells ---------------------------------------------------------------------------

_MESSAGES = {
    "invalid_date": "'{value}' in {column} is not a real date. Use a date such as 03/04/2025.",
    "invalid_period": (
        "'{value}' in {column} is not a date or a month. Use the date the period starts, "
        "such as 01/04/2025, or a month such as Apr-25."
    ),
    "invalid_number": "'{value}' in {column} is not a number. Use a number such as 85 or 1,234.",
    "not_in_list": "'{value}' in {column} is not one of the allowed values: {allowed}.",
}


def _issue(table: FoundTable, row: int, column: str, source_column: str, rule: str, raw: object) -> dict:
    value = cell_text(raw) or ""
    allowed = ""
    if rule == "not_in_list":
        allowed = ", ".join(datasets.CATEGORIES[datasets.CATEGORY_FIELD[(table.dataset, column)]])
    return {
        "dataset": table.dataset,
        "sheet": table.sheet,
        "row": row,
        "column": column,
        "source_column": source_column,
        "rule": rule,
        "severity": "error",
        "value": value,
        "message": _MESSAGES[rule].format(value=value, column=source_column, allowed=allowed),
    }


def _cell_parser(table: FoundTable, name: str, value_synonyms: dict[str, dict[str, str]],
                 date1904: bool) -> tuple[Callable[[object], object], str]:
    """The parser for canonical column ``name`` and the rule its INVALID results break
    ('' for codes and text, which always parse)."""
    kind = datasets.BY_NAME[table.dataset].column(name).kind
    if kind == "code" or name == "staff_id":
        return normalise_code, ""
    if kind == "text":
        return normalise_text, ""
    if kind == "category":
        category = datasets.CATEGORY_FIELD[(table.dataset, name)]
        return (lambda v: match_category(category, v, value_synonyms)), "not_in_list"
    if kind == "date":
        if name == "period":
            return parse_period, "invalid_period"
        return (lambda v: parse_date(v, datemode_1904=date1904)), "invalid_date"
    raise ValueError(f"no parser for {table.dataset}.{name} ({kind})")


def _typed_column(table: FoundTable, grid: SheetGrid, name: str, index: int,
                  value_synonyms: dict[str, dict[str, str]], issues: list[dict]) -> list[object]:
    """One canonical column of the table's rows, parsed; INVALID cells reported and nulled."""
    source = table.source_columns[name]
    kind = datasets.BY_NAME[table.dataset].column(name).kind
    out: list[object] = []
    if kind == "number":
        percent = grid.percent_cells
        for row, cells in table.rows:
            raw = cells[index] if index < len(cells) else None
            # parse_number's commonest case, without the call: a plain number, not %-formatted.
            if (raw.__class__ is float or raw.__class__ is int) and (not percent or (row, index) not in percent) \
                    and math.isfinite(raw):
                out.append(float(raw))
                continue
            value = parse_number(raw, percent_formatted=(row, index) in percent)
            if value is INVALID:
                issues.append(_issue(table, row, name, source, "invalid_number", raw))
                value = None
            out.append(value)
        return out
    parser, rule = _cell_parser(table, name, value_synonyms, grid.date1904)
    # Dates and categories repeat down a column: parse each distinct cell once. The type
    # is part of the key because True == 1 == 1.0 in a dict.
    memo: dict[tuple[type, object], object] = {}
    for row, cells in table.rows:
        raw = cells[index] if index < len(cells) else None
        if raw is None:
            out.append(None)
            continue
        key = (raw.__class__, raw)
        value = memo.get(key, memo)
        if value is memo:
            value = memo[key] = parser(raw)
        if value is INVALID:
            issues.append(_issue(table, row, name, source, rule, raw))
            value = None
        out.append(value)
    return out


def _frame(dataset: str, columns: dict[str, list[object]], n: int) -> pd.DataFrame:
    """A staged frame with every staged column, typed by its kind."""
    spec = datasets.BY_NAME[dataset]
    data: dict[str, object] = {}
    for name in staged_columns(dataset):
        values = columns.get(name)
        if name == "source_row":
            data[name] = np.asarray(values, dtype="int64")
            continue
        if name in ("source_sha256", "source_sheet", "source_column"):
            data[name] = pd.Series(values if values is not None else [None] * n, dtype="str")
            continue
        kind = spec.column(name).kind
        if values is None:
            values = [None] * n
        if kind == "date":
            data[name] = np.array(values, dtype="datetime64[ms]")
        elif kind == "number":
            data[name] = np.array(values, dtype="float64")
        else:
            data[name] = pd.Series(values, dtype="str")
    return pd.DataFrame(data)


def _stage_table(grid: SheetGrid, table: FoundTable, sha256: str,
                 value_synonyms: dict[str, dict[str, str]]) -> tuple[pd.DataFrame, list[dict]]:
    """One found table -> its typed frame (wide measure form melted to long) and its cell issues."""
    typed, n, issues = _stage_columns(grid, table, sha256, value_synonyms)
    return _frame(table.dataset, typed, n), issues


def _stage_columns(grid: SheetGrid, table: FoundTable, sha256: str,
                   value_synonyms: dict[str, dict[str, str]]) -> tuple[dict[str, list[object]], int, list[dict]]:
    """One found table -> its typed columns (wide measure form melted to long), rows and cell issues."""
    issues: list[dict] = []
    typed = {
        name: _typed_column(table, grid, name, index, value_synonyms, issues)
        for name, index in table.columns.items()
        if name not in DROPPED_COLUMNS
    }
    row_numbers = [row for row, _ in table.rows]
    if table.wide:
        typed, row_numbers, source_column = _melt_wide(grid, table, typed, issues)
        typed["source_column"] = source_column
    n = len(row_numbers)
    typed["source_sha256"] = [sha256] * n
    typed["source_sheet"] = [table.sheet] * n
    typed["source_row"] = row_numbers
    issues.sort(key=lambda i: (i["row"], table.columns.get(i["column"], -1), i["source_column"]))
    return typed, n, issues


def _melt_wide(grid: SheetGrid, table: FoundTable, typed: dict[str, list[object]],
               issues: list[dict]) -> tuple[dict[str, list[object]], list[int], list[str]]:
    """Wide measure rows -> one long row per non-blank period cell."""
    header = grid.rows[table.header_row - 1]
    periods = [(i, p, cell_text(header[i]) or p.isoformat()) for i, p in sorted(table.wide_periods.items())]
    percent = grid.percent_cells
    long: dict[str, list[object]] = {name: [] for name in (*typed, "period", "value")}
    rows: list[int] = []
    source_column: list[str] = []
    for k, (row, cells) in enumerate(table.rows):
        for index, period, header_text in periods:
            raw = cells[index] if index < len(cells) else None
            value = parse_number(raw, percent_formatted=(row, index) in percent)
            if value is None:
                continue
            if value is INVALID:
                issues.append(_issue(table, row, "value", header_text, "invalid_number", raw))
                value = None
            for name, values in typed.items():
                long[name].append(values[k])
            long["period"].append(period)
            long["value"].append(value)
            rows.append(row)
            source_column.append(header_text)
    return long, rows, source_column

