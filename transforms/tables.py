"""Finding a dataset's table in a sheet's grid (SPEC 3, 3.1-3.3).

In: a ``SheetGrid`` and the column synonyms. Out: a ``FoundTable`` naming the dataset,
its header row, which sender column holds which canonical column, and the data rows
(title, blank, note and trailing total rows left out), or None when no header row of a
known dataset is in the sheet's first 30 rows.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from transforms import datasets
from transforms.normalise import cell_text, normalise_header, parse_period
from transforms.read import SheetGrid

HEADER_SEARCH_ROWS = 30
# A header row is recognised with at least this many of its dataset's signature columns
# and this many matched columns in all, so a missing required column is reported as
# such rather than as "no recognisable dataset".
MIN_SIGNATURE_COLUMNS = 2
MIN_MATCHED_COLUMNS = 3
# Numeric period headers are Excel serials between 1990 and 2099.
_PERIOD_SERIAL_RANGE = (32874, 73050)
_WIDE_FORM_ONLY = ("period", "value", "numerator", "denominator")
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NOTE_PREFIXES = ("note", "source", "*")
# A total row's first cell is just "Total" (or "Totals", "Grand total", "Total:"): a measure
# called "Total falls" or a title "Totally reliable handover" is data.
_TOTAL_CELL = re.compile(r"(grand\s+)?totals?\s*:?")


@dataclass
class FoundTable:
    """A dataset's table in one sheet; row numbers are Excel's (CSV: the record number)."""

    dataset: str
    sheet: str
    header_row: int
    columns: dict[str, int]
    source_columns: dict[str, str]
    unknown_columns: list[str]
    missing_required: list[str]
    wide_periods: dict[int, dt.date] = field(default_factory=dict)
    rows: list[tuple[int, list[object]]] = field(default_factory=list)

    @property
    def wide(self) -> bool:
        return bool(self.wide_periods)


def default_column_synonyms(extra: pd.DataFrame | None = None) -> dict[str, dict[str, str]]:
    """dataset -> {normalised header -> canonical column}: canonical names and the synonyms
    in ``datasets``, then ``extra`` rows (columns dataset, column, synonym, e.g. from
    reference/column_synonyms.csv). Raises ValueError naming a bad ``extra`` row."""
    out: dict[str, dict[str, str]] = {}
    for ds in datasets.BY_NAME.values():
        table = out[ds.name] = {}
        for col in ds.columns:
            for synonym in col.synonyms:
                table[normalise_header(synonym)] = col.name
        # Canonical names last, so they win over any synonym spelt the same.
        for col in ds.columns:
            table[normalise_header(col.name)] = col.name
    if extra is None:
        return out
    missing = {"dataset", "column", "synonym"} - set(extra.columns)
    if missing:
        raise ValueError(f"column_synonyms.csv: missing column(s) {', '.join(sorted(missing))}")
    for line, (name, column, synonym) in enumerate(
        extra[["dataset", "column", "synonym"]].itertuples(index=False, name=None), start=2
    ):
        name = normalise_header(name).replace(" ", "_")
        if name not in datasets.BY_NAME:
            raise ValueError(
                f"column_synonyms.csv line {line}: unknown dataset {name!r} (one of {', '.join(datasets.DATASETS)})"
            )
        canonical = out[name].get(normalise_header(column))
        if canonical is None:
            raise ValueError(f"column_synonyms.csv line {line}: {name} has no column {column!r}")
        key = normalise_header(synonym)
        if not key:
            raise ValueError(f"column_synonyms.csv line {line}: the synonym is blank")
        out[name][key] = canonical
    return out


def header_period(cell: object) -> dt.date | None:
    """The period a wide-form header stands for ('Apr-25', a date, a serial), else None."""
    if isinstance(cell, bool) or cell is None:
        return None
    if isinstance(cell, (int, float)) and not _PERIOD_SERIAL_RANGE[0] <= cell <= _PERIOD_SERIAL_RANGE[1]:
        return None
    period = parse_period(cell)
    return period if isinstance(period, dt.date) else None


@dataclass
class _Candidate:
    dataset: str
    row: int  # 0-based index into grid.rows
    columns: dict[str, int]
    unknown: list[int]
    wide_periods: dict[int, dt.date]

    @property
    def matched(self) -> int:
        return len(self.columns) + (1 if self.wide_periods else 0)

    def signature_hits(self) -> int:
        present = set(self.columns) | ({"period"} if self.wide_periods else set())
        return sum(1 for c in datasets.BY_NAME[self.dataset].signature if c in present)


# The same headers (and the same values) recur in every file: normalise each once.
@lru_cache(maxsize=1 << 16, typed=True)
def _cached_key(cell: object) -> str:
    return normalise_header(cell)


def _header_key(cell: object) -> str:
    if cell is None:
        return ""
    try:
        return _cached_key(cell)
    except TypeError:  # unhashable: not a cell a reader returns, but never fail on it
        return normalise_header(cell)


@lru_cache(maxsize=1 << 16)
def _bare_key(text: str) -> str:
    """'Enrolment date (dd/mm/yyyy)' -> 'enrolment date'."""
    return normalise_header(_BRACKETED.sub(" ", text))


def _match_header(dataset: str, row_index: int, cells: list[object], keys: list[str],
                  synonyms: dict[str, str]) -> _Candidate:
    columns: dict[str, int] = {}
    exact: set[str] = set()
    unknown: list[int] = []
    for i, key in enumerate(keys):
        if not key:
            continue
        canonical = synonyms.get(key)
        if canonical is None and isinstance(cells[i], str):
            # 'Enrolment date (dd/mm/yyyy)' -> 'enrolment date'
            canonical = synonyms.get(_bare_key(cells[i]))
        if canonical is None:
            unknown.append(i)
            continue
        is_exact = key == _header_key(canonical)
        if canonical not in columns:
            columns[canonical] = i
        elif is_exact and canonical not in exact:
            # 'Organisation Code' beats an earlier 'Organisation' (a name, most likely).
            unknown.append(columns[canonical])
            columns[canonical] = i
        else:
            unknown.append(i)
            continue
        if is_exact:
            exact.add(canonical)
    wide: dict[int, dt.date] = {}
    # Period headers add one signature column at most: a row short of more than that is
    # not a header row, wide or not, and is not searched for periods (most rows are data).
    signature = sum(1 for c in datasets.BY_NAME[dataset].signature if c in columns)
    if dataset == datasets.MEASURE_DATA and "period" not in columns and signature + 1 >= MIN_SIGNATURE_COLUMNS:
        wide = {i: period for i in unknown if (period := header_period(cells[i])) is not None}
        if wide:
            unknown = [i for i in unknown if i not in wide]
            for name in _WIDE_FORM_ONLY:
                if name in columns:
                    unknown.append(columns.pop(name))
    return _Candidate(dataset, row_index, columns, sorted(unknown), wide)


def _is_blank(cell: object) -> bool:
    return cell is None or (cell.__class__ is str and not cell.strip())


def _row_kind(row: list[object]) -> str:
    """'data', 'blank', 'note' or 'total'."""
    if len(row) > 1:  # the common data row, without the loop: the first two cells filled
        a, b = row[0], row[1]
        if a is not None and b is not None and (a.__class__ is not str or a.strip()) \
                and (b.__class__ is not str or b.strip()):
            return "total" if isinstance(a, str) and _TOTAL_CELL.fullmatch(a.strip().lower()) else "data"
    first: object = None
    count = 0
    for cell in row:
        if cell is None or (cell.__class__ is str and not cell.strip()):  # _is_blank, inlined: once per cell
            continue
        count += 1
        if count == 1:
            first = cell
        else:
            break
    if count == 0:
        return "blank"
    if isinstance(first, str):
        text = first.strip().lower()
        if _TOTAL_CELL.fullmatch(text):
            return "total"
        if count == 1 and (" " in text or text.startswith(_NOTE_PREFIXES)):
            return "note"
    return "data"


def find_table(grid: SheetGrid, column_synonyms: dict[str, dict[str, str]]) -> FoundTable | None:
    """The table of a known dataset in ``grid``, or None.

    The header row is the row among the first 30 that matches a dataset best (most
    matched columns; ties go to the earlier row). Data rows are every later row except
    blank rows, note rows (a lone text cell containing a space, or starting with
    'note', 'source' or '*') and total rows ('Total...' first) with no data after them.
    """
    best: _Candidate | None = None
    known = {key for synonyms in column_synonyms.values() for key in synonyms}
    for r, cells in enumerate(grid.rows[:HEADER_SEARCH_ROWS]):
        if sum(1 for c in cells if c is not None) < MIN_SIGNATURE_COLUMNS:
            continue
        keys = [_header_key(c) for c in cells]
        # A header row names at least MIN_MATCHED_COLUMNS - 1 columns (a wide sheet's periods
        # count as one more); a data row names none, and is not matched against each dataset.
        named = sum(1 for i, key in enumerate(keys)
                    if key and (key in known or (cells[i].__class__ is str and _bare_key(cells[i]) in known)))
        if named < MIN_MATCHED_COLUMNS - 1:
            continue
        for dataset, synonyms in column_synonyms.items():
            cand = _match_header(dataset, r, cells, keys, synonyms)
            if cand.signature_hits() < MIN_SIGNATURE_COLUMNS or cand.matched < MIN_MATCHED_COLUMNS:
                continue
            if best is None or cand.matched > best.matched:
                best = cand
    if best is None:
        return None

    header = grid.rows[best.row]
    spec = datasets.BY_NAME[best.dataset]
    provided = set(best.columns) | (set(_WIDE_FORM_ONLY) if best.wide_periods else set())
    rows: list[tuple[int, list[object]]] = []
    pending_totals: list[tuple[int, list[object]]] = []
    for r in range(best.row + 1, len(grid.rows)):
        cells = grid.rows[r]
        kind = _row_kind(cells)
        if kind == "data":
            # A 'Total' row with data after it is not trailing: it is data.
            rows.extend(pending_totals)
            pending_totals.clear()
            rows.append((r + 1, cells))
        elif kind == "total":
            pending_totals.append((r + 1, cells))
    return FoundTable(
        dataset=best.dataset,
        sheet=grid.sheet,
        header_row=best.row + 1,
        columns=dict(best.columns),
        source_columns={name: cell_text(header[i]) or "" for name, i in best.columns.items()},
        unknown_columns=[text for i in best.unknown if (text := cell_text(header[i]))],
        missing_required=[c for c in spec.required if c not in provided],
        wide_periods=best.wide_periods,
        rows=rows,
    )

