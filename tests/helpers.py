"""Shared test helpers: a data root with the shipped reference data and demo files."""

from __future__ import annotations

import hashlib
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


def workbook(path: Path, sheets: dict[str, list[list[object]]], *, hidden: tuple[str, ...] = (),
             formats: dict[tuple[str, str], str] | None = None) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        if name in hidden:
            ws.sheet_state = "hidden"
    for (sheet, ref), fmt in (formats or {}).items():
        wb[sheet][ref].number_format = fmt
    wb.save(path)
    return path
