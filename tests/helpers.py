"""Shared test helpers: a data root with the shipped reference data and demo files."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


def new_root(base: Path) -> Path:
    (base / "reference").mkdir(parents=True)
    for source in REFERENCE.glob("*.csv"):
        (base / "reference" / source.name).write_bytes(source.read_bytes())
    return base


def marts(folder: Path) -> dict[str, pd.DataFrame]:
    folder = folder.resolve()
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def file_hashes(folder: Path) -> dict[str, str]:
    folder = folder.resolve()
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def workbook(path: Path, sheets: dict[str, list[list[object]]], *,
             hidden: tuple[str, ...] | dict[str, str] = (),
             formats: dict[tuple[str, str], str] | None = None) -> Path:
    """An .xlsx written by openpyxl. ``hidden``: sheet names to hide, or name -> sheet state
    ('hidden', 'veryHidden'); ``formats``: (sheet, cell) -> number format."""
    states = hidden if isinstance(hidden, dict) else dict.fromkeys(hidden, "hidden")
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        if name in states:
            ws.sheet_state = states[name]
    for (sheet, ref), fmt in (formats or {}).items():
        wb[sheet][ref].number_format = fmt
    wb.save(path)
    return path


def corrupt_member(path: Path, member: str, data: bytes) -> Path:
    """Replace one member of the zip at ``path`` with ``data`` (a damaged workbook part)."""
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members[member] = data
    with zipfile.ZipFile(path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return path
