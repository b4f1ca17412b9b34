"""Reading a received file into raw grids, one per sheet (SPEC 3).

In: a path in the landing area. Out: ``SheetGrid`` objects holding raw cell values as a
spreadsheet program shows them (``rows[0]`` is row 1), or ``UnreadableFile`` with a one-line
reason a sender understands. Workbooks are read with python-calamine (macros never run);
number formats, which calamine does not expose, are read from the raw sheet XML only to
find percent-formatted cells.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import python_calamine

SUPPORTED_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".csv")

# Zip-bomb guards, checked on the zip's declared sizes before anything is decompressed.
MAX_UNCOMPRESSED_BYTES = 500 * 1024**2
MAX_MEMBER_RATIO = 200
RATIO_CHECK_FROM_BYTES = 50 * 1024**2

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_PERCENT_BUILTIN_FORMATS = {9, 10}
_SCAN_CHUNK = 8 * 1024**2


class UnreadableFile(Exception):
    """The file as a whole cannot be read; ``reason`` is one plain-English line for the sender."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class SheetGrid:
    """One sheet's raw cells.

    ``rows[0]`` is spreadsheet row 1 and ``rows[r][c]`` is a str, int, float, bool,
    datetime, date, time or None (empty). ``percent_cells`` holds (excel row, 0-based
    column) of cells whose number format is a percentage (xlsx/xlsm only). ``date1904``
    is the workbook's date system, needed to read serial numbers typed into date columns.
    """

    sheet: str
    visible: bool
    rows: list[list[object]]
    percent_cells: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    date1904: bool = False


def read_grids(path: Path) -> list[SheetGrid]:
    """Read a .xlsx/.xlsm/.xls/.csv file into one grid per sheet (one, named "", for CSV).

    Raises ``UnreadableFile`` for anything that is not a readable spreadsheet; no library
    exception escapes.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ext or "(no extension)"
        raise UnreadableFile(
            f"Files of type {shown} are not accepted; please send an Excel workbook (.xlsx) or a CSV file."
        )
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise UnreadableFile(f"The file could not be opened ({e.strerror or 'unknown error'}).") from None
    if not head:
        raise UnreadableFile("The file is empty (0 bytes); please send it again.")
    try:
        grids = _read_csv(path) if ext == ".csv" else _read_workbook(path, ext, head)
    except UnreadableFile:
        raise
    except MemoryError:
        raise UnreadableFile("The file is too large to read; please send a smaller file.") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - also a Rust panic in calamine (pyo3's PanicException is a BaseException)
        raise UnreadableFile(
            "The file is damaged and could not be read; please open it in Excel, save it again and resend it."
        ) from None
    if not any(cell is not None for g in grids for row in g.rows for cell in row):
        raise UnreadableFile("The file has no data in it: every cell is empty.")
    return grids


# --- CSV ---------------------------------------------------------------------------------


def _decode_csv(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableFile("The CSV file is not valid UTF-8 text; please save it as 'CSV UTF-8'.") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFile(
            "The CSV file is saved as Unicode (UTF-16) text; please save it as 'CSV UTF-8' and send it again."
        )
    if b"\x00" in data[:65536] or data.startswith((_OLE_MAGIC, _ZIP_MAGIC, b"%PDF")):
        raise UnreadableFile("The file is named .csv but is not a text CSV file; please save it as 'CSV UTF-8'.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise UnreadableFile(
            "The CSV file's text encoding is not recognised; please save it as 'CSV UTF-8'."
        ) from None


def _read_csv(path: Path) -> list[SheetGrid]:
    text = _decode_csv(path.read_bytes())
    # One csv record is one spreadsheet row: blank lines count, quoted line breaks do not.
    try:
        rows = [[c if c != "" else None for c in rec] for rec in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error:
        raise UnreadableFile("The CSV file could not be read (its quotes or separators are broken).") from None
    return [SheetGrid(sheet="", visible=True, rows=rows)]


# --- Workbooks -----------------------------------------------------------------------------


_ENCRYPTED = "The file is password-protected (encrypted); please send it without a password."


def _read_workbook(path: Path, ext: str, head: bytes) -> list[SheetGrid]:
    if head.startswith(_OLE_MAGIC):
        # Excel saves a password-protected .xlsx as an OLE2 file holding an EncryptedPackage stream.
        data = path.read_bytes()
        if "EncryptedPackage".encode("utf-16-le") in data or b"EncryptedPackage" in data:
            raise UnreadableFile(_ENCRYPTED)
        return _calamine_grids(
            path,
            "The file is an old-style Excel 97-2003 workbook that could not be read; please save it as .xlsx.",
        )
    if not head.startswith(b"PK"):
        raise UnreadableFile(_not_a_workbook(head, ext))
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UnreadableFile(
            "The file is damaged or incomplete (it may have been cut off while sending); please send it again."
        ) from None
    with zf:
        _refuse_zip_bomb(zf)
        names = set(zf.namelist())
        if "xl/workbook.xml" not in names:
            raise UnreadableFile(f"The file is named {ext} but is not an Excel workbook; please save it as .xlsx.")
        grids = _calamine_grids(
            path,
            "The workbook is damaged and could not be read; please open it in Excel, save it again and resend it.",
        )
        percent = _percent_cells(zf, names)
        date1904 = _is_date1904(zf)
    for g in grids:
        g.percent_cells = percent.get(g.sheet, frozenset())
        g.date1904 = date1904
    return grids


def _calamine_grids(path: Path, damaged: str) -> list[SheetGrid]:
    """Every worksheet (chart and macro sheets left out), read by calamine.

    calamine is given the open file, not the path, so it goes by the content rather than
    the extension: an .xlsx named .xls, or the reverse, is still read.
    """
    try:
        with open(path, "rb") as f, python_calamine.CalamineWorkbook.from_filelike(f) as wb:
            return [
                SheetGrid(
                    sheet=meta.name,
                    visible=meta.visible == python_calamine.SheetVisibleEnum.Visible,
                    rows=_sheet_rows(wb.get_sheet_by_name(meta.name)),
                )
                for meta in wb.sheets_metadata
                if meta.typ == python_calamine.SheetTypeEnum.WorkSheet
            ]
    except python_calamine.PasswordError:
        raise UnreadableFile(_ENCRYPTED) from None
    except (python_calamine.CalamineError, ValueError, OSError):
        raise UnreadableFile(damaged) from None


def _not_a_workbook(head: bytes, ext: str) -> str:
    if head.startswith(b"%PDF"):
        return (f"The file is a PDF document, not a spreadsheet (even though its name ends in {ext}); "
                "please send the Excel workbook.")
    if head.lstrip().startswith((b"<", b"\xef\xbb\xbf<")):
        return (f"The file is a web page or XML document, not an Excel workbook (its name ends in {ext}); "
                "please save it as .xlsx.")
    return f"The file is not an Excel workbook, even though its name ends in {ext}; please save it as .xlsx."


def _refuse_zip_bomb(zf: zipfile.ZipFile) -> None:
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if info.file_size > RATIO_CHECK_FROM_BYTES and info.file_size > MAX_MEMBER_RATIO * max(info.compress_size, 1):
            raise UnreadableFile(
                "The file expands to an implausible size when opened (it may be a 'zip bomb'); it was not read."
            )
    if total > MAX_UNCOMPRESSED_BYTES:
        raise UnreadableFile(
            f"The workbook is too large to process (over {MAX_UNCOMPRESSED_BYTES // 1024**2} MB of data); "
            "please split it or send only the return's sheets."
        )


def _sheet_rows(sheet: python_calamine.CalamineSheet) -> list[list[object]]:
    """All rows from A1 down, '' (calamine's empty, also for error cells) as None."""
    # The C-level "'' in row" test lets rows with no empty cell skip the Python-level copy.
    out = [
        [None if v == "" else v for v in row] if "" in row else row
        for row in sheet.to_python(skip_empty_area=False)
    ]
    # Durations ([h]:mm formats) are kept as Excel holds them: a number of days.
    if any(type(v) is dt.timedelta for row in out for v in row):
        out = [[v.total_seconds() / 86400 if type(v) is dt.timedelta else v for v in row] for row in out]
    return out


# --- Percent formats from the raw XML ----------------------------------------------------------

_CELL_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]+)"')


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_percent_code(code: str) -> bool:
    """True when '%' appears in a format code outside quotes, escapes and [...] (so it scales by 100)."""
    quoted = bracket = escaped = False
    for ch in code:
        if escaped:
            escaped = False
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            bracket = True
        elif ch == "]":
            bracket = False
        elif ch == "%" and not bracket:
            return True
    return False


def _percent_styles(zf: zipfile.ZipFile, names: set[str]) -> set[int]:
    if "xl/styles.xml" not in names:
        return set()
    root = ElementTree.fromstring(zf.read("xl/styles.xml"))
    custom: set[int] = set()
    styles: set[int] = set()
    for el in root:
        if _local(el.tag) == "numFmts":
            for fmt in el:
                if _is_percent_code(fmt.get("formatCode", "")):
                    custom.add(int(fmt.get("numFmtId", "-1")))
        elif _local(el.tag) == "cellXfs":
            for i, xf in enumerate(el):
                num_fmt = int(xf.get("numFmtId", "0"))
                if num_fmt in _PERCENT_BUILTIN_FORMATS or num_fmt in custom:
                    styles.add(i)
    return styles


def _is_date1904(zf: zipfile.ZipFile) -> bool:
    for el in ElementTree.fromstring(zf.read("xl/workbook.xml")):
        if _local(el.tag) == "workbookPr":
            return el.get("date1904", "0").lower() in ("1", "true")
    return False


def _sheet_paths(zf: zipfile.ZipFile, names: set[str]) -> dict[str, str]:
    """Sheet name -> its XML member, from xl/workbook.xml and its relationships."""
    rels_name = "xl/_rels/workbook.xml.rels"
    if rels_name not in names:
        return {}
    targets: dict[str, str] = {}
    for rel in ElementTree.fromstring(zf.read(rels_name)):
        target = rel.get("Target", "")
        target = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        targets[rel.get("Id", "")] = target
    paths: dict[str, str] = {}
    for el in ElementTree.fromstring(zf.read("xl/workbook.xml")).iter():
        if _local(el.tag) == "sheet":
            rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), "")
            if rid in targets:
                paths[el.get("name", "")] = targets[rid]
    return paths


def _percent_cells(zf: zipfile.ZipFile, names: set[str]) -> dict[str, frozenset[tuple[int, int]]]:
    """Sheet name -> cells styled with a percent format; cheap when no percent style exists."""
    styles = _percent_styles(zf, names)
    if not styles:
        return {}
    alternatives = b"|".join(str(s).encode() for s in sorted(styles))
    # Excel, LibreOffice, openpyxl and xlsxwriter all write ' r="A1" s="N"': a pattern led by
    # a literal is several times faster than a general one. When a chunk holds more percent style attributes than that
    # pattern found (another writer's attribute order), the general pattern is used.
    adjacent = re.compile(rb' r="([A-Z]{1,3})([0-9]+)"\s+s="(?:' + alternatives + rb')"')
    general = re.compile(rb'<(?:\w+:)?c\s[^>]*?\bs="(?:' + alternatives + rb')"[^>]*>')
    needles = [b' s="%d"' % s for s in sorted(styles)]
    columns: dict[bytes, int] = {}
    out: dict[str, frozenset[tuple[int, int]]] = {}
    for sheet, member in _sheet_paths(zf, names).items():
        if member not in names:
            continue
        found: set[tuple[int, int]] = set()
        with zf.open(member) as f:
            carry = b""
            while True:
                chunk = f.read(_SCAN_CHUNK)
                buf = carry + chunk
                # Scan up to the last '<' so that no tag is split between chunks.
                cut = len(buf) if not chunk else max(buf.rfind(b"<"), 0)
                hits = adjacent.findall(buf, 0, cut)
                if len(hits) < sum(buf.count(n, 0, cut) for n in needles):
                    refs = (_CELL_REF.search(m.group(0)) for m in general.finditer(buf, 0, cut))
                    hits = [r.groups() for r in refs if r]
                for letters, row in hits:
                    col = columns.get(letters)
                    if col is None:
                        col = columns[letters] = _column_index(letters)
                    found.add((int(row), col))
                carry = buf[cut:]
                if not chunk:
                    break
        out[sheet] = frozenset(found)
    return out


def _column_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1
