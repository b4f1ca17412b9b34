"""Reference data: organisations, commissioners, cohorts and synonym additions (SPEC 5).

Checked at the start of every run; a problem stops the run with a message naming the
file and line (exit 2).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from transforms.datasets import PROFESSIONS
from transforms.settings import UsageError

ORG_TYPES = ("lead trust", "partner trust", "voluntary", "independent")
REQUIRED_FILES = {
    "organisations.csv": ("code", "name", "type"),
    "commissioners.csv": ("code", "name", "scope", "profession_filter", "recipients"),
    "cohorts.csv": ("code", "programme_year", "start_date", "end_date"),
}
OPTIONAL_FILES = {
    "column_synonyms.csv": ("dataset", "column", "synonym"),
    "value_synonyms.csv": ("field", "value", "synonym"),
}


@dataclass(frozen=True)
class Reference:
    """One version of the reference data, with the hash that identifies it."""

    organisations: pd.DataFrame
    commissioners: pd.DataFrame
    cohorts: pd.DataFrame
    column_synonyms: pd.DataFrame | None
    value_synonyms: pd.DataFrame | None
    files: dict[str, bytes]
    sha256: str

    @property
    def org_codes(self) -> set[str]:
        return set(self.organisations["code"])

    @property
    def cohort_codes(self) -> set[str]:
        return set(self.cohorts["code"])


def _read_csv(name: str, raw: bytes, columns: tuple[str, ...]) -> pd.DataFrame:
    text = raw.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise UsageError(f"reference/{name} is empty: it needs the header row {','.join(columns)}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise UsageError(f"reference/{name} line 1: missing column(s) {', '.join(missing)} (header must include {','.join(columns)})")
    records = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        record = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        record["line_no"] = line_no
        records.append(record)
    return pd.DataFrame(records, columns=[*header, "line_no"]).astype({"line_no": "int64"})


def _duplicate_check(name: str, frame: pd.DataFrame) -> None:
    dup = frame[frame["code"].duplicated()]
    if len(dup):
        row = dup.iloc[0]
        raise UsageError(f"reference/{name} line {row['line_no']}: duplicate code {row['code']!r}")


def _parse_iso(name: str, line: int, column: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"reference/{name} line {line}: {column} {text!r} is not an ISO date (YYYY-MM-DD)") from None


def load_reference(folder: Path) -> Reference:
    """Read and check the reference CSVs in ``folder``; raise UsageError on any problem."""
    files: dict[str, bytes] = {}
    for name in (*REQUIRED_FILES, *OPTIONAL_FILES):
        path = folder / name
        if path.is_file():
            files[name] = path.read_bytes()
        elif name in REQUIRED_FILES:
            raise UsageError(f"reference/{name} is missing from {folder}")
    return parse_reference(files)


def parse_reference(files: dict[str, bytes]) -> Reference:
    """Check one version of the reference data, given as file name -> bytes."""

    orgs = _read_csv("organisations.csv", files["organisations.csv"], REQUIRED_FILES["organisations.csv"])
    orgs["code"] = orgs["code"].str.upper()
    _duplicate_check("organisations.csv", orgs)
    for row in orgs.itertuples():
        if not row.code:
            raise UsageError(f"reference/organisations.csv line {row.line_no}: code is empty")
        if row.type not in ORG_TYPES:
            raise UsageError(
                f"reference/organisations.csv line {row.line_no}: type {row.type!r} is not one of {', '.join(ORG_TYPES)}"
            )
    if "contacts" not in orgs.columns:
        orgs["contacts"] = ""

    comms = _read_csv("commissioners.csv", files["commissioners.csv"], REQUIRED_FILES["commissioners.csv"])
    _duplicate_check("commissioners.csv", comms)
    known = set(orgs["code"])
    for row in comms.itertuples():
        scope = row.scope.strip().upper()
        if scope != "ALL":
            codes = [c.strip() for c in scope.split(";") if c.strip()]
            unknown = [c for c in codes if c not in known]
            if not codes or unknown:
                raise UsageError(
                    f"reference/commissioners.csv line {row.line_no}: scope names unknown organisation code(s) "
                    f"{', '.join(unknown) or '(none given)'}"
                )
        if row.profession_filter and row.profession_filter not in PROFESSIONS:
            raise UsageError(
                f"reference/commissioners.csv line {row.line_no}: profession_filter {row.profession_filter!r} "
                f"is not one of {', '.join(PROFESSIONS)}"
            )
    comms["scope"] = comms["scope"].str.upper()

    cohorts = _read_csv("cohorts.csv", files["cohorts.csv"], REQUIRED_FILES["cohorts.csv"])
    cohorts["code"] = cohorts["code"].str.upper()
    _duplicate_check("cohorts.csv", cohorts)
    starts, ends = [], []
    for row in cohorts.itertuples():
        start = _parse_iso("cohorts.csv", row.line_no, "start_date", row.start_date)
        end = _parse_iso("cohorts.csv", row.line_no, "end_date", row.end_date)
        if end < start:
            raise UsageError(f"reference/cohorts.csv line {row.line_no}: cohort {row.code} ends ({end}) before it starts ({start})")
        starts.append(start)
        ends.append(end)
    cohorts["start_date"] = pd.to_datetime(pd.Series(starts, dtype="object")).astype("datetime64[ms]")
    cohorts["end_date"] = pd.to_datetime(pd.Series(ends, dtype="object")).astype("datetime64[ms]")

    extra = {
        name: _read_csv(name, files[name], cols) if name in files else None for name, cols in OPTIONAL_FILES.items()
    }
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return Reference(
        organisations=orgs,
        commissioners=comms,
        cohorts=cohorts,
        column_synonyms=extra["column_synonyms.csv"],
        value_synonyms=extra["value_synonyms.csv"],
        files=files,
        sha256=digest.hexdigest(),
    )


def commissioner_scope(commissioner: pd.Series, organisations: pd.DataFrame) -> list[str]:
    """The organisation codes a commissioner's report covers."""
    if commissioner["scope"] == "ALL":
        return sorted(organisations["code"])
    return sorted(c.strip() for c in commissioner["scope"].split(";") if c.strip())
