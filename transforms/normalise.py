"""Normalising single cell values: headers, dates, periods, numbers, codes, text, categories.

Each parser takes one raw cell (as ``transforms.read`` gives it) and returns the typed
value, ``None`` for a blank cell, or the ``INVALID`` sentinel for a cell that holds
something that cannot be read. None of them raise on bad input.

Decisions worth knowing:
- Dates in text are always read day-first (UK); only explicit formats are accepted.
- Two-digit years follow Excel: 00-29 -> 2000s, 30-99 -> 1900s.
- Excel serial 60 is Excel's fictitious 29 February 1900 and is INVALID.
- Serial numbers are accepted only from numeric cells, never from text (text "45750" is
  more likely a typing slip than a date).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Final

import pandas as pd

from transforms import datasets


class _Invalid:
    """Sentinel for a non-blank cell that does not parse."""

    _instance: _Invalid | None = None

    def __new__(cls) -> _Invalid:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INVALID"

    def __bool__(self) -> bool:
        return False


INVALID: Final = _Invalid()

# Cells that mean "nothing here" in number, date and period columns.
BLANK_TOKENS = frozenset({"", "-", "–", "—", "n/a", "na", "#n/a", "n.a.", "null"})

_EXCEL_SERIAL_MAX = 2958465  # 31/12/9999
_EPOCH_1900 = dt.date(1899, 12, 30)  # serial 61 onwards: Excel counts a 29 Feb 1900 that never was
_EPOCH_1904 = dt.date(1904, 1, 1)

_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"), ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_RE = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_TIME_TAIL = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"

_ISO = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})" + _TIME_TAIL)
_UK_NUMERIC = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})" + _TIME_TAIL)
_UK_WORDS = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[ -]" + _MONTH_RE + r"\.?[ -](\d{4}|\d{2})", re.IGNORECASE)
_MONTH_LABEL = re.compile(_MONTH_RE + r"\.?[ '-]?(\d{4}|\d{2})", re.IGNORECASE)
_ISO_MONTH = re.compile(r"(\d{4})[-/](\d{1,2})")
_UK_MONTH = re.compile(r"(\d{1,2})/(\d{4})")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_CURRENCY = "£$€"
_WHITESPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")


# --- Headers and codes -------------------------------------------------------------------


def normalise_header(text: object) -> str:
    """A header as compared with column names and synonyms: 'Organization Code ' -> 'organisation code'."""
    s = cell_text(text) or ""
    s = s.lower().replace("&", " and ").replace("organiz", "organis")
    return _NOT_WORD.sub(" ", s).strip()


def cell_text(value: object) -> str | None:
    """A raw cell as a person would read it, trimmed; None when blank."""
    if value is None:
        return None
    if isinstance(value, str):
        s = value.strip()
        return s or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip() or None


def normalise_text(value: object) -> str | None:
    """Free text trimmed with inner whitespace collapsed; numbers and dates as plain text."""
    s = cell_text(value)
    return _WHITESPACE.sub(" ", s) if s is not None else None


def normalise_code(value: object) -> str | None:
    """A code trimmed, upper-cased, inner whitespace collapsed; 123.0 -> '123'."""
    s = normalise_text(value)
    return s.upper() if s is not None else None


# --- Dates and periods ----------------------------------------------------------------------


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        y += 2000 if y < 30 else 1900
    return y


def _make_date(y: int, m: int, d: int) -> dt.date | _Invalid:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return INVALID


def _from_serial(n: float, datemode_1904: bool) -> dt.date | _Invalid:
    if not math.isfinite(n):
        return INVALID
    days = int(n)
    if datemode_1904:
        return _EPOCH_1904 + dt.timedelta(days=days) if 0 <= days <= _EXCEL_SERIAL_MAX - 1462 else INVALID
    if not 1 <= days <= _EXCEL_SERIAL_MAX or days == 60:
        return INVALID
    if days < 60:
        return dt.date(1899, 12, 31) + dt.timedelta(days=days)
    return _EPOCH_1900 + dt.timedelta(days=days)


def _date_from_text(s: str) -> dt.date | _Invalid:
    if m := _ISO.fullmatch(s):
        return _make_date(int(m[1]), int(m[2]), int(m[3]))
    if m := _UK_NUMERIC.fullmatch(s):
        return _make_date(_year(m[4]), int(m[3]), int(m[1]))
    if m := _UK_WORDS.fullmatch(s):
        return _make_date(_year(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    return INVALID


def _blank_or_text(value: object) -> str | None:
    """'' for blank tokens, the collapsed text otherwise (strings only)."""
    s = _WHITESPACE.sub(" ", value.strip())  # type: ignore[union-attr]
    return "" if s.lower() in BLANK_TOKENS else s


def parse_date(value: object, *, datemode_1904: bool = False) -> dt.date | None | _Invalid:
    """A cell as a calendar date: None when blank, INVALID when not a real date.

    Accepts date/datetime cells, Excel serial numbers, ISO text and UK day-first text
    ('03/04/2025', '3/4/25', '03-04-2025', '03.04.2025', '3 Apr 2025', '03-Apr-25').
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool) or isinstance(value, dt.time):
        return INVALID
    if isinstance(value, (int, float)):
        return _from_serial(value, datemode_1904)
    if isinstance(value, str):
        s = _blank_or_text(value)
        return _date_from_text(s) if s else None
    return INVALID


def parse_period(value: object) -> dt.date | None | _Invalid:
    """A period start: like ``parse_date``, plus month labels ('Apr-24', 'Apr 2024',
    'April 2024', '2024-04', '04/2024') meaning the first of that month."""
    if isinstance(value, str):
        s = _blank_or_text(value)
        if not s:
            return None
        if m := _MONTH_LABEL.fullmatch(s):
            return _make_date(_year(m[2]), _MONTHS[m[1].lower()], 1)
        if m := _ISO_MONTH.fullmatch(s):
            return _make_date(int(m[1]), int(m[2]), 1)
        if m := _UK_MONTH.fullmatch(s):
            return _make_date(int(m[2]), int(m[1]), 1)
        return _date_from_text(s)
    return parse_date(value)


# --- Numbers --------------------------------------------------------------------------------


def parse_number(value: object, *, percent_formatted: bool = False) -> float | None | _Invalid:
    """A cell as a number: None when blank (or 'n/a', '-'), INVALID when not a number.

    Text may carry thousands separators, a currency sign or a trailing '%' ('85%' -> 85.0).
    A numeric cell formatted as a percentage in Excel (0.85 shown as 85%) gives 85.0.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return INVALID
    if isinstance(value, (int, float)):
        x = float(value)
        if not math.isfinite(x):
            return INVALID
        if percent_formatted:
            # Decimal avoids 0.85 * 100 == 85.00000000000001.
            return float(Decimal(repr(x)) * 100)
        return x
    if not isinstance(value, str):
        return INVALID
    s = _blank_or_text(value)
    if not s:
        return None
    if s.endswith("%"):
        s = s[:-1].rstrip()
    sign = s[0] if s[:1] in "+-−" else ""
    if s[len(sign):len(sign) + 1] in _CURRENCY:
        s = sign + s[len(sign) + 1:].lstrip()
    s = s.replace("−", "-")
    if "," in s:
        if not _GROUPED.fullmatch(s):
            return INVALID
        s = s.replace(",", "")
    if not _NUMBER.fullmatch(s):
        return INVALID
    x = float(s)
    return x if math.isfinite(x) else INVALID


# --- Categories -----------------------------------------------------------------------------


def category_key(value: object) -> str:
    """The comparison key of a category value; symbols-only values ('%') keep their symbols."""
    key = normalise_header(value)
    if key:
        return key
    s = cell_text(value)
    return _WHITESPACE.sub(" ", s.lower()) if s else ""


def match_category(field: str, value: object, value_synonyms: dict[str, dict[str, str]]) -> str | None | _Invalid:
    """A categorical cell as its canonical value: None when blank, INVALID when not in the list.

    ``field`` is a ``datasets.CATEGORIES`` key; ``value_synonyms`` is field -> {key -> canonical}.
    """
    key = category_key(value)
    if not key:
        return None
    return value_synonyms.get(field, {}).get(key, INVALID)


def default_value_synonyms(extra: pd.DataFrame | None = None) -> dict[str, dict[str, str]]:
    """field -> {category_key(synonym) -> canonical value}: the canonical values themselves,
    ``datasets.VALUE_SYNONYMS``, then ``extra`` rows (columns field, value, synonym, e.g.
    from reference/value_synonyms.csv). Raises ValueError naming a bad ``extra`` row."""
    out: dict[str, dict[str, str]] = {}
    for field, values in datasets.CATEGORIES.items():
        table = out[field] = {category_key(v): v for v in values}
        for synonym, canonical in datasets.VALUE_SYNONYMS.get(field, {}).items():
            table[category_key(synonym)] = canonical
    if extra is None:
        return out
    missing = {"field", "value", "synonym"} - set(extra.columns)
    if missing:
        raise ValueError(f"value_synonyms.csv: missing column(s) {', '.join(sorted(missing))}")
    for line, (field, value, synonym) in enumerate(
        extra[["field", "value", "synonym"]].itertuples(index=False, name=None), start=2
    ):
        field = normalise_header(field).replace(" ", "_")
        if field not in datasets.CATEGORIES:
            raise ValueError(
                f"value_synonyms.csv line {line}: unknown field {field!r} "
                f"(one of {', '.join(datasets.CATEGORIES)})"
            )
        canonical = out[field].get(category_key(value))
        if canonical is None or canonical not in datasets.CATEGORIES[field]:
            raise ValueError(f"value_synonyms.csv line {line}: {value!r} is not an allowed {field}")
        key = category_key(synonym)
        if not key:
            raise ValueError(f"value_synonyms.csv line {line}: the synonym is blank")
        out[field][key] = canonical
    return out
