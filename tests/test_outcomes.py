"""Tests for the SPC marts (transforms.outcomes) on small literal frames."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from transforms.outcomes import (
    MART_PROJECT_OUTCOMES_SCHEMA,
    MART_SPC_POINTS_SCHEMA,
    build_project_outcomes,
    build_spc_points,
)

NAN = float("nan")
MONTHS = pd.date_range("2023-07-01", periods=20, freq="MS").astype("datetime64[ms]")
# Wristband project: a stable year before the change on 1 Jul 2024, then a rise.
BASELINE = [80, 82, 79, 81, 80, 83, 78, 81, 80, 82, 79, 81]
AFTER = [84, 86, 85, 87, 86, 88, 87, 89]


def _dim(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "project_id": ["SET-2025-001", "SET-2025-002", "SET-2025-003"],
            "organisation_code": ["RX1", "RX1", "RX2"],
            "cohort_code": ["C1", "C1", "C2"],
            "title": ["Wristbands", "AKI", "Views"],
            "measure_name": ["% wearing wristband", "days to AKI diagnosis", "% views recorded"],
            "measure_type": ["percentage", "time", "percentage"],
            "improvement_direction": ["increase", "decrease", "increase"],
            "target": [90.0, NAN, 75.0],
            "intervention_date": pd.to_datetime(["2024-07-01", None, None]).astype("datetime64[ms]"),
            "status": ["Active", "Active", "Active"],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def _fct(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["project_id", "measure_name", "period", "value"])
    frame["period"] = frame["period"].astype("datetime64[ms]")
    frame["numerator"] = NAN
    frame["denominator"] = NAN
    frame["source_sha256"] = "a" * 64
    frame["source_sheet"] = "Measures"
    frame["source_row"] = range(2, len(frame) + 2)
    frame["received_at"] = pd.Timestamp("2025-03-05", tz="UTC")
    return frame


def _measures() -> pd.DataFrame:
    rows = []
    for period, value in zip(MONTHS, BASELINE + AFTER, strict=True):
        rows.append(("SET-2025-001", "% wearing wristband", period, float(value)))
        rows.append(("SET-2025-001", "falls per 1000 bed days", period, 1.0))  # not the primary measure
    for period, value in zip(MONTHS[:7], [5, 6, 5, 7, 6, 5, 6], strict=True):
        rows.append(("SET-2025-002", "days to AKI diagnosis", period, float(value)))
    return _fct(rows)  # SET-2025-003 has sent no data yet


def _conforms(frame: pd.DataFrame, schema: pa.Schema) -> None:
    assert list(frame.columns) == schema.names
    pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


# --- mart_spc_points --------------------------------------------------------------------------


def test_spc_points_grain_and_schema():
    points = build_spc_points(_dim(), _measures())
    _conforms(points, MART_SPC_POINTS_SCHEMA)
    assert len(points) == 27  # 20 + 7; the secondary measure and the project without data give none
    assert set(points["measure_name"]) == {"% wearing wristband", "days to AKI diagnosis"}
    assert not points.duplicated(["project_id", "measure_name", "period"]).any()
    assert points["source_row"].notna().all() and (points["source_sheet"] == "Measures").all()


def test_spc_points_baseline_is_before_the_intervention():
    points = build_spc_points(_dim(), _measures())
    wrist = points[points["project_id"] == "SET-2025-001"].reset_index(drop=True)
    assert wrist["in_baseline"].tolist() == [True] * 12 + [False] * 8
    assert wrist["centre"].unique().tolist() == [pytest.approx(80.5)]  # fixed from the baseline
    upper = wrist["upper_limit"].iloc[0]
    assert upper == pytest.approx(80.5 + 2.66 * 27 / 11)  # mean moving range of the 12: 27 / 11
    assert wrist["run_median"].unique().tolist() == [80.5]
    assert wrist["point_type"].iloc[-1] == "special_cause_improvement"
    assert wrist["rule"].iloc[-1] == "outside_limits"
    assert wrist["signal_period"].iloc[-1] == "2025-02-01"
    # the shift that began with the last baseline month
    assert wrist["rule"].iloc[11] == "shift" and wrist["signal_period"].iloc[11] == "2024-06-01"
    assert wrist["run_shift"].iloc[11:].all()
    assert not wrist["provisional_limits"].any()


def test_spc_points_without_enough_baseline_use_all_points():
    dim = _dim(intervention_date=pd.to_datetime(["2024-01-01", None, None]).astype("datetime64[ms]"))
    wrist = build_spc_points(dim, _measures()).query("project_id == 'SET-2025-001'")
    assert wrist["in_baseline"].all()  # only 6 points before the intervention
    assert wrist["centre"].iloc[0] == pytest.approx(sum(BASELINE + AFTER) / 20)


def test_spc_points_short_series_has_provisional_limits():
    aki = build_spc_points(_dim(), _measures()).query("project_id == 'SET-2025-002'")
    assert aki["provisional_limits"].all()
    assert (aki["point_type"] == "common_cause").all()


def test_spc_points_keep_the_newest_value_per_period():
    fct = _measures()
    late = fct.iloc[[0]].copy()
    late["value"] = 99.0
    late["received_at"] = pd.Timestamp("2025-04-01", tz="UTC")
    late["source_row"] = 500
    points = build_spc_points(_dim(), pd.concat([fct, late], ignore_index=True))
    first = points[(points["project_id"] == "SET-2025-001") & (points["period"] == MONTHS[0])]
    assert first["value"].tolist() == [99.0] and first["source_row"].tolist() == [500]


def test_spc_points_empty():
    points = build_spc_points(_dim(), _measures().iloc[0:0])
    assert points.empty
    _conforms(points, MART_SPC_POINTS_SCHEMA)


def test_missing_columns_are_an_error():
    with pytest.raises(ValueError, match="intervention_date"):
        build_spc_points(_dim().drop(columns="intervention_date"), _measures())


# --- mart_project_outcomes --------------------------------------------------------------------

PERIODS = ["2023-06", "2023-12", "2024-06", "2024-12", "2025-02"]


def _outcomes() -> pd.DataFrame:
    return build_project_outcomes(_dim(), _measures(), PERIODS)


def _row(outcomes: pd.DataFrame, period: str, project: str) -> dict:
    rows = outcomes[(outcomes["reporting_period"] == period) & (outcomes["project_id"] == project)]
    assert len(rows) == 1
    return rows.iloc[0].to_dict()


def test_outcomes_grain_and_schema():
    outcomes = _outcomes()
    _conforms(outcomes, MART_PROJECT_OUTCOMES_SCHEMA)
    assert not outcomes.duplicated(["reporting_period", "project_id"]).any()
    # no points before Jul 2023, and SET-2025-003 has none at all: no rows
    assert "2023-06" not in set(outcomes["reporting_period"])
    assert "SET-2025-003" not in set(outcomes["project_id"])
    assert len(outcomes) == 8


def test_outcomes_use_only_the_data_as_of_each_period():
    outcomes = _outcomes()
    wrist = outcomes[outcomes["project_id"] == "SET-2025-001"].set_index("reporting_period")
    assert wrist["n_points"].to_dict() == {"2023-12": 6, "2024-06": 12, "2024-12": 18, "2025-02": 20}
    assert wrist.loc["2024-12", "latest_period"] == "2024-12-01"
    assert wrist.loc["2024-12", "latest_value"] == 88.0


def test_outcomes_insufficient_data():
    row = _row(_outcomes(), "2024-06", "SET-2025-002")
    assert row["variation"] == "insufficient_data"
    assert bool(row["provisional_limits"]) is True
    assert pd.isna(row["assurance"]) and pd.isna(row["rule"]) and pd.isna(row["signal_period"])
    assert row["centre"] == pytest.approx(40 / 7)  # the chart is still drawn
    assert row["explanation"] == "Not enough data yet: 7 of the 12 monthly points needed."


def test_outcomes_common_cause_with_assurance():
    row = _row(_outcomes(), "2024-06", "SET-2025-001")
    assert row["variation"] == "common_cause"
    assert row["assurance"] == "consistent_fail"  # target 90 is above the upper limit 87.03
    assert row["baseline"] == "before_intervention" and row["baseline_points"] == 12
    assert pd.isna(row["rule"])
    assert row["explanation"] == (
        "No change: the latest value is within the expected range (common cause variation); "
        "the target of 90% is consistently missed."
    )


def test_outcomes_improvement_names_the_rule_and_its_period():
    row = _row(_outcomes(), "2025-02", "SET-2025-001")
    assert row["variation"] == "improvement_high"
    assert row["rule"] == "outside_limits" and row["signal_period"] == "2025-02-01"
    assert bool(row["runs_signal"]) is True  # longest run 9 > 8 for 20 points
    assert row["upper_limit"] == pytest.approx(80.5 + 2.66 * 27 / 11)
    assert row["explanation"].startswith("Improvement: the Feb 2025 value was above the upper process limit")


def test_outcomes_shift_explanation():
    # A stable year at 12 and 10, then seven months a little above the average: a shift.
    values = [12, 10] * 6 + [11.5, 11.6, 11.7, 11.5, 11.6, 11.5, 11.8]
    dim = _dim().iloc[[2]].reset_index(drop=True)
    fct = _fct([("SET-2025-003", "% views recorded", p, float(v)) for p, v in zip(MONTHS, values, strict=False)])
    row = build_project_outcomes(dim, fct, ["2025-01"]).iloc[0].to_dict()
    assert row["variation"] == "improvement_high"
    assert row["rule"] == "shift" and row["signal_period"] == "2024-07-01"
    assert row["explanation"] == (
        "Improvement: 7 points in a row above the average since Jul 2024 (shift); "
        "the target of 75% is consistently missed."
    )


def test_outcomes_earlier_signal_is_reported_with_its_period():
    # a rise above the limit in the sixth month (decrease is better), common cause since then
    values = [9, 13] * 2 + [9, 30] + [9, 13] * 5
    dim = _dim(improvement_direction=["increase", "decrease", "decrease"], target=[90.0, NAN, NAN]).iloc[[2]]
    fct = _fct([("SET-2025-003", "% views recorded", p, float(v)) for p, v in zip(MONTHS, values, strict=False)])
    row = build_project_outcomes(dim, fct, ["2024-10"]).iloc[0].to_dict()
    assert row["variation"] == "common_cause" and pd.isna(row["assurance"])  # no target
    assert row["rule"] == "outside_limits" and row["signal_period"] == "2023-12-01"
    assert row["explanation"] == (
        "No change now (common cause variation); the last signal was concern: "
        "the Dec 2023 value was above the upper process limit."
    )


def test_outcomes_weekly_series_words():
    weeks = pd.date_range("2025-01-06", periods=5, freq="7D").astype("datetime64[ms]")
    dim = _dim().iloc[[2]]
    fct = _fct([("SET-2025-003", "% views recorded", p, 50.0) for p in weeks])
    row = build_project_outcomes(dim, fct, ["2025-02"]).iloc[0]
    assert row["explanation"] == "Not enough data yet: 5 of the 12 weekly points needed."


def test_outcomes_empty():
    outcomes = build_project_outcomes(_dim(), _measures().iloc[0:0], PERIODS)
    assert outcomes.empty
    _conforms(outcomes, MART_PROJECT_OUTCOMES_SCHEMA)


def test_spc_points_offer_the_p_chart_for_a_percentage_with_counts():
    # qicharts2's P chart (see tests/test_spc.py for its published cases), on the 0-100 scale.
    fct = _fct([("SET-2025-003", "% views recorded", p, 100 * n / 20) for p, n in zip(MONTHS[:4], [10, 12, 14, 16])])
    fct["numerator"] = [10.0, 12.0, 14.0, 16.0]
    fct["denominator"] = 20.0
    points = build_spc_points(_dim(), fct)
    assert points["p_centre"].tolist() == [65.0] * 4
    assert points["p_upper_limit"].iloc[0] == pytest.approx(100 * (0.65 + 3 * (0.65 * 0.35 / 20) ** 0.5))
    assert points["p_lower_limit"].iloc[0] == pytest.approx(100 * (0.65 - 3 * (0.65 * 0.35 / 20) ** 0.5))
    # no counts, or not a percentage: no P chart
    assert build_spc_points(_dim(), _measures())["p_centre"].isna().all()
