"""The synthetic demo generator: deterministic, honest about what it planted, realistic enough.

The generator is the fixture source for the back-tests and the benchmark, so these tests
check the properties those rely on: same arguments give the same bytes, the received
times are plausible and never in the future, the truth file points at real cells, and no
personal-looking data leaks into file names.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from transforms import datasets as ds
from transforms import demo

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"
END = "2026-10"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def _norm(text: object) -> str:
    s = str(text).lower().replace("organization", "organisation")
    return re.sub(r"[^a-z0-9%]+", " ", s).strip()


_HEADERS = {d.name: {_norm(s): c.name for c in d.columns for s in (c.name, *c.synonyms)} for d in ds.BY_NAME.values()}


def _canonical(dataset: str, header: object) -> str | None:
    """The canonical column a header names, through datasets.py synonyms."""
    return _HEADERS[dataset].get(_norm(header))


def _rows(path: Path, sheet: str) -> list[list[object]]:
    """A sheet (or a CSV) as a person sees it: list index = Excel row number - 1."""
    if path.suffix == ".csv":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252")
        return [list(r) for r in csv.reader(io.StringIO(text, newline=""))]
    wb = CalamineWorkbook.from_path(str(path))
    return wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def _same(cell: object, expected: object) -> bool:
    if expected is None:
        return cell in ("", None)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            return abs(float(str(cell).replace(",", "")) - float(expected)) < 1e-9
        except ValueError:
            return False
    return str(cell) == str(expected)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The default demo (36 months, 7 organisations, scale 1) written twice."""
    out = []
    for name in ("a", "b"):
        landing = tmp_path_factory.mktemp(name) / "landing"
        out.append((landing, demo.generate(landing, REFERENCE, end_period=END)))
    return out


@pytest.fixture(scope="module")
def run(runs):
    return runs[0]


# ---------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------

def test_same_arguments_give_the_same_files(runs):
    (a, ta), (b, tb) = runs
    names = _files(a)
    assert names == _files(b)
    assert ta.to_json() == tb.to_json()
    for name in names:
        pa, pb = a / name, b / name
        if name.endswith(".csv"):
            assert pa.read_bytes() == pb.read_bytes(), name
        elif name.endswith(".xlsx") and zipfile.is_zipfile(pa):
            wa, wb = CalamineWorkbook.from_path(str(pa)), CalamineWorkbook.from_path(str(pb))
            assert wa.sheet_names == wb.sheet_names, name
            for sheet in wa.sheet_names:
                assert _rows(pa, sheet) == _rows(pb, sheet), (name, sheet)
            # No clock inside the workbook either: the bytes are identical.
            assert pa.read_bytes() == pb.read_bytes(), name
        assert pa.stat().st_mtime == pb.stat().st_mtime, name


def test_a_different_seed_gives_different_people(tmp_path):
    one = demo.generate(tmp_path / "one", REFERENCE, months=3, end_period=END, orgs=["RPB"])
    two = demo.generate(tmp_path / "two", REFERENCE, months=3, end_period=END, orgs=["RPB"], seed=7)
    name = f"RPB/{END}/RPB_enrolment_{END}.csv"
    assert (tmp_path / "one" / name).read_bytes() != (tmp_path / "two" / name).read_bytes()
    assert one.periods == two.periods


# ---------------------------------------------------------------------------------------
# received dates
# ---------------------------------------------------------------------------------------

def test_mtimes_are_received_dates_and_never_in_the_future(run):
    landing, truth = run
    now = datetime.now(timezone.utc).timestamp()
    for name in _files(landing):
        org, period, _ = name.split("/", 2)
        y, m = map(int, period.split("-"))
        due_month = (y * 12 + m) % 12 + 1, (y * 12 + m) // 12  # the month after the period
        mtime = (landing / name).stat().st_mtime
        assert mtime < now, name
        got = datetime.fromtimestamp(mtime, timezone.utc)
        assert (got.month, got.year) == due_month, name
        assert got.weekday() < 5 and 6 <= got.hour < 18, name
        status = truth.submissions[org][period]
        if status == "on_time":
            assert 1 <= got.day <= 9, name
        elif status == "late":
            assert got.day > 10, name
        else:  # a month with nothing to report may still bring an unreadable file
            assert name in truth.rejected_files


def test_some_sends_are_late_and_some_months_are_missed(run):
    _, truth = run
    statuses = [s for by_period in truth.submissions.values() for s in by_period.values()]
    assert statuses.count("on_time") > 0.8 * len(statuses)
    assert 0 < statuses.count("late") < 0.15 * len(statuses)
    assert 0 < statuses.count("not_sent") < 0.05 * len(statuses)


def test_end_period_must_be_in_the_past(tmp_path):
    now = datetime.now(timezone.utc)
    with pytest.raises(ValueError, match="before the current month"):
        demo.generate(tmp_path, REFERENCE, end_period=f"{now.year:04d}-{now.month:02d}")


# ---------------------------------------------------------------------------------------
# what the truth says
# ---------------------------------------------------------------------------------------

def test_participation_grows_year_on_year_and_the_lead_trust_is_largest(run):
    _, truth = run
    years = list(truth.participants_by_year.values())
    assert len(years) >= 3
    assert all(a < b for a, b in zip(years, years[1:])), truth.participants_by_year
    assert max(truth.participants_by_org, key=truth.participants_by_org.get) == "RNL"
    assert sum(truth.participants_by_org.values()) == truth.participants
    assert truth.periods[0] == "2023-11" and truth.periods[-1] == END and len(truth.periods) == 36


def test_scale_scales_participants(tmp_path):
    small = demo.generate(tmp_path / "s", REFERENCE, months=12, end_period=END, scale=1.0)
    big = demo.generate(tmp_path / "b", REFERENCE, months=12, end_period=END, scale=3.0)
    assert 2.4 < big.participants / small.participants < 3.6
    assert 2.0 < big.projects / small.projects < 4.0


def test_planted_rows_are_where_the_truth_says(run):
    landing, truth = run
    assert {p["problem"] for p in truth.planted} == {p for p, _ in demo._PROBLEMS}
    for dataset, n in truth.bad_rows.items():
        assert n == sum(p["dataset"] == dataset for p in truth.planted)
    for p in truth.planted:
        rows = _rows(landing / p["file"], p["sheet"])
        header = rows[p["header_row"] - 1]
        col = [str(h) for h in header].index(p["source_column"])
        assert _canonical(p["dataset"], header[col]) == p["column"], p
        assert f"{demo._col_letter(col)}{p['row']}" == p["cell"]
        cell = rows[p["row"] - 1][col]
        assert _same(cell, p["value"]), (p, cell)
        if p["problem"] == "duplicate_participant":
            assert rows[p["first_copy_row"] - 1] == rows[p["row"] - 1]
            assert p["first_copy_row"] < p["row"]


def test_rejected_files_cannot_be_read_as_a_return(run):
    landing, truth = run
    assert 1 <= len(truth.rejected_files) <= 2
    for name in truth.rejected_files:
        path = landing / name
        assert path.suffix == ".xlsx"
        if zipfile.is_zipfile(path):
            wb = CalamineWorkbook.from_path(str(path))
            assert wb.sheet_names == ["Instructions"]
        else:
            assert path.read_bytes()[:2] != b"PK"


def test_truth_round_trips_as_json(run, tmp_path):
    _, truth = run
    demo.write_truth(truth, tmp_path / "truth.json")
    loaded = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert loaded["participants"] == truth.participants
    assert loaded["files"] == len(_files(run[0]))
    assert loaded["measure_points"] == truth.measure_points > truth.projects > 0


# ---------------------------------------------------------------------------------------
# no personal data where it does not belong
# ---------------------------------------------------------------------------------------

def _staff_ids(landing: Path) -> set[str]:
    ids: set[str] = set()
    for name in _files(landing):
        path = landing / name
        if not (name.endswith(".csv") or zipfile.is_zipfile(path)):
            continue
        sheets = [""] if name.endswith(".csv") else CalamineWorkbook.from_path(str(path)).sheet_names
        for sheet in sheets:
            rows = _rows(path, sheet)
            for i, row in enumerate(rows[:30]):
                cols = [j for j, h in enumerate(row) if _canonical(ds.ENROLMENT_RETURN, h) == "staff_id"]
                if cols:
                    ids |= {str(r[cols[0]]).strip() for r in rows[i + 1:] if len(r) > cols[0] and r[cols[0]] != ""}
                    break
    return ids


def test_no_personal_data_in_file_names(run):
    landing, _ = run
    names = {n.lower() for n in (*demo.GIVEN_NAMES, *demo.SURNAMES)}
    staff_ids = _staff_ids(landing)
    assert len(staff_ids) > 400
    for name in _files(landing):
        assert "@" not in name
        tokens = set(re.split(r"[^\w']+", name.lower()))
        assert not tokens & names, name
        assert not {t.upper() for t in tokens} & {s.upper() for s in staff_ids}, name


def test_e_mails_are_at_reserved_example_domains(run):
    landing, _ = run
    text = (landing / f"RPB/{END}/RPB_enrolment_{END}.csv").read_text(encoding="utf-8-sig")
    emails = re.findall(r"[\w.+-]+@[\w.-]+", text)
    assert emails and all(e.endswith(("@example.nhs.uk", "@example.org")) for e in emails)


# ---------------------------------------------------------------------------------------
# realism: the formats the pipeline must tolerate are really there
# ---------------------------------------------------------------------------------------

def test_headers_and_values_are_ones_the_pipeline_knows():
    for style in demo.STYLES.values():
        for dataset, cols in ((ds.ENROLMENT_RETURN, style.enrol_cols), (ds.PROJECT_REGISTER, style.reg_cols),
                              (ds.MEASURE_DATA, style.meas_cols or ())):
            for canon, header in cols:
                assert _canonical(dataset, header) == canon, (style.name, header)
    shown = {
        "profession": [v for vs in demo.PROFESSION_SHOWN.values() for v in vs],
        "status": list(demo.STATUS_SHOWN.values()),
        "project_status": list(demo.PROJECT_STATUS_SHOWN.values()),
        "measure_type": list(demo.MEASURE_TYPE_SHOWN.values()),
        "improvement_direction": list(demo.DIRECTION_SHOWN.values()),
    }
    for fld, values in shown.items():
        known = {_norm(v) for v in ds.CATEGORIES[fld]} | {_norm(k) for k in ds.VALUE_SYNONYMS[fld]}
        assert all(_norm(v) in known for v in values), fld


def test_messy_formats_are_present(run):
    landing, _ = run
    csvs = [landing / n for n in _files(landing) if n.endswith(".csv")]
    assert any(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in csvs)            # UTF-8 with BOM
    cp1252 = [p for p in csvs if p.parent.parent.name == "VFC"]
    assert any(b"\xa3" in p.read_bytes() for p in cp1252)                            # '£' in Windows-1252
    with pytest.raises(UnicodeDecodeError):
        b"".join(p.read_bytes() for p in cp1252).decode("utf-8")
    lead = landing / f"RNL/{END}/RNL QI monthly return October 2026.xlsx"
    wb = CalamineWorkbook.from_path(str(lead))
    assert wb.sheet_names[0] == "Instructions" and len(wb.sheet_names) == 5
    assert any(s.name == "Lists" and "Hidden" in str(s.visible) for s in wb.sheets_metadata)
    wide = _rows(landing / f"RPA/{END}/RPA QI projects Oct-26.xlsx", "Measures")
    assert wide[2][-1] == "Average" and wide[2][-2] == "Oct-26"
    rpd = _rows(landing / f"RPD/{END}/RPD_QI_enrolment_Oct2026.xlsx", "Enrolment")
    assert any(isinstance(r[12], float) and 40_000 < r[12] < 50_000 for r in rpd[1:])  # Excel serial dates
    irc = _rows(landing / f"IRC/{END}/IRC QI enrolment OCT 2026.xlsx", "Participants")
    assert irc[-3][0] == "Total" and irc[-1][0].startswith("Notes")
    assert any(str(r[0]) != str(r[0]).strip() for r in irc[1:-3])                  # codes with spaces
    measures = b"".join(p.read_bytes() for p in csvs if "qi_measures" in p.name)
    assert re.search(rb'"\d,\d{3}"', measures) and re.search(rb",\d+\.\d%", measures)  # "1,234" and 85.3%


def test_revised_values_are_resent(run):
    """A project's return re-sends its series and sometimes changes an earlier value."""
    landing, _ = run
    seen: dict[tuple[str, str, str], set[str]] = {}
    for name in _files(landing):
        if "qi_measures" in name:
            for r in _rows(landing / name, "")[1:]:
                if len(r) == 6:
                    seen.setdefault((r[0], r[1], r[2]), set()).add(tuple(r[3:]))
    assert any(len(v) > 1 for v in seen.values())
    assert sum(len(v) == 1 for v in seen.values()) > 0.9 * len(seen)


# ---------------------------------------------------------------------------------------
# ensure_demo
# ---------------------------------------------------------------------------------------

def test_ensure_demo_fills_an_empty_landing_once(tmp_path):
    truth = demo.ensure_demo(tmp_path, months=2)
    assert truth is not None and truth.files > 0
    assert (tmp_path / "reference" / "cohorts.csv").read_bytes() == (demo.SHIPPED_REFERENCE / "cohorts.csv").read_bytes()
    now = date.today()
    assert truth.periods[-1] == f"{(now.year * 12 + now.month - 2) // 12:04d}-{(now.month - 2) % 12 + 1:02d}"
    assert demo.ensure_demo(tmp_path, months=2) is None
