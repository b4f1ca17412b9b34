"""House style shared by every workbook: formats, cover, contents, notes, tables, safe text.

Follows the Analysis Function guidance for releasing statistics in spreadsheets: a Cover
sheet, a Contents sheet with links, a Notes sheet, then one table per sheet; title in A1
and short lines above the table; each table a real Excel table with one header row
starting in column A; no merged cells, no blank rows or columns inside tables; shorthand
in brackets, explained in the Notes; colour never the only signal; document properties
(title, language) set.

Safety: every value from a submission is written as a text cell (never a formula, never
turned into a link), and text that a spreadsheet program would read as a formula when the cell is edited
or exported (starting with =, +, -, @, tab or carriage return) also gets Excel's quote
prefix. Workbooks are built in memory and written atomically, with fixed zip timestamps, so
the same input gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import xlsxwriter
import xlsxwriter.chart_column
import xlsxwriter.chart_line
import xlsxwriter.core
import xlsxwriter.packager
import xlsxwriter.workbook
from xlsxwriter.exceptions import OverlappingRange
from xlsxwriter.utility import xl_range, xl_rowcol_to_cell_fast
from xlsxwriter.worksheet import (CellBlankTuple, CellDatetimeTuple, CellNumberTuple, CellStringTuple, Worksheet,
                                  convert_range_args)

from transforms.storage import atomic_write_bytes

SUPPRESSED = "[c]"
NOT_AVAILABLE = "[x]"
NOT_APPLICABLE = "[z]"
PROVISIONAL = "[p]"
REVISED = "[r]"

SHORTHAND = {
    SUPPRESSED: "suppressed: a count of 1 to 4 people, or a figure that would let such a count be worked out",
    NOT_AVAILABLE: "not available",
    NOT_APPLICABLE: "not applicable",
    PROVISIONAL: "provisional: returns for the period are still arriving, so figures may change",
    REVISED: "revised: the value has changed since it was first received",
}

LANGUAGE = "en-GB"
AUTHOR = "QI programme reporting pipeline"
EXCEL_MAX_TEXT = 32767
# Text a spreadsheet program may take for a formula (OWASP CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TABLE_NAME = re.compile(r"[^A-Za-z0-9_]")
# What xlsxwriter escapes in an XML text node (entities, control characters, its _xHHHH_ escapes).
_XML_ESCAPED = re.compile("[&<>_\x00-\x1f\ufffe\uffff]")

BLANK = object()  # a cell deliberately left empty (chart data: Excel would plot text as zero)

# Palette (NHS identity colours); colour always goes with words.
DARK_BLUE = "#003087"
LIGHT_BLUE_FILL = "#DCEBF7"
ORANGE_FILL = "#FCE4CC"
GREY_FILL = "#EEEEEE"


@dataclass
class Formats:
    """The house formats, and quote-prefixed twins made on demand for risky text."""

    book: xlsxwriter.Workbook
    specs: dict[str, dict] = field(default_factory=dict)
    made: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name in ("book", "specs", "made"):
            raise AttributeError(name)
        if name not in self.made:
            if name.endswith("_quoted") and name[: -len("_quoted")] in self.specs:
                spec = {**self.specs[name[: -len("_quoted")]], "quote_prefix": True}
            elif name in self.specs:
                spec = self.specs[name]
            else:
                raise AttributeError(name)
            self.made[name] = self.book.add_format(spec)
        return self.made[name]

    def quoted(self, cell_format: Any) -> Any:
        """The quote-prefixed twin of ``cell_format`` (None: plain text)."""
        for name, made in list(self.made.items()):
            if made is cell_format and not name.endswith("_quoted"):
                return getattr(self, f"{name}_quoted")
        return self.text_quoted


FORMAT_SPECS = {
    "title": {"bold": True, "font_size": 15},
    "heading": {"bold": True, "font_size": 12},
    "text": {},
    "wrap": {"text_wrap": True, "valign": "top"},
    "bold": {"bold": True},
    "integer": {"num_format": "#,##0", "align": "right"},
    "decimal": {"num_format": "#,##0.0", "align": "right"},
    "date": {"num_format": "d mmm yyyy", "align": "left"},
    "month": {"num_format": "mmm yyyy", "align": "left"},
    "datetime": {"num_format": "d mmm yyyy hh:mm", "align": "left"},
    "right": {"align": "right"},
    "link": {"font_color": DARK_BLUE, "underline": 1},
    "good": {"bg_color": LIGHT_BLUE_FILL, "text_wrap": True, "valign": "top"},
    "bad": {"bg_color": ORANGE_FILL, "text_wrap": True, "valign": "top"},
    "neutral": {"bg_color": GREY_FILL, "text_wrap": True, "valign": "top"},
}


@dataclass
class Book:
    """An in-memory workbook and its formats; ``save`` writes it atomically."""

    workbook: xlsxwriter.Workbook
    fmt: Formats
    buffer: io.BytesIO
    title: str

    def add_sheet(self, name: str) -> Worksheet:
        sheet = self.workbook.add_worksheet(name, worksheet_class=_QuickWorksheet)
        sheet.hide_gridlines(2)
        return sheet

    def save(self, path: Path) -> Path:
        self.workbook.close()
        atomic_write_bytes(path, self.buffer.getvalue())
        _let_go(self.workbook)
        return path


def _let_go(workbook: xlsxwriter.Workbook) -> None:
    """Drop a closed workbook's cells, charts and sheets.

    xlsxwriter's workbook and sheets refer to each other, so without this everything they
    hold (a cell object per cell: about 230,000 for an all-organisation workbook) would
    wait for the cycle collector, which then spends a sixth of a second finding it.
    Emptied, it goes at once."""
    for sheet in workbook.worksheets():
        sheet.table.clear()
        sheet.charts.clear()
    workbook.charts.clear()
    workbook.worksheets_objs.clear()
    workbook.sheetnames.clear()


def new_book(*, title: str, subject: str, created: datetime, keywords: str = "", comments: str = "") -> Book:
    """A workbook with the house formats and document properties (title, subject, language)."""
    buffer = io.BytesIO()
    # Text is text: no formulas, links or numbers guessed from strings (SPEC 8).
    workbook = xlsxwriter.Workbook(buffer, {
        "in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
    })
    workbook.set_properties({
        "title": safe_text(title), "subject": safe_text(subject), "author": AUTHOR, "keywords": keywords,
        "comments": comments, "created": _naive_utc(created),
    })
    workbook.set_custom_property("Language", LANGUAGE)
    fmt = Formats(workbook, dict(FORMAT_SPECS))
    return Book(workbook, fmt, buffer, title)


def _naive_utc(moment: datetime) -> datetime:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


class _CoreWithLanguage(xlsxwriter.core.Core):
    """Core properties with ``<dc:language>`` (xlsxwriter 3.3 has no option for it).

    It is written after the last element xlsxwriter writes, inside ``cp:coreProperties``;
    a test reads it back from every kind of workbook.
    """

    def _write_cp_content_status(self) -> None:
        super()._write_cp_content_status()
        self._xml_data_element("dc:language", LANGUAGE)


# Every workbook this process writes is in British English; the packager is where
# xlsxwriter makes its Core (writing the core.xml part again after close cost more than a
# fifth of a small workbook's time).
xlsxwriter.packager.Core = _CoreWithLanguage  # type: ignore[attr-defined]


class _QuickCache:
    """A chart's cached figures (``<c:numCache>``) written in one piece.

    xlsxwriter writes each cached point through three XML helper calls; the run charts of
    an all-organisation workbook cache about 140,000 points, which made this a sixth of
    the workbook's time. The points are what xlsxwriter would write (text that is not a
    number cached as 0, empty cells left out); a cache with anything to escape is left to
    xlsxwriter. A test checks the XML is the same as xlsxwriter's, byte for byte.
    """

    def _write_num_cache(self, data) -> None:
        points, tokens = [], []
        for i, token in enumerate(data or ()):
            if token is None:
                continue
            try:
                float(token)
            except ValueError:
                token = 0
            except TypeError:  # not a number or text: xlsxwriter decides
                points = None
                break
            tokens.append(str(token))
            points.append(f'<c:pt idx="{i}"><c:v>{token}</c:v></c:pt>')
        if points is None or _XML_ESCAPED.search("".join(tokens)):
            super()._write_num_cache(data)  # type: ignore[misc]
            return
        self.fh.write(  # type: ignore[attr-defined]
            f'<c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="{len(data or ())}"/>'
            f'{"".join(points)}</c:numCache>')


class _QuickWorksheet(Worksheet):
    """A worksheet whose commonest cells (a number, a date, shared text or a blank) are
    written in one piece: the chart data of an all-organisation workbook is 140,000 of
    them. Anything else, or a cell that takes its format from its row or column, is left
    to xlsxwriter; a test checks the XML is the same as xlsxwriter's, byte for byte.

    Tables: xlsxwriter refuses a table that overlaps another (a file Excel would call
    corrupt) by keeping a map entry for every cell of every table until the workbook is
    saved: 30 MB for the 340,000 table cells of an all-organisation workbook at double the
    benchmark's size. Here the map is emptied after each table and the same refusal made
    by comparing rectangles. (The house style has no merged cells, whose check used it too.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._table_ranges: list[tuple[int, int, int, int]] = []

    @convert_range_args
    def add_table(self, first_row: int, first_col: int, last_row: int, last_col: int,
                  options: dict[str, Any] | None = None) -> int:
        top, bottom = sorted((first_row, last_row))
        left, right = sorted((first_col, last_col))
        for other in self._table_ranges:
            if top <= other[2] and other[0] <= bottom and left <= other[3] and other[1] <= right:
                raise OverlappingRange(f"Table range '{xl_range(top, left, bottom, right)}' overlaps previous "
                                       f"table range '{xl_range(*other)}'.")
        result = super().add_table(first_row, first_col, last_row, last_col, options)
        self.table_cells.clear()
        if result == 0:
            self._table_ranges.append((top, left, bottom, right))
        return result

    def write_column(self, fmt: Formats, first_row: int, col: int, values: Sequence[Any],
                     cell_formats: Iterable[Any]) -> None:
        """``write_table``'s cells down one column, as ``write_cell`` (or ``write_link``) writes them.

        The commonest values (a finite number, a text of moderate length, BLANK, a
        Timestamp) are stored in xlsxwriter's cell table directly, as its ``write_*``
        methods would store them, with the sheet's dimensions updated once for the column,
        and a text or date repeated down the column is prepared once. Those calls' checks,
        cell by cell, were most of ``write_table``'s time: 0.5 s of an all-organisation
        workbook, 0.3 s now. Anything else goes through ``write_cell``. A test checks the
        workbook is the same, byte for byte."""
        if self.constant_memory or first_row + len(values) > self.xls_rowmax or col >= self.xls_colmax:
            _write_column(self, fmt, first_row, col, values, cell_formats)
            return
        table, strings, numeric, longest = self.table, self.str_table, (fmt.integer, fmt.decimal), self.xls_strmax // 2
        texts: dict[tuple[str, Any], tuple[int, Any]] = {}  # (value, format) -> (shared string, format)
        dates: dict[pd.Timestamp, float] = {}  # a column repeats its dates (each chart's periods)
        top = bottom = None
        for row, value, cell_format in zip(range(first_row, first_row + len(values)), values, cell_formats):
            kind = value.__class__
            if (kind is float and -math.inf < value < math.inf) or kind is int:
                table[row][col] = CellNumberTuple(value, cell_format)
            elif kind is str and len(value) <= longest:
                known = texts.get((value, cell_format))
                if known is None:
                    text, shown_as = safe_text(value), cell_format
                    if value in SHORTHAND and cell_format in numeric:
                        shown_as = fmt.right  # (as write_cell)
                    if looks_like_formula(text):
                        shown_as = fmt.quoted(shown_as)
                    known = texts[(value, cell_format)] = (strings._get_shared_string_index(text), shown_as)
                else:
                    strings.count += 1  # (every use of a shared string is counted)
                table[row][col] = CellStringTuple(*known)
            elif value is BLANK:
                if cell_format is None:
                    continue  # (xlsxwriter writes no blank cell without a format)
                table[row][col] = CellBlankTuple(cell_format)
            elif kind is pd.Timestamp:
                if value not in dates:
                    dates[value] = self._convert_date_time(_naive_utc(value))
                table[row][col] = CellDatetimeTuple(dates[value], cell_format or self.default_date_format)
            elif kind is Link:
                write_link(self, fmt, row, col, value)
                continue
            else:
                write_cell(self, fmt, row, col, value, cell_format)
                continue
            top = row if top is None else top
            bottom = row
        if top is not None:
            self._check_dimensions(top, col)
            self._check_dimensions(bottom, col)

    def _write_cell(self, row: int, col: int, cell) -> None:
        kind = cell.__class__.__name__
        if cell.format is not None:
            style = f' s="{cell.format._get_xf_index()}"'
        elif ((row in self.row_info and self.row_info[row].row_format)
              or (col in self.col_info and self.col_info[col].column_format is not None)):
            style = None  # (the row's or column's format: xlsxwriter's rules)
        else:
            style = ""
        if style is None or self.constant_memory or kind not in _QUICK_CELLS:
            super()._write_cell(row, col, cell)
        elif kind == "String":
            self.fh.write(f'<c r="{xl_rowcol_to_cell_fast(row, col)}"{style} t="s"><v>{cell.string}</v></c>')
        elif kind == "Blank":
            self.fh.write(f'<c r="{xl_rowcol_to_cell_fast(row, col)}"{style}/>')
        else:
            self.fh.write(f'<c r="{xl_rowcol_to_cell_fast(row, col)}"{style}><v>{cell.number:.16G}</v></c>')


_QUICK_CELLS = frozenset({"Number", "Datetime", "String", "Blank"})


class _LineChart(_QuickCache, xlsxwriter.chart_line.ChartLine):
    pass


class _ColumnChart(_QuickCache, xlsxwriter.chart_column.ChartColumn):
    pass


# Where ``Workbook.add_chart`` finds the classes it makes (as for the Core above).
xlsxwriter.workbook.ChartLine = _LineChart  # type: ignore[attr-defined,misc]
xlsxwriter.workbook.ChartColumn = _ColumnChart  # type: ignore[attr-defined,misc]


# --- Text --------------------------------------------------------------------------------------


def long_date(moment: Any, *, time: bool = False) -> str:
    """'7 November 2024', or '7 November 2024 16:17 UTC' (times are UTC)."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    text = f"{stamp.day} {stamp:%B %Y}"
    return f"{text} {stamp:%H:%M} UTC" if time else text


def plural(n: Any, one: str, many: str | None = None) -> str:
    """'1 row', '3 rows'."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def safe_text(value: Any) -> str:
    """Text that is valid in the file: control characters removed, cut at Excel's limit."""
    text = _XML_INVALID.sub("", str(value))
    if len(text) > EXCEL_MAX_TEXT:
        text = text[: EXCEL_MAX_TEXT - 1] + "…"
    return text


def looks_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_START)


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


# --- Sheets ------------------------------------------------------------------------------------


def sheet_header(sheet: Worksheet, fmt: Formats, title: str, lines: Sequence[str]) -> int:
    """Title in A1 and short lines below it; return the row index where a table may start."""
    sheet.write_string(0, 0, safe_text(title), fmt.title)
    for i, line in enumerate(lines, start=1):
        write_text(sheet, fmt, i, 0, line)
    return len(lines) + 1


def write_text(sheet: Worksheet, fmt: Formats, row: int, col: int, text: Any, cell_format: Any = None) -> None:
    """Always a text cell; quote-prefixed when it could be taken for a formula."""
    text = safe_text(text)
    if looks_like_formula(text):
        cell_format = fmt.quoted(cell_format)
    sheet.write_string(row, col, text, cell_format)


def write_cell(sheet: Worksheet, fmt: Formats, row: int, col: int, value: Any, cell_format: Any = None) -> None:
    """Numbers as numbers, dates as dates, missing as [x], BLANK as empty, everything else as text."""
    if type(value) is float and -math.inf < value < math.inf:  # the commonest cells first (NaN fails this)
        sheet.write_number(row, col, value, cell_format)
    elif type(value) is str:
        if value in SHORTHAND and cell_format in (fmt.integer, fmt.decimal):
            cell_format = fmt.right  # [c] lines up with the numbers it replaces
        write_text(sheet, fmt, row, col, value, cell_format)
    elif value is BLANK:
        sheet.write_blank(row, col, None, cell_format)
    elif is_missing(value):
        numeric = cell_format in (fmt.integer, fmt.decimal)
        sheet.write_string(row, col, NOT_AVAILABLE, fmt.right if numeric else cell_format)
    elif isinstance(value, bool):
        sheet.write_string(row, col, "Yes" if value else "No", cell_format)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if math.isinf(value):
            sheet.write_string(row, col, NOT_AVAILABLE, cell_format)
        else:
            sheet.write_number(row, col, value, cell_format)
    elif isinstance(value, pd.Timestamp | datetime):
        sheet.write_datetime(row, col, _naive_utc(value), cell_format)
    elif hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        write_cell(sheet, fmt, row, col, value.item(), cell_format)
    else:
        text = str(value)
        if text in SHORTHAND and cell_format in (fmt.integer, fmt.decimal):
            cell_format = fmt.right  # [c] lines up with the numbers it replaces
        write_text(sheet, fmt, row, col, text, cell_format)


def _write_column(sheet: Worksheet, fmt: Formats, first_row: int, col: int, values: Sequence[Any],
                  cell_formats: Iterable[Any]) -> None:
    for row, value, cell_format in zip(range(first_row, first_row + len(values)), values, cell_formats):
        if isinstance(value, Link):
            write_link(sheet, fmt, row, col, value)
        else:
            write_cell(sheet, fmt, row, col, value, cell_format)


def table_name(name: str) -> str:
    name = _TABLE_NAME.sub("_", name)
    return name if re.match(r"[A-Za-z_]", name) else f"t_{name}"


@dataclass(frozen=True)
class Link:
    """A cell that links somewhere in the workbook: ``target`` like ``'Run charts'!A5``."""

    target: str
    text: str


def write_link(sheet: Worksheet, fmt: Formats, row: int, col: int, link: Link) -> None:
    """An internal link; its text is a text cell, quote-prefixed when it could pass for a formula."""
    text = safe_text(link.text)
    sheet.write_url(row, col, f"internal:{link.target}", fmt.link_quoted if looks_like_formula(text) else fmt.link,
                    string=text)


def write_table(sheet: Worksheet, fmt: Formats, first_row: int, frame: pd.DataFrame, *, name: str,
                widths: dict[str, float] | None = None, formats: dict[str, Any] | None = None,
                description: str | None = None) -> tuple[int, int]:
    """Write ``frame`` as a real Excel table at column A; return (first data row, last row).

    A frame with no rows becomes one row of [x], so the table is never empty. Values may
    be ``Link`` (an internal link), ``BLANK`` or anything ``write_cell`` takes.
    ``formats``: per column, one format, or a list with a format per row (e.g. a fill
    that repeats what the words say).
    """
    formats = formats or {}
    widths = widths or {}
    columns = [str(c) for c in frame.columns]
    if len({c.lower() for c in columns}) != len(columns):
        raise ValueError(f"table {name}: duplicate column headers {columns}")
    for c, (column, values) in enumerate(frame.items()):
        base = formats.get(column)
        cell_formats = base if isinstance(base, list) else itertools.repeat(base)
        values = values.tolist()  # (Python values: to_dict costs 4x as much)
        if isinstance(sheet, _QuickWorksheet):
            sheet.write_column(fmt, first_row + 1, c, values, cell_formats)
        else:
            _write_column(sheet, fmt, first_row + 1, c, values, cell_formats)
        sheet.set_column(c, c, widths.get(column, max(10, min(45, len(str(column)) + 3))))
    if frame.empty:
        for c in range(len(columns)):
            sheet.write_string(first_row + 1, c, NOT_AVAILABLE)
    last_row = first_row + max(len(frame), 1)
    options: dict[str, Any] = {
        "name": table_name(name), "columns": [{"header": safe_text(c)} for c in columns],
        "style": "Table Style Light 1",
    }
    if description:
        options["description"] = safe_text(description)[:255]
    sheet.add_table(first_row, 0, last_row, len(columns) - 1, options)
    return first_row + 1, last_row


def cover_sheet(book: Book, title: str, sections: Sequence[tuple[str, Sequence[str]]]) -> Worksheet:
    """The Cover: title in A1, then headed sections of short lines (no table)."""
    sheet = book.add_sheet("Cover")
    sheet.set_column(0, 0, 120)
    fmt = book.fmt
    sheet.write_string(0, 0, safe_text(title), fmt.title)
    row = 2
    for heading, lines in sections:
        sheet.write_string(row, 0, heading, fmt.heading)
        row += 1
        for line in lines:
            if isinstance(line, Link):
                write_link(sheet, fmt, row, 0, line)
            else:
                write_text(sheet, fmt, row, 0, line, fmt.wrap)
            row += 1
        row += 1
    return sheet


def contents_sheet(book: Book, entries: Sequence[tuple[str, str]]) -> Worksheet:
    """The Contents: a table of sheet names (each a link) and what each holds."""
    sheet = book.add_sheet("Contents")
    start = sheet_header(sheet, book.fmt, "Contents",
                         ["This worksheet contains one table. Select a sheet name to go to it."])
    frame = pd.DataFrame({
        "Sheet name": [Link(f"'{name}'!A1", name) for name, _ in entries],
        "Sheet contents": [text for _, text in entries],
    })
    write_table(sheet, book.fmt, start, frame, name="contents", widths={"Sheet name": 24, "Sheet contents": 100},
                description="Table of contents")
    return sheet


def notes_sheet(book: Book, notes: Sequence[str], shorthand: Iterable[str] = tuple(SHORTHAND)) -> Worksheet:
    """The Notes: ``[note N]`` and its text, then the shorthand used in the workbook."""
    sheet = book.add_sheet("Notes")
    lines = ["This worksheet contains one table. Tables refer to these notes as [note 1], [note 2] and so on."]
    start = sheet_header(sheet, book.fmt, "Notes", lines)
    rows = [(f"[note {i}]", text) for i, text in enumerate(notes, start=1)]
    rows += [(mark, f"{mark} means {SHORTHAND[mark]}.") for mark in shorthand]
    frame = pd.DataFrame(rows, columns=["Note number", "Note text"])
    write_table(sheet, book.fmt, start, frame, name="notes", widths={"Note number": 14, "Note text": 120},
                formats={"Note text": book.fmt.wrap}, description="Notes and shorthand")
    return sheet


def counts_for_display(values: pd.Series, suppressed: pd.Series | Sequence[bool]) -> list[Any]:
    """Counts as integers, or [c] where suppressed."""
    return [SUPPRESSED if hidden else int(v) for v, hidden in zip(values, suppressed, strict=True)]


def counts_for_chart(values: pd.Series, suppressed: pd.Series | Sequence[bool]) -> list[Any]:
    """Counts as integers, or a blank cell where suppressed: a chart leaves the point out."""
    return [BLANK if hidden else int(v) for v, hidden in zip(values, suppressed, strict=True)]


def number_or_blank(value: Any) -> Any:
    return BLANK if is_missing(value) else float(value)


__all__ = [
    "BLANK", "NOT_APPLICABLE", "NOT_AVAILABLE", "PROVISIONAL", "REVISED", "SHORTHAND", "SUPPRESSED", "Book", "Formats",
    "Link", "contents_sheet", "long_date", "plural", "write_link", "counts_for_chart", "counts_for_display", "cover_sheet",
    "looks_like_formula",
    "new_book", "notes_sheet", "number_or_blank", "safe_text", "sheet_header", "table_name", "write_cell",
    "write_table", "write_text",
]
