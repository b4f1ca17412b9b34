"""Supersession rules (SPEC 4) on tiny literal frames."""

import numpy as np
import pandas as pd
import pyarrow as pa

from transforms import marts

T = pd.Timestamp


def _rows(records, columns):
    frame = pd.DataFrame(records, columns=columns)
    frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
    frame["source_sheet"] = ""
    return frame


ENROL_COLS = ["participant_key", "cohort_code", "organisation_code", "profession", "status", "source_sha256",
              "file_name", "source_row", "received_at", "reporting_period"]


def test_enrolment_newest_status_wins_and_absence_is_flagged():
    rows = _rows(
        [
            ("k1", "C25A", "RPA", "Nursing", "Enrolled", "f1", "a.xlsx", 2, "2025-05-03", "2025-04"),
            ("k2", "C25A", "RPA", "Nursing", "Active", "f1", "a.xlsx", 3, "2025-05-03", "2025-04"),
            ("k1", "C25A", "RPA", "Nursing", "Active", "f2", "b.xlsx", 2, "2025-06-03", "2025-05"),
        ],
        ENROL_COLS,
    )
    out = marts.fct_enrolment(rows, rows).set_index("participant_key")
    assert out.loc["k1", "status"] == "Active"
    assert out.loc["k1", "source_sha256"] == "f2"
    assert not out.loc["k1", "absent_from_latest_return"]
    # k2 is missing from RPA's newest return (f2): keeps last status, flagged.
    assert out.loc["k2", "status"] == "Active"
    assert out.loc["k2", "absent_from_latest_return"]


def test_rejected_row_in_newest_return_is_not_absence():
    accepted = _rows([("k1", "C25A", "RPA", "Nursing", "Active", "f1", "a.xlsx", 2, "2025-05-03", "2025-04")], ENROL_COLS)
    everything = pd.concat(
        [accepted, _rows([("k1", "C25A", "RPA", None, "Bogus", "f2", "b.xlsx", 2, "2025-06-03", "2025-05")], ENROL_COLS)]
    )
    out = marts.fct_enrolment(accepted, everything)
    assert not out["absent_from_latest_return"].iloc[0]
    assert out["status"].iloc[0] == "Active"


def test_programme_summary_counts_status_at_end_of_each_period():
    rows = _rows(
        [
            ("k1", "C25A", "RPA", "Nursing", "Enrolled", "f1", "a.xlsx", 2, "2025-05-03", "2025-04"),
            ("k2", "C25A", "RPA", "Nursing", "Enrolled", "f1", "a.xlsx", 3, "2025-05-03", "2025-04"),
            ("k1", "C25A", "RPA", "Nursing", "Withdrawn", "f2", "b.xlsx", 2, "2025-06-03", "2025-05"),
        ],
        ENROL_COLS,
    )
    cohorts = pd.DataFrame({"code": ["C25A"], "programme_year": ["2025/26"]})
    out = marts.mart_programme_summary(rows, cohorts, ["2025-04", "2025-05"]).set_index("reporting_period")
    assert out.loc["2025-04", ["headcount", "enrolled", "withdrawn"]].tolist() == [2, 2, 0]
    assert out.loc["2025-05", ["headcount", "enrolled", "withdrawn"]].tolist() == [2, 1, 1]
    assert (out["programme_year"] == "2025/26").all()


def test_programme_summary_takes_the_last_row_received_among_those_of_the_period_or_before():
    # k1's file for 2025-06 arrived before a correction that counts for 2025-05: from 2025-05
    # on, the correction (received last) is k1's state; the 2025-06 row never is.
    rows = _rows(
        [
            ("k1", "C25A", "RPA", "Nursing", "Enrolled", "f1", "a.xlsx", 2, "2025-05-03", "2025-04"),
            ("k1", "C25A", "RPA", "Nursing", "Withdrawn", "f2", "b.xlsx", 2, "2025-07-03", "2025-06"),
            ("k1", "C25A", "RPA", "Nursing", "Active", "f3", "c.xlsx", 2, "2025-07-04", "2025-05"),
            ("k2", "C25A", "RPA", "Nursing", "Enrolled", "f4", "d.xlsx", 2, "2025-08-03", "2025-07"),
        ],
        ENROL_COLS,
    )
    cohorts = pd.DataFrame({"code": ["C25A"], "programme_year": ["2025/26"]})
    out = marts.mart_programme_summary(rows, cohorts, ["2025-03", "2025-04", "2025-05", "2025-06", "2025-07"])
    out = out.set_index("reporting_period")
    assert "2025-03" not in out.index  # nobody reported yet
    assert out.loc["2025-04", ["headcount", "enrolled", "active", "withdrawn"]].tolist() == [1, 1, 0, 0]
    assert out.loc["2025-05", ["headcount", "enrolled", "active", "withdrawn"]].tolist() == [1, 0, 1, 0]
    assert out.loc["2025-06", ["headcount", "enrolled", "active", "withdrawn"]].tolist() == [1, 0, 1, 0]
    assert out.loc["2025-07", ["headcount", "enrolled", "active", "withdrawn"]].tolist() == [2, 1, 1, 0]


MEASURE_COLS = ["project_id", "measure_name", "period", "value", "source_sha256", "file_name", "source_row", "received_at"]


def test_newest_measure_value_wins_and_history_keeps_every_value():
    rows = _rows(
        [
            ("P1", "m", T("2025-04-01"), 50.0, "f1", "a.csv", 2, "2025-05-03"),
            ("P1", "m", T("2025-05-01"), 55.0, "f1", "a.csv", 3, "2025-05-03"),
            ("P1", "m", T("2025-04-01"), 52.0, "f2", "b.csv", 2, "2025-06-03"),
        ],
        MEASURE_COLS,
    )
    history = marts.fct_measure_history(rows)
    assert len(history) == 3
    assert history["superseded"].sum() == 1
    current = marts.fct_measure(history).set_index("period")
    assert current.loc[T("2025-04-01"), "value"] == 52.0
    assert current.loc[T("2025-04-01"), "revised"]
    assert not current.loc[T("2025-05-01"), "revised"]


def test_same_received_at_breaks_ties_by_path_then_row():
    rows = _rows(
        [
            ("P1", "m", T("2025-04-01"), 1.0, "f2", "b.csv", 2, "2025-05-03"),
            ("P1", "m", T("2025-04-01"), 2.0, "f1", "a.csv", 2, "2025-05-03"),
        ],
        MEASURE_COLS,
    )
    current = marts.fct_measure(marts.fct_measure_history(rows))
    assert current["value"].tolist() == [1.0]  # b.csv sorts after a.csv


def test_history_takes_the_rows_kept_with_the_marts_columns_in_key_then_arrival_order():
    rng = np.random.default_rng(7)
    n = 400
    rows = pd.DataFrame({
        "project_id": rng.choice(["P1", "P2", "P3"], n), "measure_name": rng.choice(["m", "n"], n),
        "period": pd.to_datetime(rng.choice(["2025-04-01", "2025-05-01", "2025-06-01"], n)),
        "value": rng.integers(0, 5, n).astype(float), "numerator": np.nan, "denominator": np.nan,
        # few files, rows and days: many rows tie on received_at and on row number
        "source_sha256": rng.choice(["f1", "f2", "f3", "f4"], n), "source_sheet": rng.choice(["", "Data"], n),
        "source_row": rng.integers(2, 6, n),
        "received_at": pd.to_datetime(rng.choice(["2025-05-03", "2025-06-03"], n), utc=True),
        "chk_value_present": True, "organisation_code": "LEAD",
    })
    rows["file_name"] = rows["source_sha256"] + ".xlsx"
    keep = rng.random(n) < 0.8
    history = marts.fct_measure_history(rows, keep=keep)
    # what it was built as: every column taken, the arrival order, then a sort by key
    arrived = rows[keep].sort_values(marts.ORDER_KEYS, kind="stable")
    superseded = arrived.duplicated(subset=["project_id", "measure_name", "period"], keep="last")
    expected = arrived.assign(superseded=superseded).sort_values(
        ["project_id", "measure_name", "period", "received_at", "source_row"], ignore_index=True)
    assert set(history.columns) == set(marts.SCHEMAS["fct_measure_history"].names)  # nothing else carried
    # the lineage text as categories of the values taken, published as the same text
    for column in marts.LINEAGE_TEXT:
        assert isinstance(history[column].dtype, pd.CategoricalDtype)
        assert set(history[column].cat.categories) == set(expected[column])
    pd.testing.assert_frame_equal(history.astype({c: rows[c].dtype for c in marts.LINEAGE_TEXT}),
                                  expected[history.columns])
    pd.testing.assert_frame_equal(marts.fct_measure_history(rows[keep]), history)
    back = pa.Table.from_pandas(history, schema=marts.SCHEMAS["fct_measure_history"], preserve_index=False)
    assert back.schema.field("source_sha256").type == pa.string()
    assert back.column("source_sha256").to_pylist() == expected["source_sha256"].tolist()


def _fct_measure_as_it_was(history):
    key = ["project_id", "measure_name", "period"]
    distinct = history.groupby(key)["value"].nunique(dropna=False).rename("_n").reset_index()
    current = history[~history["superseded"]].merge(distinct, on=key, how="left")
    current["revised"] = current["_n"] > 1
    return current.drop(columns="_n").sort_values(key, ignore_index=True)


def test_current_values_are_the_newest_of_each_key_in_key_order_flagged_when_revised():
    rng = np.random.default_rng(11)
    n = 500
    history = pd.DataFrame({
        # many keys of one to a few rows: some revised, some not
        "project_id": rng.choice([f"P{i}" for i in range(60, 0, -1)] + [None], n),
        "measure_name": rng.choice(["n", "m"], n),
        "period": pd.to_datetime(rng.choice(["2025-06-01", "2025-04-01", None], n)),
        "value": rng.choice([1.0, 2.0, np.nan], n, p=[0.7, 0.2, 0.1]), "source_row": np.arange(n),
        "superseded": rng.random(n) < 0.5,  # (shuffled rows: the order must come from the keys)
    })
    current = marts.fct_measure(history)
    assert 0 < current["revised"].sum() < len(current)
    for frame in (history, history.iloc[:0], history[history["superseded"]], history.assign(superseded=False)):
        pd.testing.assert_frame_equal(marts.fct_measure(frame), _fct_measure_as_it_was(frame))


def test_project_register_newest_row_wins():
    cols = ["project_id", "title", "source_sha256", "file_name", "source_row", "received_at"]
    rows = _rows([("P1", "Old", "f1", "a", 2, "2025-05-03"), ("P1", "New", "f2", "b", 2, "2025-06-01")], cols)
    assert marts.dim_project(rows)["title"].tolist() == ["New"]


def test_participant_missing_from_the_newest_return_is_a_warning_on_that_return():
    from transforms.load import absence_warnings

    rows = _rows(
        [
            ("k1", "C25A", "RPA", "Nursing", "Active", "f1", "a.xlsx", 5, "2025-05-03", "2025-04"),
            ("k2", "C25A", "RPA", "Nursing", "Completed", "f1", "a.xlsx", 6, "2025-05-03", "2025-04"),
            ("k3", "C25A", "RPA", "Nursing", "Active", "f2", "b.xlsx", 2, "2025-06-03", "2025-05"),
        ],
        ENROL_COLS,
    )
    facts = marts.fct_enrolment(rows, rows)
    files = pd.DataFrame({"sha256": ["f1", "f2"], "file_name": ["a.xlsx", "b.xlsx"],
                          "reporting_period": ["2025-04", "2025-05"]})
    warnings = absence_warnings(facts, rows, files)
    # k1 (Active) is missing from b.xlsx; k2 left with Completed, so no warning.
    assert warnings["source_sha256"].tolist() == ["f2"]
    assert warnings["severity"].tolist() == ["warning"]
    assert "a.xlsx, row 5" in warnings["message"].iloc[0]
    assert warnings["value"].isna().all()  # no staff id quoted
