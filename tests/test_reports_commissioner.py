"""The commissioner workbook (SPEC 8): complete, accessible, scoped, suppressed, safe.

Fixtures are small literal marts that conform to the declared schemas (checked with
``to_arrow``), with the real reference data of data/reference/, plus one synthetic set of
200 projects for the usability and size test. Every workbook the module produces is built
once (module fixtures), read back from its XML and with openpyxl, and converted with
LibreOffice in one invocation at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from reports.commissioner import WorkbookContext, build_commissioner_workbook, workbook_path
from reports.layout import SHORTHAND
from reports.period import TABLES, write_period_reports
from tests import _libreoffice
from tests._libreoffice import libreoffice  # noqa: F401  (the session fixture)
from transforms.datasets import PROFESSIONS
from transforms.marts import SCHEMAS
from transforms.outcomes import build_project_outcomes, build_spc_points
from transforms.reference import load_reference
from transforms.storage import to_arrow

ROOT = Path(__file__).resolve().parents[1]
PERIOD = "2025-06"
PRODUCED = datetime(2025, 7, 12, 2, 5, tzinfo=UTC)
AS_OF = datetime(2025, 7, 11, 23, 0, tzinfo=UTC)
INJECTIONS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+2", "-3+4", "@SUM(A1:A2)", "\tcmd", "\rcr=1"]
NAN = float("nan")
MS = "datetime64[ms]"


# --- Fixture marts ------------------------------------------------------------------------------

def _summary_rows() -> list[tuple]:
    """(period, org, cohort, year, profession, enrolled, active, completed, withdrawn, deferred)."""
    rows = [
        ("RNL", "C23A", "2023/24", "Nursing", 0, 0, 14, 3, 1),
        ("RNL", "C23A", "2023/24", "Social Work", 0, 0, 6, 1, 0),
        ("RNL", "C24A", "2024/25", "Nursing", 0, 0, 18, 2, 2),
        ("RNL", "C24A", "2024/25", "Medical", 0, 0, 3, 0, 0),
        ("RNL", "C25A", "2025/26", "Nursing", 9, 11, 0, 1, 0),
        ("RNL", "C25A", "2025/26", "Social Work", 2, 6, 0, 0, 1),
        ("RPA", "C24A", "2024/25", "Allied Health Professional", 0, 0, 7, 2, 0),
        ("RPA", "C25A", "2025/26", "Allied Health Professional", 3, 5, 0, 0, 0),
        ("RPA", "C25A", "2025/26", "Social Work", 1, 2, 0, 0, 0),
        ("RPB", "C24A", "2024/25", "Psychology", 0, 0, 9, 1, 0),
        ("RPB", "C25A", "2025/26", "Psychology", 4, 8, 0, 0, 0),
        ("RPC", "C23A", "2023/24", "Nursing", 0, 0, 11, 0, 2),
        ("RPC", "C25A", "2025/26", "Nursing", 6, 7, 0, 1, 0),
        ("RPC", "C25A", "2025/26", "Midwifery", 2, 1, 0, 0, 0),
        ("VFC", "C24A", "2024/25", "Social Work", 0, 0, 5, 1, 0),
        ("VFC", "C25A", "2025/26", "Social Work", 3, 3, 0, 0, 0),
        ("IRC", "C25A", "2025/26", "Nursing", 2, 2, 0, 0, 0),
    ]
    out = []
    for org, cohort, year, prof, *counts in rows:
        out.append((PERIOD, org, cohort, year, prof, *counts))
        out.append(("2025-05", org, cohort, year, prof, *[c + 1 for c in counts]))  # another period: never shown
    return out


def _projects() -> pd.DataFrame:
    ids = ["SET-2023-001", "SET-2024-002", "SET-2025-003", "SET-2025-004", "SET-2025-005", "SET-2025-006",
           "SET-2025-007", "SET-2025-008"]
    frame = pd.DataFrame({
        "project_id": ids,
        "organisation_code": ["RNL", "RNL", "RPA", "RPA", "RPB", "RPC", "VFC", "RPC"],
        "cohort_code": ["C23A", "C24A", "C25A", "C25A", "C25A", "C25A", "C25A", "C25A"],
        "title": ["Wristbands for every inpatient", "Earlier AKI diagnosis", INJECTIONS[0], INJECTIONS[1],
                  "Brindle waiting list review", INJECTIONS[2], "Young people's views recorded", INJECTIONS[4]],
        "aim": ["", "", "", "", "", "", "", ""],
        "service_area": ["Medicine", "Renal", "Therapies", "Therapies", "Psychology", "Maternity", "Children", "Surgery"],
        "measure_name": ["% wearing wristband", "days to AKI diagnosis", "% seen in 18 weeks", INJECTIONS[3],
                         "weeks waiting", "% booked by 10 weeks", "% views recorded", INJECTIONS[5]],
        "measure_type": ["percentage", "time", "percentage", "rate", "time", "percentage", "percentage", "percentage"],
        "unit": ["%", "days", "%", "per 1000", "weeks", "%", "%", "%"],
        "improvement_direction": ["increase", "decrease", "increase", "decrease", "decrease", "increase", "increase",
                                  "increase"],
        "target": [95.0, 2.0, 90.0, NAN, NAN, 80.0, 75.0, NAN],
        "intervention_date": pd.to_datetime(["2024-07-01", None, None, None, None, None, None, None]).astype(MS),
        "status": ["Sustaining", "Completed", "Active", "Active", "Active", "Active", "Active", "Active"],
        "source_sha256": ["a" * 64] * 8,
        "source_sheet": ["Register"] * 8,
        "source_row": list(range(2, 10)),
        "received_at": pd.Timestamp("2025-07-03", tz="UTC"),
    })
    frame["received_at"] = frame["received_at"].astype("datetime64[ms, UTC]")
    return frame


def _series(project: str, measure: str, values: list[float], start: str = "2023-07-01", revised_at: int | None = None):
    periods = pd.date_range(start, periods=len(values), freq="MS")
    return [(project, measure, p, v, i == revised_at) for i, (p, v) in enumerate(zip(periods, values, strict=True))]


def _measures() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    rows += _series("SET-2023-001", "% wearing wristband",
                    [80, 82, 79, 81, 80, 83, 78, 81, 80, 82, 79, 81, 84, 86, 85, 87, 86, 88, 87, 89, 90, 91, 90, 92, 91],
                    revised_at=23)
    rows += _series("SET-2024-002", "days to AKI diagnosis", [float(x) for x in np.round(5 - np.arange(14) * 0.2 + rng.normal(0, 0.3, 14), 1)],
                    start="2024-05-01")
    rows += _series("SET-2025-003", "% seen in 18 weeks", [70, 72, 71, 69, 74, 73], start="2025-01-01")
    rows += _series("SET-2025-004", INJECTIONS[3], [6.1, 5.9, 6.4, 5.2, 5.0, 4.8, 4.9], start="2024-12-01")
    rows += _series("SET-2025-005", "weeks waiting", [30, 29, 31, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19], start="2024-06-01")
    rows += _series("SET-2025-006", "% booked by 10 weeks", [60, 61, 63, 62, 64, 63, 65, 66, 64, 65, 67, 66, 68, 69],
                    start="2024-05-01")
    rows += _series("SET-2025-007", "% views recorded", [50, 55, 53, 58, 60, 61, 59, 62, 64, 63, 66, 65], start="2024-07-01")
    rows += _series("SET-2025-008", INJECTIONS[5], [88, 87, 89], start="2025-04-01")
    # a later point than the period: the report for 2025-06 must not draw it
    rows += _series("SET-2025-003", "% seen in 18 weeks", [99.0], start="2025-07-01")
    frame = pd.DataFrame(rows, columns=["project_id", "measure_name", "period", "value", "revised"])
    frame["period"] = frame["period"].astype(MS)
    frame["value"] = frame["value"].astype("float64")
    frame["numerator"] = NAN
    frame["denominator"] = NAN
    frame["source_sha256"] = "b" * 64
    frame["source_sheet"] = "Measures"
    frame["source_row"] = range(2, len(frame) + 2)
    frame["received_at"] = pd.Timestamp("2025-07-03", tz="UTC")
    frame["received_at"] = frame["received_at"].astype("datetime64[ms, UTC]")
    return frame


def _enrolment() -> pd.DataFrame:
    links = [("RNL", "Nursing", "SET-2023-001"), ("RNL", "Social Work", "SET-2024-002"), ("RPA", "Social Work", "SET-2025-003"),
             ("RPA", "Allied Health Professional", "SET-2025-004"), ("RPB", "Psychology", "SET-2025-005"),
             ("RPC", "Nursing", "SET-2025-006"), ("VFC", "Social Work", "SET-2025-007"), ("RPC", "Midwifery", "SET-2025-008"),
             ("RNL", "Nursing", None)]
    frame = pd.DataFrame({
        "participant_key": [f"k{i:03d}" for i in range(len(links))],
        "cohort_code": "C25A",
        "organisation_code": [o for o, _, _ in links],
        "profession": [p for _, p, _ in links],
        "enrolment_date": pd.Timestamp("2025-04-01"),
        "status": "Active",
        "status_date": pd.NaT,
        "project_id": [p for _, _, p in links],
        "absent_from_latest_return": False,
        "source_sha256": "c" * 64,
        "source_sheet": "Enrolment",
        "source_row": range(2, len(links) + 2),
        "received_at": pd.Timestamp("2025-07-03", tz="UTC"),
    })
    for column in ("enrolment_date", "status_date"):
        frame[column] = frame[column].astype(MS)
    frame["received_at"] = frame["received_at"].astype("datetime64[ms, UTC]")
    return frame


def _submission_status() -> pd.DataFrame:
    rows = []
    plan = {"RNL": ("on_time", 120, 2), "RPA": ("late", 14, 3), "RPB": ("on_time", 40, 0), "RPC": ("missing", 0, 0),
            "VFC": ("on_time", 7, 1), "IRC": ("rejected", 0, 0)}
    for org, (status, received, rejected) in plan.items():
        for dataset in ("enrolment_return", "project_register", "measure_data"):
            scale = {"enrolment_return": 1, "project_register": 0, "measure_data": 3}[dataset]
            r = received * scale if dataset != "project_register" else (2 if received else 0)
            j = rejected if dataset == "enrolment_return" else 0
            rows.append({"reporting_period": PERIOD, "organisation_code": org, "dataset": dataset, "status": status,
                         "files": 0 if status == "missing" else 1, "rows_received": r, "rows_accepted": r - j,
                         "rows_rejected": j,
                         "first_received_at": pd.NaT if status in ("missing",) else pd.Timestamp("2025-07-08 09:30", tz="UTC")})
    frame = pd.DataFrame(rows)
    frame["first_received_at"] = pd.to_datetime(frame["first_received_at"], utc=True).astype("datetime64[ms, UTC]")
    return frame


def small_marts() -> dict[str, pd.DataFrame]:
    summary = pd.DataFrame(_summary_rows(), columns=["reporting_period", "organisation_code", "cohort_code",
                                                     "programme_year", "profession", "enrolled", "active", "completed",
                                                     "withdrawn", "deferred"])
    summary.insert(5, "headcount", summary[["enrolled", "active", "completed", "withdrawn", "deferred"]].sum(axis=1))
    projects = _projects()
    measure = _measures()
    spc = build_spc_points(projects, measure)
    outcomes = build_project_outcomes(projects, measure, ["2025-05", PERIOD])
    return {"mart_programme_summary": summary, "dim_project": projects, "fct_enrolment": _enrolment(),
            "mart_spc_points": spc, "mart_project_outcomes": outcomes, "mart_submission_status": _submission_status()}


def synthetic_marts(n_projects: int = 200, months: int = 36, seed: int = 20250601,
                    with_measures: bool = False) -> dict[str, pd.DataFrame]:
    """A demo-like programme: seven organisations, five years of cohorts, ``n_projects`` projects.

    ``with_measures`` adds the measure values the SPC marts are built from (``fct_measure``,
    its lineage columns only)."""
    rng = np.random.default_rng(seed)
    orgs = ["RNL", "RPA", "RPB", "RPC", "RPD", "VFC", "IRC"]
    weights = np.array([0.4, 0.12, 0.12, 0.12, 0.1, 0.07, 0.07])
    cohorts = [("C22A", "2022/23"), ("C22B", "2022/23"), ("C23A", "2023/24"), ("C23B", "2023/24"), ("C24A", "2024/25"),
               ("C24B", "2024/25"), ("C25A", "2025/26"), ("C25B", "2025/26")]
    rows = []
    for cohort, year in cohorts:
        size = {"2022/23": 50, "2023/24": 80, "2024/25": 120, "2025/26": 180}[year] // 2
        running = year == "2025/26"
        for org, w in zip(orgs, weights, strict=True):
            for profession in PROFESSIONS:
                n = int(rng.poisson(size * w / 4))
                if n == 0:
                    continue
                if running:
                    split = rng.multinomial(n, [0.3, 0.6, 0.0, 0.07, 0.03])
                else:
                    split = rng.multinomial(n, [0.0, 0.0, 0.82, 0.12, 0.06])
                rows.append((PERIOD, org, cohort, year, profession, n, *[int(s) for s in split]))
    summary = pd.DataFrame(rows, columns=["reporting_period", "organisation_code", "cohort_code", "programme_year",
                                          "profession", "headcount", "enrolled", "active", "completed", "withdrawn",
                                          "deferred"])
    end = pd.Timestamp(f"{PERIOD}-01")
    types = ["percentage", "time", "count", "rate"]
    projects, measures, links = [], [], []
    for i in range(n_projects):
        org = orgs[int(rng.choice(len(orgs), p=weights))]
        cohort, _ = cohorts[int(rng.integers(len(cohorts)))]
        kind = types[i % 4]
        direction = "increase" if kind == "percentage" else "decrease"
        length = int(rng.integers(8, months + 1))
        start = end - pd.DateOffset(months=length - 1)
        base = {"percentage": 60.0, "time": 20.0, "count": 12.0, "rate": 5.0}[kind]
        change = int(rng.integers(3, length)) if rng.random() < 0.6 else None
        values = base + rng.normal(0, base * 0.05, length)
        if change is not None:
            values[change:] += (1 if direction == "increase" else -1) * base * 0.12
        values = np.clip(values, 0, 100 if kind == "percentage" else None)
        pid = f"SET-{2022 + i % 4}-{i:03d}"
        target = round(base * (1.2 if direction == "increase" else 0.8), 1) if rng.random() < 0.7 else NAN
        intervention = start + pd.DateOffset(months=change) if change is not None and change >= 12 else pd.NaT
        projects.append({"project_id": pid, "organisation_code": org, "cohort_code": cohort,
                         "title": f"Improvement project {i}", "aim": "", "service_area": "Ward", "measure_name": f"measure {i}",
                         "measure_type": kind, "unit": "%" if kind == "percentage" else "", "improvement_direction": direction,
                         "target": target, "intervention_date": intervention, "status": "Active"})
        for k, value in enumerate(values):
            measures.append((pid, f"measure {i}", start + pd.DateOffset(months=k), round(float(value), 1),
                             bool(k == length - 1 and i % 9 == 0)))
        links.append((org, PROFESSIONS[i % len(PROFESSIONS)], pid))
    dim_project = pd.DataFrame(projects)
    dim_project["intervention_date"] = pd.to_datetime(dim_project["intervention_date"]).astype(MS)
    dim_project = dim_project.assign(source_sha256="d" * 64, source_sheet="Register", source_row=range(2, n_projects + 2),
                                     received_at=pd.Timestamp("2025-07-03", tz="UTC"))
    dim_project["received_at"] = dim_project["received_at"].astype("datetime64[ms, UTC]")
    fct_measure = pd.DataFrame(measures, columns=["project_id", "measure_name", "period", "value", "revised"])
    fct_measure["period"] = fct_measure["period"].astype(MS)
    fct_measure = fct_measure.assign(numerator=NAN, denominator=NAN, source_sha256="e" * 64, source_sheet="Measures",
                                     source_row=range(2, len(fct_measure) + 2))
    enrolment = _enrolment().iloc[:0]
    enrolment = pd.concat([enrolment, pd.DataFrame({
        "participant_key": [f"s{i:04d}" for i in range(len(links))], "cohort_code": "C25A",
        "organisation_code": [o for o, _, _ in links], "profession": [p for _, p, _ in links],
        "project_id": [p for _, _, p in links], "status": "Active", "absent_from_latest_return": False,
        "source_sha256": "c" * 64, "source_sheet": "Enrolment", "source_row": range(2, len(links) + 2)})],
        ignore_index=True)
    status = _submission_status()
    return {"mart_programme_summary": summary, "dim_project": dim_project, "fct_enrolment": enrolment,
            "mart_spc_points": build_spc_points(dim_project, fct_measure),
            "mart_project_outcomes": build_project_outcomes(dim_project, fct_measure, [PERIOD]),
            "mart_submission_status": status} | ({"fct_measure": fct_measure} if with_measures else {})


# --- Reading workbooks back ---------------------------------------------------------------------

SHEETS = ["Cover", "Contents", "Notes", "Summary", "Growth", "Participation", "Projects", "Run charts", "Chart data",
          "Data quality"]
NO_TABLE = {"Cover", "Run charts"}
PRODUCED_FILES: list[Path] = []  # every workbook this module writes: all converted by LibreOffice at the end


def xml_parts(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist() if n.endswith((".xml", ".rels"))}


def sheet_xml(path: Path) -> dict[str, str]:
    """Sheet name -> its worksheet XML."""
    parts = xml_parts(path)
    names = re.findall(r'<sheet name="([^"]+)" sheetId="\d+" r:id="(rId\d+)"', parts["xl/workbook.xml"])
    rels = dict(re.findall(r'Id="(rId\d+)" [^>]*Target="([^"]+)"', parts["xl/_rels/workbook.xml.rels"]))
    rels.update({k: v for v, k in re.findall(r'Target="([^"]+)" [^>]*Id="(rId\d+)"', parts["xl/_rels/workbook.xml.rels"])})
    return {name: parts["xl/" + rels[rid].lstrip("/").removeprefix("xl/")] for name, rid in names}


def table_frame(ws) -> pd.DataFrame:
    """The one table of a worksheet, as a frame of its cell values."""
    (table,) = ws.tables.values()
    rows = [[c.value for c in row] for row in ws[table.ref]]
    return pd.DataFrame(rows[1:], columns=rows[0])


@pytest.fixture(scope="module")
def reference():
    return load_reference(ROOT / "data" / "reference")


@pytest.fixture(scope="module")
def marts():
    return small_marts()


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, reference, marts) -> dict[str, Path]:
    """Every commissioner's workbook for the period (provisional), plus a final one for the month before."""
    reports = tmp_path_factory.mktemp("reports")
    paths = write_period_reports(reports, marts, reference, period=PERIOD, provisional=True, produced_at=PRODUCED,
                                 data_as_of=AS_OF)
    paths += write_period_reports(reports, marts, reference, period="2025-05", provisional=False,
                                  produced_at=PRODUCED, data_as_of=AS_OF)
    PRODUCED_FILES.extend(paths)
    return {p.stem: p for p in paths}


@pytest.fixture(scope="module")
def big(tmp_path_factory, reference) -> tuple[Path, float, dict]:
    """The demo-like workbook: 200 projects, all organisations."""
    data = synthetic_marts()
    commissioner = reference.commissioners.set_index("code").loc["NLICB"].copy()
    commissioner["code"] = "NLICB"
    path = tmp_path_factory.mktemp("big") / "BIG_qi_programme_2025-06.xlsx"
    started = time.perf_counter()
    build_commissioner_workbook(path, commissioner, data, reference.organisations,
                                WorkbookContext(PERIOD, PRODUCED, AS_OF, provisional=False))
    seconds = time.perf_counter() - started
    PRODUCED_FILES.append(path)
    return path, seconds, data


def _workbook(gallery, code: str, period: str = PERIOD) -> Path:
    return gallery[f"{code}_qi_programme_{period}"]


# --- Tests ------------------------------------------------------------------------------------


def test_fixture_marts_conform_to_their_declared_schemas(marts):
    for name, frame in {**marts, **synthetic_marts(n_projects=8, months=14)}.items():
        to_arrow(frame, SCHEMAS[name], name=name)
    assert set(TABLES) <= set(SCHEMAS)
    assert set(marts) == set(TABLES)


def test_one_workbook_per_commissioner_at_the_spec_path(gallery, reference, tmp_path):
    assert sorted(gallery) == sorted(f"{c}_qi_programme_{p}" for c in reference.commissioners["code"]
                                     for p in (PERIOD, "2025-05"))
    for path in gallery.values():
        period = path.stem.rsplit("_", 1)[1]
        assert path.parent.name == period
        assert workbook_path(path.parent.parent, path.stem.split("_")[0], period) == path


@pytest.mark.parametrize("code", ["NLICB", "ACPP", "RSWP"])
def test_sheets_follow_the_analysis_function_guidance(gallery, code):
    path = _workbook(gallery, code)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == SHEETS
    for ws in book.worksheets:
        assert ws.sheet_state == "visible", ws.title
        assert isinstance(ws["A1"].value, str) and ws["A1"].value.strip(), f"{ws.title}: no title in A1"
        assert ws["A1"].font.b, f"{ws.title}: the title is not bold"
        assert not ws.merged_cells.ranges, f"{ws.title}: merged cells"
        if ws.title in NO_TABLE:
            assert not ws.tables
            continue
        assert len(ws.tables) == 1, f"{ws.title}: {len(ws.tables)} tables"
        (table,) = ws.tables.values()
        first, last = table.ref.split(":")
        assert first.startswith("A"), f"{ws.title}: table does not start in column A"
        header_row = int(re.sub(r"\D", "", first))
        # short lines directly above the table: every row from A2 to the header has text
        assert all(ws.cell(r, 1).value for r in range(2, header_row)), ws.title
        frame = table_frame(ws)
        assert [c.name for c in table.tableColumns] == list(frame.columns)
        assert table.headerRowCount in (None, 1)
        assert all(isinstance(c, str) and c for c in frame.columns)
        assert len(frame) >= 1
        assert not frame.isna().all(axis=1).any(), f"{ws.title}: blank row inside the table"
        assert not frame.isna().all(axis=0).any(), f"{ws.title}: blank column inside the table"
    contents = table_frame(book["Contents"])
    links = {c.hyperlink.location for c in book["Contents"]["A"] if c.hyperlink}
    assert list(contents["Sheet name"]) == SHEETS[2:]
    assert links == {f"'{s}'!A1" for s in SHEETS[2:]}
    notes = table_frame(book["Notes"])
    assert {"[c]", "[x]", "[z]", "[p]", "[r]"} <= set(notes["Note number"])
    used = set(re.findall(r"\[note \d+\]", " ".join(str(c.value) for ws in book for row in ws.iter_rows() for c in row
                                                        if isinstance(c.value, str) and ws.title != "Notes")))
    assert used <= set(notes["Note number"]), "a [note N] with no note"
    for mark in SHORTHAND:
        assert mark in " ".join(notes["Note text"])


def test_document_properties_title_language_and_no_clock(gallery):
    path = _workbook(gallery, "ACPP")
    core = xml_parts(path)["docProps/core.xml"]
    assert "<dc:language>en-GB</dc:language>" in core
    assert "<dc:title>Quality improvement programme report for Ashby and Castlegate Place Partnership, June 2025" in core
    assert "2025-07-12T02:05:00Z" in core  # produced_at, never the wall clock
    props = openpyxl.load_workbook(path).properties
    assert props.language == "en-GB" and props.title.startswith("Quality improvement programme report")


OUT_OF_ACPP = {"RNL", "RPB", "RPD", "VFC", "IRC"}


def _texts(path: Path) -> str:
    return "\n".join(xml_parts(path).values())


def test_scope_organisations_only_anywhere_in_the_file(gallery, reference):
    names = reference.organisations.set_index("code")["name"]
    acpp = _texts(_workbook(gallery, "ACPP"))
    for code in OUT_OF_ACPP:
        assert not re.search(rf"\b{code}\b", acpp), f"{code} appears in the ACPP workbook"
        assert names[code] not in acpp
        first_word = names[code].split()[0]
        assert first_word not in acpp, f"{first_word} appears in the ACPP workbook"
    for pid in ["SET-2023-001", "SET-2024-002", "SET-2025-005", "SET-2025-007"]:  # projects of other organisations
        assert pid not in acpp
    assert "Brindle waiting list review" not in acpp and "Wristbands" not in acpp
    for code in ("RPA", "RPC"):
        assert code in acpp and names[code] in acpp
    nlicb = _texts(_workbook(gallery, "NLICB"))  # the check is not vacuous: the data are in the marts
    assert all(re.search(rf"\b{code}\b", nlicb) for code in OUT_OF_ACPP)
    assert "Brindle waiting list review" in nlicb


def test_scope_profession_only_anywhere_in_the_file(gallery, marts):
    rswp = _workbook(gallery, "RSWP")
    text = _texts(rswp)
    for profession in ("Nursing", "Psychology", "Midwifery", "Allied Health Professional", "Medical"):
        assert profession not in text, f"{profession} appears in the Social Work workbook"
    shared = set(re.findall(r"<t[^>]*>([^<]*)</t>", xml_parts(rswp)["xl/sharedStrings.xml"]))
    assert not (set(PROFESSIONS) - {"Social Work"}) & shared
    book = openpyxl.load_workbook(rswp)
    assert set(table_frame(book["Participation"])["Profession"]) == {"Social Work"}
    # a project is in scope when a participant linked to it is a social worker
    assert sorted(table_frame(book["Projects"])["Project ID"]) == ["SET-2024-002", "SET-2025-003", "SET-2025-007"]
    assert set(table_frame(book["Data quality"])["Rows received"]) == {"[z]"}
    headline = table_frame(book["Summary"]).set_index("Measure")["Value"]
    summary = marts["mart_programme_summary"]
    social_workers = summary.loc[(summary["reporting_period"] == PERIOD) & (summary["profession"] == "Social Work"),
                                 "headcount"].sum()
    assert headline["Participants (headcount) [note 1] [note 2]"] == social_workers == 31


def _dangerous_cells(path: Path) -> list[tuple[str, str, int]]:
    """(sheet, text, style index) of every text cell whose text starts like a formula."""
    parts = xml_parts(path)
    strings = [re.sub(r"<[^>]+>", "", s) for s in re.findall(r"<si>(.*?)</si>", parts["xl/sharedStrings.xml"], re.S)]
    strings = [s.replace("&amp;", "&").replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
               .replace("_x000D_", "\r") for s in strings]
    out = []
    for sheet, xml in sheet_xml(path).items():
        for style, index in re.findall(r'<c r="[A-Z]+\d+"(?: s="(\d+)")? t="s"><v>(\d+)</v></c>', xml):
            text = strings[int(index)]
            if text.startswith(("=", "+", "-", "@", "\t", "\r")):
                out.append((sheet, text, int(style or 0)))
    return out


def test_text_from_submissions_is_never_a_formula(gallery):
    path = _workbook(gallery, "NLICB")
    for sheet, xml in sheet_xml(path).items():
        assert "<f>" not in xml and "<f " not in xml, f"formula element in {sheet}"
    styles = xml_parts(path)["xl/styles.xml"]
    xfs = re.findall(r"<xf [^>]*?(?:/>|>.*?</xf>)", styles.split("<cellXfs")[1].split("</cellXfs>")[0], re.S)
    risky = _dangerous_cells(path)
    seen = {text for _, text, _ in risky}
    for injected in INJECTIONS:
        assert injected in seen, f"{injected!r} not written as text"
    for sheet, text, style in risky:
        assert 'quotePrefix="1"' in xfs[style], f"{sheet}: {text!r} has no quote prefix"
    # chart titles and axis names come from cells, never from the untrusted text itself
    for name, xml in xml_parts(path).items():
        if name.startswith("xl/charts/"):
            for formula in re.findall(r"<c:f>([^<]*)</c:f>", xml):
                assert re.fullmatch(r"'?[A-Za-z ]+'?!\$[A-Z]+\$\d+(:\$[A-Z]+\$\d+)?", formula), formula


def _visible_system(book) -> tuple[pd.DataFrame, dict]:
    """What a reader of the workbook sees of the linked people counts."""
    part = table_frame(book["Participation"])
    headline = table_frame(book["Summary"]).set_index("Measure")["Value"]
    growth = table_frame(book["Growth"])
    return part, {"headline": headline, "growth": growth}


def _attack(book) -> dict[str, tuple[float, float]]:
    """Integer min and max of every [c] people count, from everything shown in the workbook."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    part, other = _visible_system(book)
    statuses = ["Enrolled", "Active", "Completed", "Withdrawn", "Deferred"]
    types = {"lead trust": "Lead trust", "partner trust": "Partner trust", "voluntary": "Voluntary",
             "independent": "Independent"}
    ref = load_reference(ROOT / "data" / "reference").organisations.set_index("code")["type"].map(types)
    n = len(part) * len(statuses)
    index = {(i, s): i * len(statuses) + k for i in range(len(part)) for k, s in enumerate(statuses)}
    rows, lo, hi, targets = [], [], [], {}

    def relation(mask: np.ndarray, shown, label: str) -> None:
        if shown == "[c]" or shown is None:
            targets[label] = mask
        else:
            rows.append(mask)
            lo.append(float(shown))
            hi.append(float(shown))

    for i, r in part.iterrows():
        row_mask = np.zeros(n)
        for s in statuses:
            m = np.zeros(n)
            m[index[(i, s)]] = 1
            row_mask[index[(i, s)]] = 1
            relation(m, r[s], f"participation {i} {s}")
        relation(row_mask, r["Headcount"], f"headcount {i}")
        rows.append(row_mask)  # a listed row has at least one person
        lo.append(1.0)
        hi.append(np.inf)
    for s in statuses:
        relation(np.array([1.0 if key[1] == s else 0.0 for key in sorted(index, key=index.get)]),
                 other["headline"][f"{s} at the end of the period"], f"headline {s}")
    relation(np.ones(n), other["headline"]["Participants (headcount) [note 1] [note 2]"], "headline total")
    growth = other["growth"]
    for _, g in growth.iterrows():
        year = part["Programme year"] == g["Programme year"]
        hidden = g["Suppressed [c]"]
        for column in [c for c in growth.columns if c not in ("Programme year", "Suppressed [c]")]:
            if column == "All organisations":
                members = year
            else:
                members = year & (part["Organisation code"].map(ref) == column)
            mask = np.zeros(n)
            for i in np.flatnonzero(members.to_numpy()):
                for s in statuses:
                    mask[index[(i, s)]] = 1
            blank = pd.isna(g[column])
            assert blank == (column in hidden), "a blank growth figure is not named as suppressed, or the reverse"
            shown = "[c]" if blank else g[column]
            relation(mask, shown, f"growth {g['Programme year']} {column}")
    constraints = [LinearConstraint(np.array(rows), lo, hi)]
    out = {}
    for label, mask in targets.items():
        ends = []
        for sign in (1, -1):
            res = milp(sign * mask, constraints=constraints, integrality=np.ones(n), bounds=Bounds(0, np.inf))
            assert res.status == 0, res.message
            ends.append(sign * res.fun)
        out[label] = (ends[0], ends[1])
    return out


@pytest.mark.parametrize("code", ["NLICB", "ACPP", "RSWP"])
def test_no_count_of_1_to_4_is_shown_and_none_can_be_recovered(gallery, code):
    book = openpyxl.load_workbook(_workbook(gallery, code))
    part = table_frame(book["Participation"])
    counts = part[["Headcount", "Enrolled", "Active", "Completed", "Withdrawn", "Deferred"]]
    shown = counts.map(lambda v: v if isinstance(v, int | float) else None)
    assert not ((shown >= 1) & (shown <= 4)).any().any()
    assert (counts == "[c]").any().any()
    headline = table_frame(book["Summary"])
    assert not any(isinstance(v, int) and 1 <= v <= 4 for v in headline["Value"][:6])
    growth = table_frame(book["Growth"])
    assert not growth.drop(columns=["Programme year", "Suppressed [c]"]).map(
        lambda v: isinstance(v, int | float) and 1 <= v <= 4).any().any()
    quality = table_frame(book["Data quality"])
    for column in ("Rows received", "Rows accepted", "Rows rejected"):
        values = quality.loc[quality["Return"] == "Enrolment return", column]
        assert not any(isinstance(v, int | float) and 1 <= v <= 4 for v in values)
    # A rate is shown only when both of its counts are shown, and it is their true ratio.
    for _, row in part.iterrows():
        rate = row["Completed (% of headcount)"]
        if row["Completed"] == "[c]" or row["Headcount"] == "[c]":
            assert rate == "[c]"
        else:
            assert rate == pytest.approx(round(100 * row["Completed"] / row["Headcount"], 1))
    # An attacker with every visible figure, non-negativity and integer counts cannot pin any [c] down.
    attack = _attack(book)
    assert attack, "nothing was suppressed: the fixture should exercise suppression"
    recovered = {label: ends for label, ends in attack.items() if ends[0] == ends[1]}
    assert not recovered, f"suppressed values recovered: {recovered}"


def test_true_counts_stay_in_the_marts(marts, gallery):
    assert marts["mart_programme_summary"].equals(small_marts()["mart_programme_summary"])
    assert ((marts["mart_programme_summary"][["enrolled", "active"]] >= 1)
            & (marts["mart_programme_summary"][["enrolled", "active"]] <= 4)).any().any()


def test_run_charts_draw_the_visible_chart_data(gallery):
    path = _workbook(gallery, "NLICB")
    book = openpyxl.load_workbook(path)
    data = table_frame(book["Chart data"])
    projects = table_frame(book["Projects"])
    parts = xml_parts(path)
    charts = {n: x for n, x in parts.items() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)}
    assert len(charts) == len(projects) + 1  # one per project with points, and the growth chart
    assert not (data["Period"] >= datetime(2025, 7, 1)).any(), "a point after the period is drawn"
    header = book["Chart data"].tables["run_chart_data"].ref.split(":")[0]
    first_data_row = int(re.sub(r"\D", "", header)) + 1
    for xml in charts.values():
        refs = re.findall(r"<c:f>'Chart data'!\$([A-Z]+)\$(\d+):\$[A-Z]+\$(\d+)</c:f>", xml)
        if not refs:
            continue
        rows = {(int(a), int(b)) for _, a, b in refs}
        assert len(rows) == 1
        (top, bottom) = rows.pop()
        block = data.iloc[top - first_data_row: bottom - first_data_row + 1]
        assert block["Project ID"].nunique() == 1 and top >= first_data_row
        names = re.findall(r"<c:tx><c:strRef><c:f>'Chart data'!\$([A-Z])\$\d+</c:f>", xml)
        assert {"C", "D", "E", "F"} <= set(names)  # value, centre, lower and upper process limits
        has_target = block["Target"].notna().any()
        assert ("G" in names) == has_target
    wristbands = data[data["Project ID"] == "SET-2023-001"]
    assert (wristbands["Value revised"] == "Yes [r]").sum() == 1
    assert projects.set_index("Project ID").loc["SET-2023-001", "Latest value revised"] == "Yes [r]"


def test_an_earlier_periods_charts_are_the_analysis_of_the_points_known_then():
    from reports.commissioner import chart_points

    data = synthetic_marts(n_projects=40, with_measures=True)
    projects, measures = data["dim_project"], data["fct_measure"]
    earlier = "2024-12"
    charts = chart_points(data["mart_spc_points"], projects.iloc[::-1], earlier)
    # what the marts would have held then: the SPC points of the measures known by that period
    then = build_spc_points(projects, measures[measures["period"] < pd.Timestamp("2025-01-01")])
    assert charts["project_id"].nunique() > 10 and (charts["period"] < pd.Timestamp("2025-01-01")).all()
    drawn = set(charts["project_id"])
    assert charts["project_id"].unique().tolist() == [p for p in projects["project_id"][::-1] if p in drawn]
    lines = ["centre", "lower_limit", "upper_limit", "point_type", "rule"]
    got = charts.set_index(["project_id", "period"])[lines]
    want = then.set_index(["project_id", "period"])[lines].reindex(got.index)
    pd.testing.assert_frame_equal(got, want)
    assert not got.equals(data["mart_spc_points"].set_index(["project_id", "period"])[lines].reindex(got.index))


def test_every_project_row_links_to_its_chart(gallery):
    book = openpyxl.load_workbook(_workbook(gallery, "NLICB"))
    ws = book["Projects"]
    (table,) = ws.tables.values()
    charts = book["Run charts"]
    col = [c.name for c in table.tableColumns].index("Run chart") + 1
    header = int(re.sub(r"\D", "", table.ref.split(":")[0]))
    linked = 0
    for r in range(header + 1, ws.max_row + 1):
        pid, cell = ws.cell(r, 1).value, ws.cell(r, col)
        assert cell.hyperlink is not None, pid
        sheet, target = cell.hyperlink.location.split("!")
        assert sheet == "'Run charts'"
        heading = charts[target]
        assert heading.value.startswith(f"{pid}: ")
        assert heading.hyperlink.location == f"'Projects'!A{r}"  # and back
        linked += 1
    assert linked == len(table_frame(ws))


def test_words_for_every_code_and_colour_never_alone(gallery):
    from reports.commissioner import ASSURANCE_WORDS, VARIATION_WORDS

    book = openpyxl.load_workbook(_workbook(gallery, "NLICB"))
    projects = table_frame(book["Projects"])
    assert set(projects["Variation"]) <= set(VARIATION_WORDS.values()) | {"No measure data yet [x]"}
    assert set(projects["Assurance"]) <= set(ASSURANCE_WORDS.values()) | {"No target set [z]", "Not enough data yet [x]", "[z]"}
    text = _texts(_workbook(gallery, "NLICB"))
    for code in ("improvement_high", "concern_low", "consistent_fail", "outside_limits", "special_cause_", "on_time"):
        assert code not in text


def test_growth_chart_leaves_suppressed_figures_blank(gallery):
    path = _workbook(gallery, "NLICB")
    growth = table_frame(openpyxl.load_workbook(path)["Growth"])
    blanks = growth.drop(columns=["Programme year", "Suppressed [c]"]).isna()
    assert blanks.any().any(), "the fixture should suppress a growth figure"
    (chart,) = [x for n, x in xml_parts(path).items() if n.startswith("xl/charts/") and "Growth!$" in x]
    assert '<c:grouping val="stacked"/>' in chart and "<a:pattFill" in chart  # patterns, not colour alone
    # blanks are gaps (Excel's default when the element is absent), never zero
    assert re.findall(r'<c:dispBlanksAs val="(\w+)"', chart) in ([], ["gap"])


def test_final_and_provisional_are_said_on_the_cover(gallery):
    provisional = openpyxl.load_workbook(_workbook(gallery, "NLICB"))["Cover"]
    final = openpyxl.load_workbook(_workbook(gallery, "NLICB", "2025-05"))["Cover"]
    cover_text = lambda ws: " ".join(str(c.value) for c in ws["A"] if c.value)  # noqa: E731
    assert "Status: Provisional [p]" in cover_text(provisional)
    assert "Status: Final" in cover_text(final) and "[p]" not in final["A1"].value


def test_a_period_without_data_still_gives_a_complete_workbook(tmp_path, reference, marts):
    commissioner = reference.commissioners.set_index("code").loc["ACPP"].copy()
    commissioner["code"] = "ACPP"
    path = build_commissioner_workbook(tmp_path / "EMPTY_qi_programme_2021-01.xlsx", commissioner,
                                       {"dim_project": marts["dim_project"].iloc[:0]}, reference.organisations,
                                       WorkbookContext("2021-01", PRODUCED, AS_OF, provisional=False))
    PRODUCED_FILES.append(path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == SHEETS
    assert table_frame(book["Participation"]).iloc[0].tolist()[0] == "[x]"
    assert table_frame(book["Summary"]).set_index("Measure")["Value"]["Improvement projects"] == 0
    assert not [n for n in xml_parts(path) if n.startswith("xl/charts/")]


def _zip_entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def test_same_marts_give_byte_identical_workbooks(tmp_path, reference, marts, gallery):
    again = write_period_reports(tmp_path, marts, reference, period=PERIOD, provisional=True, produced_at=PRODUCED,
                                 data_as_of=AS_OF)
    for path in again:
        assert path.read_bytes() == gallery[path.stem].read_bytes(), path.name
    later = write_period_reports(tmp_path / "later", marts, reference, period=PERIOD, provisional=True,
                                 produced_at=datetime(2025, 7, 13, 9, 41, tzinfo=UTC), data_as_of=AS_OF)
    PRODUCED_FILES.extend(later)
    for path in later:
        before, after = _zip_entries(gallery[path.stem]), _zip_entries(path)
        assert before.keys() == after.keys()
        differ = {n for n in before if before[n] != after[n]}
        assert differ <= {"docProps/core.xml", "xl/sharedStrings.xml"}, differ
        clock = re.compile(rb"Produced at: [^<]*UTC|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        for name in differ:
            assert clock.sub(b"", before[name]) == clock.sub(b"", after[name]), name


def test_same_bytes_whatever_the_hash_seed(tmp_path, gallery):
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, %r)\n"
        "from tests.test_reports_commissioner import *\n"
        "write_period_reports(Path(sys.argv[1]), small_marts(), load_reference(ROOT / 'data' / 'reference'),"
        " period=PERIOD, provisional=True, produced_at=PRODUCED, data_as_of=AS_OF)\n" % str(ROOT)
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONHASHSEED": "12345"}, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for path in (tmp_path / PERIOD).glob("*.xlsx"):
        assert path.read_bytes() == gallery[path.stem].read_bytes(), path.name


def test_200_projects_stay_usable(big):
    path, seconds, data = big
    size_kb = path.stat().st_size / 1024
    print(f"\n200-project workbook: {size_kb:.0f} KB, built in {seconds:.2f} s")
    assert seconds < 20 and size_kb < 3000
    book = openpyxl.load_workbook(path)
    projects = table_frame(book["Projects"])
    assert len(projects) == 200
    drawing = [x for n, x in xml_parts(path).items() if re.fullmatch(r"xl/drawings/drawing\d+\.xml", n)]
    anchors = []
    for xml in drawing:
        found = re.findall(r"<xdr:from><xdr:col>(\d+)</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>(\d+)</xdr:row>", xml)
        if len(found) == 200:
            anchors = [(int(c), int(r)) for c, r in found]
    assert len(anchors) == 200, "200 run charts on one sheet"
    assert {c for c, _ in anchors} == {0, 9}, "two charts to a row"
    rows = sorted({r for _, r in anchors})
    assert len(rows) == 100 and len(set(np.diff(rows))) == 1, "an even grid"
    links = [c.hyperlink.location for c in book["Projects"]["U"] if c.hyperlink]
    assert len(set(links)) == 200
    charts = book["Run charts"]
    for (col, row), link in zip(sorted(anchors, key=lambda a: (a[1], a[0])), links, strict=True):
        assert link.split("!")[1] == f"{'A' if col == 0 else 'J'}{row}"  # the heading cell just above the chart
        assert charts.cell(row, col + 1).value.startswith(projects.iloc[links.index(link)]["Project ID"])


def test_workbooks_open_in_libreoffice(tmp_path, gallery, big, libreoffice):  # noqa: F811
    """Convert every workbook this module wrote, in one soffice run, and check each sheet came through."""
    assert len(PRODUCED_FILES) >= 8
    flat = _libreoffice.flat_copies(PRODUCED_FILES, tmp_path / "in")
    converted = _libreoffice.convert(flat, tmp_path / "out", executable=libreoffice)
    for source, result in converted.items():
        assert _libreoffice.sheet_names(result) == SHEETS, source.name
        assert _libreoffice.chart_count(result) == len(re.findall(r"xl/charts/chart\d+\.xml", " ".join(xml_parts(source))))
    big_result = converted[next(p for p in flat if p.name.endswith("BIG_qi_programme_2025-06.xlsx"))]
    assert _libreoffice.chart_count(big_result) == 201


def test_run_chart_axes_fit_the_lines_on_round_numbers():
    from reports.commissioner import axis_bounds

    assert axis_bounds([80, 92, 95, 73.9], percentage=True) == {"min": 70.0, "max": 100.0, "major_unit": 10.0}
    # a lower process limit below zero does not drag the axis under zero: values are never negative
    assert axis_bounds([5, 10, 3, -0.7, 11.7], percentage=False)["min"] == 0.0
    assert axis_bounds([], percentage=False) == {}


@pytest.mark.parametrize("data", [
    ["45231", "45262", "1.5", "-0.25", "1e+20", "nan", "inf"],  # numbers, as the worksheet gives them
    ["12.5", "", None, "7", "", None],  # blank cells (cached as 0) and absent ones (left out)
    ["3", "[c]", "not a number", "4.25"],  # text in a numeric series: cached as 0
    ["1", "a & b", "5"],  # text to escape: xlsxwriter's own code writes it
    ["_x0041_", "2"],  # an xlsxwriter escape sequence
    [7, 2.5, None, "8"],  # numbers from formula results
    [],
    None,
])
def test_the_quick_chart_cache_writes_xlsxwriters_xml(data):
    import io

    from xlsxwriter.chart_line import ChartLine

    from reports.layout import _LineChart

    def xml(chart) -> str:
        chart.fh = io.StringIO()
        chart._write_num_cache(data)
        return chart.fh.getvalue()

    assert xml(_LineChart()) == xml(ChartLine())


def test_workbooks_come_out_as_xlsxwriter_would_write_them(tmp_path):
    """A workbook of cells of every kind and charts, with the quick writers and with
    xlsxwriter's own: the same bytes."""
    import xlsxwriter.workbook
    from xlsxwriter.chart_column import ChartColumn
    from xlsxwriter.chart_line import ChartLine
    from xlsxwriter.worksheet import Worksheet

    from reports import layout
    from reports.layout import BLANK, Link, new_book, write_cell, write_link, write_table

    def build(quick: bool) -> bytes:
        saved = (xlsxwriter.workbook.ChartLine, xlsxwriter.workbook.ChartColumn, layout._QuickWorksheet._write_cell,
                 layout._QuickWorksheet.write_column)
        if not quick:
            xlsxwriter.workbook.ChartLine, xlsxwriter.workbook.ChartColumn = ChartLine, ChartColumn
            layout._QuickWorksheet._write_cell = Worksheet._write_cell
            layout._QuickWorksheet.write_column = (  # a cell at a time, through write_cell
                lambda sheet, fmt, first, col, values, formats: layout._write_column(sheet, fmt, first, col, values,
                                                                                     formats))
        try:
            book = new_book(title="Cells", subject="test", created=datetime(2025, 7, 1))
            sheet = book.add_sheet("Data")
            for r, (when, value) in enumerate([(datetime(2025, m, 1), v) for m, v in
                                               zip(range(1, 7), [3.5, None, 12, 1 / 3, None, 8], strict=True)]):
                sheet.write_datetime(r, 0, when, book.fmt.date)
                write_cell(sheet, book.fmt, r, 1, BLANK if value is None else value, book.fmt.decimal)
            sheet.write_string(6, 1, "[c]")
            sheet.write_number(7, 1, 1e-300)  # no format
            sheet.write_boolean(8, 1, True, book.fmt.integer)
            sheet.write_formula(9, 1, "=B1*2", book.fmt.decimal, 7)
            write_link(sheet, book.fmt, 10, 1, Link("'Data'!A1", "back to the top"))
            sheet.set_column(2, 2, 12, book.fmt.integer)  # cells without a format take their column's
            sheet.set_column(3, 3, 30)  # a width only
            sheet.set_row(12, None, book.fmt.decimal)  # or their row's
            for r in (11, 12):
                sheet.write_number(r, 2, 42)
                sheet.write_string(r, 3, "no format of its own")
                sheet.write_blank(r, 4, None, book.fmt.integer)
            frame = pd.DataFrame({"Text": ["a & b", "=not a formula", "café", "[x]"], "Number": [1.0, -2.5, 3, None],
                                  "Count": ["[c]", 12, 7, 0]})
            write_table(book.add_sheet("Table"), book.fmt, 2, frame, name="mixed",
                        formats={"Number": book.fmt.decimal, "Count": book.fmt.integer})
            # Every kind of value down a column (write_table's quick path, write_cell's for the rest),
            # texts and dates repeated (cached by the quick path), a format per row in one column.
            when = pd.Timestamp("2025-03-01")
            kinds = [1.5, float("nan"), float("inf"), -0.0, 7, True, np.int64(4), np.float64(2.25), "[c]", "[c]",
                     "=1+1", "@home", "plain", "plain", "tab\there\x07", "x" * 20_000, "é" * 9, BLANK, BLANK, None,
                     when, when, pd.Timestamp("2025-03-01 12:30", tz="Europe/London"), datetime(2024, 2, 29),
                     Link("'Data'!A1", "=link"), pd.NaT, "Yes [r]"]
            mixed = pd.DataFrame({"Any": pd.Series(kinds, dtype=object), "Again": pd.Series(kinds[::-1], dtype=object),
                                  "Per row": pd.Series(kinds, dtype=object)})
            per_row = [book.fmt.integer if i % 3 == 0 else None if i % 3 == 1 else book.fmt.date
                       for i in range(len(kinds))]
            write_table(book.add_sheet("Kinds"), book.fmt, 1, mixed, name="kinds",
                        formats={"Any": book.fmt.decimal, "Per row": per_row})
            for kind in ("line", "column"):
                chart = book.workbook.add_chart({"type": kind})
                chart.add_series({"categories": ["Data", 0, 0, 6, 0], "values": ["Data", 0, 1, 6, 1]})
                sheet.insert_chart(0, 4 if kind == "line" else 12, chart)
            return book.save(tmp_path / f"{quick}.xlsx").read_bytes()
        finally:
            (xlsxwriter.workbook.ChartLine, xlsxwriter.workbook.ChartColumn, layout._QuickWorksheet._write_cell,
             layout._QuickWorksheet.write_column) = saved

    assert build(quick=True) == build(quick=False)


def test_tables_that_overlap_are_refused_and_a_workbook_keeps_no_map_of_table_cells(tmp_path):
    from xlsxwriter.exceptions import OverlappingRange

    from reports.layout import new_book, write_table

    book = new_book(title="Tables", subject="test", created=datetime(2025, 7, 1))
    sheet = book.add_sheet("Data")
    frame = pd.DataFrame({"Organisation": [f"Org {i}" for i in range(200)], "Count": range(200)})
    assert write_table(sheet, book.fmt, 2, frame, name="first") == (3, 202)
    assert sheet.table_cells == {}  # (xlsxwriter's map would hold 402 entries until the save)
    for rows, cols in (((100, 300), (1, 3)), ((202, 210), (0, 0)), ((0, 2), (1, 1)), ("A1:C4", None)):
        with pytest.raises(OverlappingRange, match="overlaps previous table range 'A3:B203'"):
            sheet.add_table(rows) if isinstance(rows, str) else sheet.add_table(rows[0], cols[0], rows[1], cols[1])
    assert sheet.add_table(203, 0, 210, 1) == 0  # just below: allowed
    sheet.add_table(0, 2, 1, 3)  # beside the title rows: allowed too
    with pytest.raises(OverlappingRange):
        sheet.add_table(205, 1, 206, 4)  # into the second table
    path = book.save(tmp_path / "tables.xlsx")
    assert openpyxl.load_workbook(path)["Data"].tables.keys() == {"first", "Table2", "Table3"}


def test_a_saved_workbook_is_freed_at_once_not_left_to_the_cycle_collector(tmp_path):
    """xlsxwriter's workbook and sheets refer to each other: unless the house book lets go of
    them on saving, every cell waits for the cycle collector (a sixth of a second of a worker's
    time, and its memory meanwhile, for an all-organisation workbook)."""
    import gc

    from reports.layout import new_book, write_table

    def written() -> Path:
        book = new_book(title="Tables", subject="test", created=datetime(2025, 7, 1))
        sheet = book.add_sheet("Data")
        frame = pd.DataFrame({"Organisation": [f"Org {i}" for i in range(2000)], "Count": range(2000)})
        write_table(sheet, book.fmt, 2, frame, name="counts")
        chart = book.workbook.add_chart({"type": "line"})
        chart.add_series({"values": ["Data", 3, 1, 2002, 1], "categories": ["Data", 3, 0, 2002, 0]})
        book.add_sheet("Chart").insert_chart("A1", chart)
        return book.save(tmp_path / "tables.xlsx")

    gc.collect()
    gc.disable()
    try:
        path = written()
        left = gc.collect()
    finally:
        gc.enable()
    assert left < 100  # (without letting go: about 6,000, a cell object per cell and more)
    assert openpyxl.load_workbook(path)["Data"]["A2003"].value == "Org 1999"
