"""Cell normalisers: headers, dates, periods, numbers, codes, text, categories."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import datasets
from transforms.normalise import (
    INVALID,
    default_value_synonyms,
    match_category,
    normalise_code,
    normalise_header,
    normalise_text,
    parse_date,
    parse_number,
    parse_period,
)
from transforms.tables import default_column_synonyms

APRIL_3 = dt.date(2025, 4, 3)


class TestNormaliseHeader:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Organization Code", "organisation code"),
            ("  ORGANISATION_CODE ", "organisation code"),
            ("Staff  No.", "staff no"),
            ("E-mail", "e mail"),
            ("Admin & Clerical", "admin and clerical"),
            ("Enrolment\nDate*", "enrolment date"),
            (None, ""),
            (2025, "2025"),
        ],
    )
    def test_normalises(self, text, expected):
        assert normalise_header(text) == expected

    def test_every_canonical_name_matches_itself(self):
        synonyms = default_column_synonyms()
        for ds in datasets.BY_NAME.values():
            for col in ds.columns:
                assert synonyms[ds.name][normalise_header(col.name)] == col.name

    def test_no_builtin_synonym_points_at_two_columns(self):
        for ds in datasets.BY_NAME.values():
            seen: dict[str, str] = {}
            for col in ds.columns:
                for key in {normalise_header(s) for s in (col.name, *col.synonyms)}:
                    assert seen.setdefault(key, col.name) == col.name, (ds.name, key)


class TestParseDate:
    @pytest.mark.parametrize(
        "value",
        [
            dt.datetime(2025, 4, 3, 0, 0),
            dt.datetime(2025, 4, 3, 14, 30),
            APRIL_3,
            45750,
            45750.0,
            45750.75,
            "2025-04-03",
            "2025-04-03T00:00:00",
            "2025-04-03 00:00:00",
            "03/04/2025",
            "3/4/2025",
            "3/4/25",
            "03-04-2025",
            "03.04.2025",
            "3 Apr 2025",
            "3 April 2025",
            "03-Apr-25",
            "03-Apr-2025",
            "3rd April 2025",
            "  03/04/2025  ",
            "03/04/2025 00:00",
        ],
    )
    def test_reads_3_april_2025(self, value):
        assert parse_date(value) == APRIL_3

    @pytest.mark.parametrize("value", [None, "", "   ", "n/a", "N/A", "-"])
    def test_blank_is_none(self, value):
        assert parse_date(value) is None

    @pytest.mark.parametrize(
        "value",
        ["31/02/2025", "29/02/2025", "2025-02-30", "32/01/2025", "13/13/2025", "next week", "45750",
         "2025-04", "Apr-25", True, 0, -5, 2958466, float("nan"), dt.time(10, 30), 60],
    )
    def test_invalid(self, value):
        assert parse_date(value) is INVALID

    def test_day_first_always(self):
        assert parse_date("01/12/2025") == dt.date(2025, 12, 1)
        assert parse_date("12/01/2025") == dt.date(2025, 1, 12)

    def test_two_digit_years_follow_excel(self):
        assert parse_date("1/1/29") == dt.date(2029, 1, 1)
        assert parse_date("1/1/30") == dt.date(1930, 1, 1)

    def test_serials_around_excels_phantom_leap_day(self):
        assert parse_date(1) == dt.date(1900, 1, 1)
        assert parse_date(59) == dt.date(1900, 2, 28)
        assert parse_date(61) == dt.date(1900, 3, 1)
        assert parse_date(60) is INVALID

    def test_1904_date_system(self):
        assert parse_date(44288, datemode_1904=True) == APRIL_3

    def test_invalid_is_falsy_and_a_singleton(self):
        assert not INVALID
        assert repr(INVALID) == "INVALID"
        assert type(INVALID)() is INVALID

    @given(st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)))
    def test_round_trips_uk_iso_and_serial(self, d):
        assert parse_date(d.strftime("%d/%m/%Y")) == d
        assert parse_date(d.isoformat()) == d
        assert parse_date(d.strftime("%d %b %Y")) == d
        assert parse_date((d - dt.date(1899, 12, 30)).days) == d

    @settings(max_examples=300)
    @given(st.one_of(st.text(), st.floats(), st.integers(), st.booleans(), st.none()))
    def test_never_raises(self, value):
        result = parse_date(value)
        assert result is None or result is INVALID or isinstance(result, dt.date)


class TestParsePeriod:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("Apr-24", dt.date(2024, 4, 1)),
            ("Apr 2024", dt.date(2024, 4, 1)),
            ("April 2024", dt.date(2024, 4, 1)),
            ("april-2024", dt.date(2024, 4, 1)),
            ("Sept 2024", dt.date(2024, 9, 1)),
            ("2024-04", dt.date(2024, 4, 1)),
            ("04/2024", dt.date(2024, 4, 1)),
            ("2024-04-08", dt.date(2024, 4, 8)),
            ("08/04/2024", dt.date(2024, 4, 8)),
            (dt.datetime(2024, 4, 1), dt.date(2024, 4, 1)),
            (45383, dt.date(2024, 4, 1)),
        ],
    )
    def test_reads(self, value, expected):
        assert parse_period(value) == expected

    @pytest.mark.parametrize("value", ["Average", "Total", "Target", "Apr", "2024-13", "Foo-24"])
    def test_invalid(self, value):
        assert parse_period(value) is INVALID

    def test_blank(self):
        assert parse_period(" ") is None
        assert parse_period(None) is None


class TestParseNumber:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (85, 85.0),
            (85.5, 85.5),
            ("1,234", 1234.0),
            ("1,234,567.5", 1234567.5),
            (" 85 ", 85.0),
            ("85%", 85.0),
            ("85 %", 85.0),
            ("£1,200", 1200.0),
            ("-£5", -5.0),
            ("−3", -3.0),
            ("0.5", 0.5),
            (".5", 0.5),
        ],
    )
    def test_reads(self, value, expected):
        assert parse_number(value) == expected

    def test_percent_formatted_cell_means_percent(self):
        assert parse_number(0.85, percent_formatted=True) == 85.0
        assert parse_number(0.07, percent_formatted=True) == 7.0
        assert parse_number(1, percent_formatted=True) == 100.0

    @pytest.mark.parametrize("value", [None, "", "  ", "n/a", "N/A", "-", "#N/A"])
    def test_blank(self, value):
        assert parse_number(value) is None

    @pytest.mark.parametrize(
        "value", [True, False, "abc", "1,2", "12,34", "1 234", "nan", "inf", "1.2.3", float("inf"),
                  dt.date(2025, 4, 3), "85%%"]
    )
    def test_invalid(self, value):
        assert parse_number(value) is INVALID

    @given(st.integers(min_value=0, max_value=10**12))
    def test_grouped_text_round_trips(self, n):
        assert parse_number(f"{n:,}") == float(n)
        assert parse_number(f"{n}%") == float(n)


class TestCodesAndText:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(" rxx ", "RXX"), ("set - 2025", "SET - 2025"), ("a  b", "A B"), (123.0, "123"), (123, "123"),
         ("", None), ("  ", None), (None, None), (12.5, "12.5")],
    )
    def test_code(self, value, expected):
        assert normalise_code(value) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [("  Acute   medicine \n ward ", "Acute medicine ward"), (7.0, "7"), (dt.date(2025, 4, 3), "2025-04-03"),
         (None, None), (" ", None), (float("nan"), None)],
    )
    def test_text(self, value, expected):
        assert normalise_text(value) == expected


class TestMatchCategory:
    synonyms = default_value_synonyms()

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("profession", "SW", "Social Work"),
            ("profession", "Social Worker", "Social Work"),
            ("profession", " social   work ", "Social Work"),
            ("profession", "NURSING", "Nursing"),
            ("profession", "Administrative & Clerical", "Administrative and Clerical"),
            ("profession", "A&C", "Administrative and Clerical"),
            ("status", "in progress", "Active"),
            ("project_status", "Live", "Active"),
            ("measure_type", "%", "percentage"),
            ("measure_type", "Percentage", "percentage"),
            ("improvement_direction", "Higher is better", "increase"),
        ],
    )
    def test_matches(self, field, value, expected):
        assert match_category(field, value, self.synonyms) == expected

    def test_blank_and_unknown(self):
        assert match_category("profession", "  ", self.synonyms) is None
        assert match_category("profession", None, self.synonyms) is None
        assert match_category("profession", "Nurze", self.synonyms) is INVALID
        # Project statuses are not enrolment statuses.
        assert match_category("status", "Sustaining", self.synonyms) is INVALID

    def test_extra_synonyms_from_reference(self):
        extra = pd.DataFrame({"field": ["profession"], "value": ["Nursing"], "synonym": ["Staff Nurse"]})
        synonyms = default_value_synonyms(extra)
        assert match_category("profession", "staff nurse", synonyms) == "Nursing"

    @pytest.mark.parametrize(
        ("row", "message"),
        [
            (("colour", "Red", "rouge"), "unknown field"),
            (("profession", "Astronaut", "spaceman"), "not an allowed profession"),
            (("profession", "Nursing", " "), "blank"),
        ],
    )
    def test_bad_extra_synonyms_are_refused(self, row, message):
        extra = pd.DataFrame([row], columns=["field", "value", "synonym"])
        with pytest.raises(ValueError, match=message):
            default_value_synonyms(extra)


class TestColumnSynonyms:
    def test_extra_synonyms_from_reference(self):
        extra = pd.DataFrame({"dataset": ["enrolment_return"], "column": ["staff_id"], "synonym": ["Assignment No"]})
        assert default_column_synonyms(extra)["enrolment_return"]["assignment no"] == "staff_id"

    @pytest.mark.parametrize(
        "row", [("enrolments", "staff_id", "x"), ("enrolment_return", "shoe_size", "x"), ("measure_data", "value", "")]
    )
    def test_bad_extra_synonyms_are_refused(self, row):
        with pytest.raises(ValueError, match="line 2"):
            default_column_synonyms(pd.DataFrame([row], columns=["dataset", "column", "synonym"]))
