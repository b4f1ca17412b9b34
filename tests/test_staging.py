"""Staging: real files in, typed canonical frames and cell issues out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import workbook
from transforms.read import SheetGrid
from transforms.staging import NO_DATASET, StagedFile, stage_file, staged_columns
from transforms.tables import default_column_synonyms, find_table

SHA = "ab" * 32
ENROLMENT_HEADER = ["Organization Code", "Staff Number", "First Name", "Surname", "Email", "Profession",
                    "Service Area", "Cohort", "Enrolment Date", "Status", "Status Date", "Mentor", "Shoe Size"]


def stage(path: Path) -> StagedFile:
    return stage_file(path, sha256=SHA, column_synonyms=default_column_synonyms(), value_synonyms=None)


def enrolment_row(staff: object, date: object, **overrides: object) -> list[object]:
    row = dict(zip(ENROLMENT_HEADER, ["rxx", staff, "Ann", "Smith", "ann@example.org", "Nurse", "Acute medicine",
                                      "c2025a", date, "Active", None, "Dr Mentor", 9]))
    row.update(overrides)
    return list(row.values())


def day(d: dt.date) -> np.datetime64:
    return np.datetime64(d, "ms")


APRIL_3 = dt.date(2025, 4, 3)


class TestEnrolmentReturn:
    @pytest.fixture
    def staged(self, tmp_path) -> StagedFile:
        rows = [
            ["QI programme enrolment return"],
            ["Organisation: RXX. Period: April 2025"],
            [],
            ENROLMENT_HEADER,
            enrolment_row(" s001 ", dt.datetime(2025, 4, 3)),            # row 5: real Excel date
            enrolment_row(1234.0, 45750),                                 # row 6: serial number
            enrolment_row("S003", "2025-04-03"),                          # row 7: ISO text
            enrolment_row("S004", "03/04/2025"),                          # row 8: UK text
            enrolment_row("S005", "3 Apr 2025"),                          # row 9
            enrolment_row("S006", "03-Apr-25"),                           # row 10
            enrolment_row("S007", "31/02/2025"),                          # row 11: impossible
            [],
            enrolment_row("S008", "3/4/25", Profession="Nurze", Status="complete", **{"Status Date": "30/04/2025"}),
            ["Notes: figures are provisional"],
            ["Total", 8],
        ]
        instructions = [["How to fill in this return"], [], ["One row per participant per cohort."],
                        ["Column", "What to enter"], ["Staff Number", "Your payroll number"]]
        path = workbook(tmp_path / "return.xlsx", {"Instructions": instructions, "Return": rows,
                                                   "Old": [ENROLMENT_HEADER, enrolment_row("X", "x")]},
                        hidden=("Old",))
        return stage(path)

    def test_loads_with_skipped_sheets_and_unknown_columns(self, staged):
        assert staged.rejection is None
        assert staged.skipped_sheets == [("Instructions", "no recognisable dataset (instructions or lists?)"),
                                         ("Old", "hidden sheet")]
        assert staged.unknown_columns == [("Return", "enrolment_return", "Shoe Size")]
        assert list(staged.tables) == ["enrolment_return"]

    def test_columns_types_and_no_personal_data(self, staged):
        frame = staged.tables["enrolment_return"]
        assert list(frame.columns) == staged_columns("enrolment_return")
        for personal in ("first_name", "surname", "email", "mentor"):
            assert personal not in frame.columns
        assert "Ann" not in frame.to_string() and "ann@example.org" not in frame.to_string()
        assert frame["enrolment_date"].dtype == "datetime64[ms]"
        assert frame["source_row"].dtype == "int64"
        assert pd.api.types.is_string_dtype(frame["staff_id"])

    def test_row_numbers_match_excel(self, staged):
        frame = staged.tables["enrolment_return"]
        assert frame["source_row"].tolist() == [5, 6, 7, 8, 9, 10, 11, 13]
        assert set(frame["source_sheet"]) == {"Return"} and set(frame["source_sha256"]) == {SHA}

    def test_every_date_form(self, staged):
        dates = staged.tables["enrolment_return"]["enrolment_date"].tolist()
        assert dates[:6] == [pd.Timestamp(APRIL_3)] * 6
        assert pd.isna(dates[6])
        assert dates[7] == pd.Timestamp(APRIL_3)

    def test_codes_and_categories(self, staged):
        frame = staged.tables["enrolment_return"]
        assert frame["staff_id"].tolist()[:2] == ["S001", "1234"]
        assert set(frame["organisation_code"]) == {"RXX"}
        assert set(frame["cohort_code"]) == {"C2025A"}
        assert frame["profession"].tolist()[0] == "Nursing"
        assert pd.isna(frame["profession"].iloc[-1])
        assert frame["status"].iloc[-1] == "Completed"
        assert frame["status_date"].iloc[-1] == pd.Timestamp(2025, 4, 30)

    def test_issues(self, staged):
        assert [(i["row"], i["column"], i["rule"], i["value"]) for i in staged.issues] == [
            (11, "enrolment_date", "invalid_date", "31/02/2025"),
            (13, "profession", "not_in_list", "Nurze"),
        ]
        first = staged.issues[0]
        assert set(first) == {"dataset", "sheet", "row", "column", "source_column", "rule", "severity", "value",
                              "message"}
        assert first["dataset"] == "enrolment_return" and first["sheet"] == "Return"
        assert first["source_column"] == "Enrolment Date" and first["severity"] == "error"
        assert first["message"] == "'31/02/2025' in Enrolment Date is not a real date. Use a date such as 03/04/2025."
        assert "Nursing" in staged.issues[1]["message"]


class TestProjectRegister:
    def test_numbers_percent_formats_and_categories(self, tmp_path):
        header = ["Project ID", "Organisation Code", "Cohort Code", "Project Title", "Service", "Primary Measure",
                  "Type of measure", "Direction of improvement", "Target", "Intervention Date", "Project Status"]
        rows = [
            header,
            ["set-2025-014", "RXX", "C2025A", "Wristbands", "Acute", "% wearing wristband", "%", "Higher is better",
             "85%", "03/04/2025", "live"],
            ["SET-2025-015", "RXX", "C2025A", "  AKI <b>fast</b>\n track ", "Acute", "Days to AKI diagnosis", "time", "down",
             "1,234", None, "Active"],
            ["SET-2025-016", "RXX", "C2025A", "Views", "Children", "% views recorded", "percentage", "increase",
             0.85, None, "Sideways"],
            ["SET-2025-017", "RXX", "C2025A", "Falls", "Older people", "Falls", "count", "decrease", "lots", None,
             "Active"],
        ]
        path = workbook(tmp_path / "register.xlsx", {"Register": rows}, formats={("Register", "I4"): "0%"})
        staged = stage(path)
        frame = staged.tables["project_register"]
        assert frame["project_id"].tolist()[0] == "SET-2025-014"
        assert frame["target"].tolist()[:3] == [85.0, 1234.0, 85.0]
        assert np.isnan(frame["target"].iloc[3])
        assert frame["measure_type"].tolist() == ["percentage", "time", "percentage", "count"]
        assert frame["improvement_direction"].tolist() == ["increase", "decrease", "increase", "decrease"]
        assert frame["intervention_date"].iloc[0] == pd.Timestamp(APRIL_3)
        assert frame["title"].iloc[1] == "AKI <b>fast</b> track"
        assert [(i["row"], i["column"], i["rule"]) for i in staged.issues] == [
            (4, "status", "not_in_list"), (5, "target", "invalid_number"),
        ]
        assert staged.issues[0]["source_column"] == "Project Status"


class TestMeasureData:
    def test_wide_form_is_melted(self, tmp_path):
        rows = [
            ["Measure data - SET-2025-014"],
            [],
            ["Project ID", "Measure", "Apr-25", dt.datetime(2025, 5, 1), "Jun 2025", 45839, "Average", "Target"],
            ["set-2025-014", "% wristband", 0.85, "90%", "abc", None, 0.8, 95],
            ["SET-2025-014", "Audits", "1,234", None, "-", 12, 600, None],
            [],
            ["Source: ward audit"],
            ["Total", None, 2, 2, 2, 2],
        ]
        staged = stage(workbook(tmp_path / "measures.xlsx", {"Data": rows}, formats={("Data", "C4"): "0%"}))
        assert staged.rejection is None
        assert staged.unknown_columns == [("Data", "measure_data", "Average"), ("Data", "measure_data", "Target")]
        frame = staged.tables["measure_data"]
        assert list(frame.columns) == staged_columns("measure_data")
        got = [(r.project_id, r.measure_name, r.period.date(), r.value, r.source_row, r.source_column)
               for r in frame.itertuples()]
        apr, may, jun, jul = (dt.date(2025, m, 1) for m in (4, 5, 6, 7))
        assert got[:2] == [("SET-2025-014", "% wristband", apr, 85.0, 4, "Apr-25"),
                           ("SET-2025-014", "% wristband", may, 90.0, 4, "2025-05-01")]
        assert got[2][:3] == ("SET-2025-014", "% wristband", jun) and np.isnan(got[2][3])
        assert got[3:] == [("SET-2025-014", "Audits", apr, 1234.0, 5, "Apr-25"),
                           ("SET-2025-014", "Audits", jul, 12.0, 5, "45839")]
        assert frame["numerator"].isna().all() and frame["denominator"].isna().all()
        assert [(i["row"], i["column"], i["source_column"], i["rule"]) for i in staged.issues] == [
            (4, "value", "Jun 2025", "invalid_number")
        ]
        assert staged.issues[0]["message"].startswith("'abc' in Jun 2025 is not a number.")

    def test_long_form(self, tmp_path):
        rows = [
            ["project_id", "measure_name", "period", "numerator", "denominator", "value"],
            ["SET-2025-014", "% wristband", "Apr-24", 17, 20, 0.85],
            ["SET-2025-014", "% wristband", dt.datetime(2024, 5, 1), "1,234", "1,300", "85%"],
            ["SET-2025-014", "% wristband", "Spring", None, None, 80],
        ]
        staged = stage(workbook(tmp_path / "long.xlsx", {"Long": rows}, formats={("Long", "F2"): "0%"}))
        frame = staged.tables["measure_data"]
        assert frame["period"].tolist()[:2] == [pd.Timestamp(2024, 4, 1), pd.Timestamp(2024, 5, 1)]
        assert frame["value"].tolist() == [85.0, 85.0, 80.0]
        assert frame["numerator"].tolist()[:2] == [17.0, 1234.0]
        assert frame["source_column"].isna().all()
        assert [(i["row"], i["rule"], i["source_column"]) for i in staged.issues] == [(4, "invalid_period", "period")]

    def test_wide_header_forms(self):
        header = ["project_id", "measure_name", dt.date(2025, 4, 1), 45778, "Jun-25", "July 2025", "2025-08",
                  "2025-09-01", "01/10/2025", "Average", "Total", "Target", 12]
        grid = SheetGrid(sheet="S", visible=True, rows=[header, ["P1", "M"] + [1] * 11])
        table = find_table(grid, default_column_synonyms())
        assert table is not None and table.dataset == "measure_data"
        assert list(table.wide_periods.values()) == [dt.date(2025, m, 1) for m in range(4, 11)]
        assert table.unknown_columns == ["Average", "Total", "Target", "12"]
        assert table.missing_required == []


class TestCsv:
    def test_bom_windows_1252_and_quoted_line_breaks(self, tmp_path):
        header = "Org Code,Payroll No,Profession,Service Area,Cohort Code,Enrolment Date,Status,Withdrawal Reason"
        body = [
            "Enrolment return",
            "",
            header,
            'RXX,S1,Nursing,Café services,C2025A,03/04/2025,Withdrawn,"Moved to\nanother trust"',
            "RXX,S2,Nursing,Acute £ team,C2025A,31/02/2025,Active,",
        ]
        path = tmp_path / "return.csv"
        path.write_bytes("\r\n".join(body).encode("cp1252"))
        staged = stage(path)
        frame = staged.tables["enrolment_return"]
        assert frame["source_row"].tolist() == [4, 5]
        assert frame["source_sheet"].tolist() == ["", ""]
        assert frame["service_area"].tolist() == ["Café services", "Acute £ team"]
        assert frame["withdrawal_reason"].iloc[0] == "Moved to another trust"
        assert [(i["sheet"], i["row"], i["column"]) for i in staged.issues] == [("", 5, "enrolment_date")]

    def test_utf8_bom(self, tmp_path):
        path = tmp_path / "register.csv"
        path.write_bytes(
            "\ufeffproject_id,measure_name,period,value\nP1,Views,2025-04,50\n".encode("utf-8")
        )
        frame = stage(path).tables["measure_data"]
        assert frame["period"].tolist() == [pd.Timestamp(2025, 4, 1)] and frame["value"].tolist() == [50.0]


class TestFiles:
    def test_several_datasets_and_two_sheets_of_one(self, tmp_path):
        measures = [["project_id", "measure_name", "period", "value"]]
        sheets = {
            "Jan": measures + [["P1", "M", "2025-01", 1]],
            "Register": [
                ["project_id", "organisation_code", "cohort_code", "title", "service_area", "measure_name",
                 "measure_type", "improvement_direction", "status"],
                ["P1", "RXX", "C1", "T", "Acute", "M", "count", "up", "Active"],
            ],
            "Feb": measures + [["P1", "M", "2025-02", 2]],
        }
        staged = stage(workbook(tmp_path / "multi.xlsx", sheets))
        assert staged.rejection is None
        frame = staged.tables["measure_data"]
        assert frame["source_sheet"].tolist() == ["Jan", "Feb"] and frame.index.tolist() == [0, 1]
        assert staged.tables["project_register"]["improvement_direction"].tolist() == ["increase"]

    def test_missing_required_column_rejects_the_file(self, tmp_path):
        rows = [["Org Code", "Staff ID", "Cohort", "Enrolment Date"], ["RXX", "S1", "C1", "01/04/2025"]]
        staged = stage(workbook(tmp_path / "r.xlsx", {"Staff": rows}))
        assert staged.tables == {}
        assert staged.rejection == (
            "Sheet 'Staff' looks like an enrolment return but has no Profession, Service Area or Status column "
            "(add them, or rename yours to the names in the template)"
        )

    def test_no_recognisable_dataset(self, tmp_path):
        staged = stage(workbook(tmp_path / "r.xlsx", {"Lists": [["Profession", "Status"], ["Nursing", "Active"]],
                                                       "Hidden": [["project_id", "measure_name", "period"]],
                                                       "Sheet2": []},
                                hidden=("Hidden",)))
        assert staged.rejection == NO_DATASET and staged.tables == {}
        assert staged.skipped_sheets == [("Lists", "no recognisable dataset (instructions or lists?)"),
                                         ("Hidden", "hidden sheet"), ("Sheet2", "empty sheet")]

    def test_unreadable_file_is_a_rejection(self, tmp_path):
        (tmp_path / "r.xlsx").write_bytes(b"%PDF-1.4")
        staged = stage(tmp_path / "r.xlsx")
        assert staged.tables == {} and "PDF" in staged.rejection

    def test_header_only_gives_an_empty_typed_frame(self, tmp_path):
        staged = stage(workbook(tmp_path / "r.xlsx", {"S": [["project_id", "measure_name", "period", "value"]]}))
        frame = staged.tables["measure_data"]
        assert len(frame) == 0 and frame["period"].dtype == "datetime64[ms]" and frame["value"].dtype == "float64"


_WORDS = ["project_id", "measure_name", "period", "value", "Staff ID", "Cohort", "Enrolment Date", "Apr-25",
          "Total", "Notes: x", "", " ", "31/02/2025", "85%", "1,234", "SW", "n/a", "Average", "title", "status"]
_CELLS = st.one_of(st.sampled_from(_WORDS), st.none(), st.integers(-10, 80000), st.floats(allow_nan=False),
                   st.booleans(), st.dates(), st.datetimes(), st.text(max_size=8))


class TestNeverRaises:
    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.lists(_CELLS, max_size=8), max_size=8))
    def test_find_table_on_any_grid(self, rows):
        table = find_table(SheetGrid(sheet="S", visible=True, rows=rows), default_column_synonyms())
        if table is not None:
            assert all(1 <= row <= len(rows) for row, _ in table.rows)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.lists(st.sampled_from(_WORDS), max_size=7), max_size=7))
    def test_stage_file_on_any_csv(self, tmp_path, rows):
        path = tmp_path / "fuzz.csv"
        path.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8")
        staged = stage(path)
        assert (staged.rejection is None) == bool(staged.tables)


class TestFindTable:
    synonyms = default_column_synonyms()

    def grid(self, rows: list[list[object]]) -> SheetGrid:
        return SheetGrid(sheet="S", visible=True, rows=rows)

    def test_row_rules(self):
        rows = [
            ["Project register"],
            ["project_id", "measure_name", "period", "value"],
            ["P1", "M", "2025-04", 1],
            ["Total", None, None, 1],            # not trailing: data follows
            ["P2"],                              # a lone code: a (mostly empty) data row
            [None, " ", None],
            ["* provisional"],
            ["Source: audit"],
            ["Figures are provisional"],
            ["P3", "M", "2025-04", 3],
            ["Grand total", None, None, 4],
            [],
            ["TOTAL"],
        ]
        table = find_table(self.grid(rows), self.synonyms)
        assert table is not None and table.header_row == 2
        assert [row for row, _ in table.rows] == [3, 4, 5, 10]

    def test_exact_name_beats_a_synonym_and_bracketed_hints(self):
        header = ["Organisation", "Organisation Code", "Staff ID", "Cohort", "Enrolment date (dd/mm/yyyy)", "", None]
        table = find_table(self.grid([header]), self.synonyms)
        assert table is not None
        assert table.columns["organisation_code"] == 1 and table.columns["enrolment_date"] == 4
        assert table.source_columns["enrolment_date"] == "Enrolment date (dd/mm/yyyy)"
        assert table.unknown_columns == ["Organisation"]
        assert table.missing_required == ["profession", "service_area", "status"]

    def test_best_dataset_wins(self):
        register = ["project_id", "organisation_code", "cohort_code", "title", "service_area", "measure_name",
                    "measure_type", "improvement_direction", "status", "period"]
        table = find_table(self.grid([register]), self.synonyms)
        assert table is not None and table.dataset == "project_register"
        assert table.unknown_columns == ["period"]

    def test_header_beyond_row_30_is_not_found(self):
        rows = [[f"line {i}"] for i in range(30)] + [["project_id", "measure_name", "period"]]
        assert find_table(self.grid(rows), self.synonyms) is None
        assert find_table(self.grid(rows[1:]), self.synonyms).header_row == 30


def test_only_a_bare_total_row_is_left_out():
    """'Total falls' is a measure and 'Totally ...' a title: data. 'Total' alone at the end is not."""
    header = ["measure_name", "project_id", "period", "value"]
    rows = [header,
            ["Total falls", "RPA-2025-001", "2025-04-01", 3],
            ["Totally safe discharges", "RPA-2025-002", "2025-04-01", 5],
            ["Total:", None, None, 8]]
    table = find_table(SheetGrid(sheet="S", visible=True, rows=rows), default_column_synonyms())
    assert [r for r, _ in table.rows] == [2, 3]
