"""The validation suites: every rule, a good and a bad case, through the real runner.

Rows are built as staging makes them, keyed with ``transforms.load.key_participants``
and given their ``chk_*`` columns by ``transforms.checks``, then validated by
``expectations.runner.validate`` in ONE batch (a GX run costs a fixed ~65 ms and the GX
import 2.5 s: STACK.md). Each case's rows sit in files of their own, so cross-row rules
(duplicates, proportions, gaps) see only that case's rows.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from expectations import enrolment_return, measure_data, project_register
from expectations.runner import PERSONAL, SUITES, _exception_message, validate
from transforms import checks, datasets
from transforms.load import key_participants
from transforms.reference import load_reference
from transforms.staging import staged_columns

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
KEY = b"test-key"
RECEIVED = pd.Timestamp("2025-06-05 10:00", tz="UTC")
D = pd.Timestamp


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


# --- Cases -------------------------------------------------------------------------------------

ENROLMENT_GOOD = {
    "organisation_code": "RNL", "staff_id": "S001", "profession": "Nursing", "service_area": "Acute medicine",
    "team": "Ward 4", "job_title": "Staff nurse", "band": "5", "cohort_code": "C25A",
    "enrolment_date": D("2025-04-01"), "status": "Active", "status_date": pd.NaT, "withdrawal_reason": None,
    "project_id": "SET-2025-001",
}
REGISTER_GOOD = {
    "project_id": "SET-2025-001", "organisation_code": "RNL", "cohort_code": "C25A", "title": "Wristbands",
    "aim": "All inpatients wear a wristband", "team": "Ward 4", "service_area": "Acute medicine",
    "measure_name": "Wristband %", "measure_type": "percentage", "unit": "%", "improvement_direction": "increase",
    "target": 95.0, "intervention_date": D("2025-05-01"), "status": "Active",
}
MEASURE_GOOD = {
    "project_id": "SET-2025-001", "measure_name": "Wristband %", "period": D("2025-04-01"),
    "numerator": 8.0, "denominator": 10.0, "value": 80.0,
}
# The primary measures the measure rules know (from the register).
PRIMARY = pd.DataFrame({
    "project_id": ["SET-2025-001", "SET-2025-002"],
    "measure_name": ["Wristband %", "Falls"],
    "measure_type": ["percentage", "count"],
})
COUNT = {"project_id": "SET-2025-002", "measure_name": "Falls", "numerator": np.nan, "denominator": np.nan}
LEAVING = {"status": "Completed", "status_date": D("2025-05-01")}


@dataclass
class Case:
    """Rows of a good file (none may have any issue) and of a bad file (the rows at
    ``bad_at`` break ``rule``, possibly with ``also`` rules; its other rows must not)."""

    dataset: str
    rule: str
    good: list[dict]
    bad: list[dict]
    bad_at: tuple[int, ...] = (-1,)
    also: frozenset[str] = frozenset()
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.dataset}:{self.rule}" + (f":{self.label}" if self.label else "")


def one(dataset: str, rule: str, good: dict, bad: dict, **kw) -> Case:
    return Case(dataset, rule, [good], [bad], **kw)


E, R, M = datasets.ENROLMENT_RETURN, datasets.PROJECT_REGISTER, datasets.MEASURE_DATA

CASES = [
    # Enrolment return (SPEC 3.1)
    *[one(E, f"{c}_required", {}, {c: pd.NaT if c.endswith("date") else None})
      for c in ("organisation_code", "staff_id", "profession", "service_area", "cohort_code", "enrolment_date", "status")],
    one(E, "organisation_known", {"organisation_code": "RPA"}, {"organisation_code": "RZZ"}),
    one(E, "cohort_known", {"cohort_code": "C24B"}, {"cohort_code": "C99Z"}),
    one(E, "profession_in_list", {"profession": "Social Work"}, {"profession": "Astronaut"}),
    one(E, "status_in_list", {"status": "Enrolled"}, {"status": "Asleep"}),
    one(E, "staff_id_format", {"staff_id": "0012345"}, {"staff_id": "S-1"}),
    one(E, "staff_id_format", {"staff_id": "ABC"}, {"staff_id": "A" * 21}, label="too long"),
    one(E, "enrolment_date_in_cohort_window", {"enrolment_date": D("2024-12-02")},
        {"enrolment_date": D("2024-12-01")}, label="too early"),
    one(E, "enrolment_date_in_cohort_window", {"enrolment_date": D("2025-12-31")},
        {"enrolment_date": D("2026-01-01")}, label="after the end"),
    one(E, "status_date_required", LEAVING, {"status": "Deferred", "status_date": pd.NaT}),
    one(E, "status_date_after_enrolment", {**LEAVING, "status_date": D("2025-04-01")},
        {**LEAVING, "status_date": D("2025-03-31")}),
    one(E, "status_date_not_future", {**LEAVING, "status_date": D("2025-06-05")},
        {**LEAVING, "status_date": D("2025-06-06")}),
    one(E, "withdrawal_reason_required", {"status": "Withdrawn", "status_date": D("2025-05-01"),
                                          "withdrawal_reason": "Left the trust"},
        {"status": "Withdrawn", "status_date": D("2025-05-01"), "withdrawal_reason": None}),
    Case(E, "duplicate_participant", [{"staff_id": "S001"}, {"staff_id": "S002"}, {"staff_id": "S001", "cohort_code": "C24B"}],
         [{"staff_id": "S001"}, {"staff_id": "S001", "profession": "Medical"}]),
    one(E, "project_not_registered", {"project_id": None}, {"project_id": "SET-2099-999"}),
    # Project register (SPEC 3.2)
    *[one(R, f"{c}_required", {}, {c: None})
      for c in ("project_id", "organisation_code", "cohort_code", "title", "service_area", "measure_name",
                "measure_type", "improvement_direction", "status")],
    one(R, "organisation_known", {"organisation_code": "VFC"}, {"organisation_code": "RZZ"}),
    one(R, "cohort_known", {"cohort_code": "C26A"}, {"cohort_code": "C99Z"}),
    one(R, "measure_type_in_list", {"measure_type": "time"}, {"measure_type": "score"}),
    one(R, "improvement_direction_in_list", {"improvement_direction": "decrease"}, {"improvement_direction": "sideways"}),
    one(R, "project_status_in_list", {"status": "Sustaining"}, {"status": "Dormant"}),
    Case(R, "duplicate_project", [{"project_id": "SET-2025-001"}, {"project_id": "SET-2025-002"}],
         [{"project_id": "SET-2025-001"}, {"project_id": "SET-2025-001", "title": "Wristbands again"}]),
    one(R, "target_on_scale", {"target": 100.0}, {"target": 100.5}, label="percentage over 100"),
    one(R, "target_on_scale", {"measure_type": "count", "target": 250.0}, {"measure_type": "count", "target": -1.0},
        label="negative count"),
    one(R, "target_looks_like_proportion", {"target": 1.0}, {"target": 0.9}),
    # Measure data (SPEC 3.3)
    # (No ratio, so only the required rule can fire.)
    *[one(M, f"{c}_required", {}, {c: pd.NaT if c == "period" else None, "numerator": np.nan, "denominator": np.nan})
      for c in ("project_id", "measure_name", "period")],
    one(M, "value_required", {"value": np.nan}, {"value": np.nan, "numerator": np.nan, "denominator": np.nan}),
    one(M, "value_required", {"numerator": np.nan, "denominator": np.nan},
        {"value": np.nan, "numerator": 8.0, "denominator": np.nan}, label="numerator only"),
    one(M, "denominator_positive", {"value": np.nan, "numerator": 0.0, "denominator": 1.0},
        {"value": np.nan, "numerator": 0.0, "denominator": 0.0}),
    one(M, "numerator_not_over_denominator", {"value": np.nan, "numerator": 10.0, "denominator": 10.0},
        {"value": np.nan, "numerator": 11.0, "denominator": 10.0}, also=frozenset({"percentage_in_range"})),
    one(M, "numerator_not_over_denominator", {**COUNT, "numerator": 11.0, "denominator": 10.0, "value": np.nan},
        {"numerator": 11.0, "denominator": 10.0, "value": np.nan}, also=frozenset({"percentage_in_range"}),
        label="only for percentages"),
    one(M, "percentage_in_range", {"numerator": np.nan, "denominator": np.nan, "value": 100.0},
        {"numerator": np.nan, "denominator": np.nan, "value": 100.1}),
    one(M, "percentage_in_range", {**COUNT, "value": 140.0}, {"numerator": np.nan, "denominator": np.nan, "value": -1.0},
        label="negative percentage"),
    one(M, "value_not_negative", {**COUNT, "value": 0.0}, {**COUNT, "value": -3.0}),
    one(M, "value_not_negative", {"project_id": "SET-2025-001", "measure_name": "Secondary count", "numerator": np.nan,
                                  "denominator": np.nan, "value": 3.0},
        {"project_id": "SET-2025-001", "measure_name": "Secondary count", "numerator": np.nan, "denominator": np.nan,
         "value": -0.5}, label="other measure of a project"),
    one(M, "value_not_negative", {"project_id": "SET-2030-001", "numerator": np.nan, "denominator": np.nan, "value": 3.0},
        {"project_id": "SET-2030-001", "numerator": np.nan, "denominator": np.nan, "value": -2.0},
        label="project not registered yet"),
    one(M, "value_agrees_with_ratio", {"value": 80.5}, {"value": 80.6}),
    one(M, "value_agrees_with_ratio", {**COUNT, "numerator": 3.0, "denominator": 4.0, "value": 0.75},
        {**COUNT, "numerator": 3.0, "denominator": 4.0, "value": 0.8}, label="count or rate"),
    one(M, "period_not_future", {"period": D("2025-06-01")}, {"period": D("2025-07-01")}),
    Case(M, "duplicate_measure_value",
         [{"period": D("2025-04-01")}, {"period": D("2025-05-01")}],
         [{"period": D("2025-04-01")}, {"period": D("2025-04-01"), "numerator": 9.0, "value": 90.0}]),
    Case(M, "value_looks_like_proportion",
         [{"numerator": np.nan, "denominator": np.nan, "value": 0.8, "period": D("2025-04-01")},
          {"numerator": np.nan, "denominator": np.nan, "value": 85.0, "period": D("2025-05-01")}],
         [{"numerator": np.nan, "denominator": np.nan, "value": 0.8, "period": D("2025-04-01")},
          {"numerator": np.nan, "denominator": np.nan, "value": 0.85, "period": D("2025-05-01")}],
         bad_at=(0, 1)),
    Case(M, "period_gap",
         [{"period": D("2025-03-01")}, {"period": D("2025-04-01")}, {"period": D("2025-05-01")}],
         [{"period": D("2025-03-01")}, {"period": D("2025-05-01")}, {"period": D("2025-06-01")}], bad_at=(1,),
         label="monthly"),
    Case(M, "period_gap",
         [{"period": D("2025-04-07")}, {"period": D("2025-04-14")}, {"period": D("2025-04-21")}],
         [{"period": D("2025-04-07")}, {"period": D("2025-04-14")}, {"period": D("2025-04-28")}],
         label="weekly"),
]

BASE = {E: ENROLMENT_GOOD, R: REGISTER_GOOD, M: MEASURE_GOOD}


# --- Building frames as the pipeline does ------------------------------------------------------


def typed_frame(dataset: str, rows: list[dict]) -> pd.DataFrame:
    """Rows -> a frame with the staged columns and dtypes (staging.py) plus the file's received_at."""
    spec = datasets.BY_NAME[dataset]
    data = {}
    frame = pd.DataFrame(rows)
    for name in staged_columns(dataset):
        values = frame[name] if name in frame.columns else pd.Series([None] * len(frame))
        if name == "source_row":
            data[name] = values.astype("int64")
        elif name in ("source_sha256", "source_sheet", "source_column"):
            data[name] = values.astype("object")
        elif spec.column(name).kind == "date":
            data[name] = pd.to_datetime(values).astype("datetime64[ms]")
        elif spec.column(name).kind == "number":
            data[name] = pd.to_numeric(values).astype("float64")
        else:
            data[name] = values.astype("object").where(values.notna(), None)
    out = pd.DataFrame(data)
    out["received_at"] = RECEIVED
    if "file_name" in frame.columns:  # as load._with_files adds it
        out["file_name"] = frame["file_name"].astype("object").to_numpy()
    return out


def checked_frames(reference, cases: list[Case]) -> tuple[dict[str, pd.DataFrame], dict[tuple[str, int], tuple]]:
    """Every case's rows, checked as load.validate_rows checks them; and _row_id -> (case, file, index)."""
    rows: dict[str, list[dict]] = {E: [], R: [], M: []}
    where: dict[tuple[str, int], tuple] = {}
    for case in cases:
        for kind, file_rows in (("good", case.good), ("bad", case.bad)):
            sha = f"{case.id}:{kind}"
            for i, overrides in enumerate(file_rows):
                row_id = len(rows[case.dataset])
                rows[case.dataset].append({**BASE[case.dataset], **overrides, "source_sha256": sha,
                                           "source_sheet": "Sheet1", "source_row": i + 2, "_row_id": row_id,
                                           "file_name": f"{sha}.xlsx"})
                where[(case.dataset, row_id)] = (case, kind, i)
    frames = {}
    for name, records in rows.items():
        frame = typed_frame(name, records).assign(_row_id=[r["_row_id"] for r in records])
        frames[name] = frame
    enrolment = checks.enrolment_checks(key_participants(frames[E], KEY), reference.cohorts)
    enrolment = checks.project_registered_check(enrolment, ["SET-2025-001", "SET-2025-002"])
    # Personal columns a careless caller left in: the runner must keep them from GX.
    frames[E] = enrolment.assign(staff_id=frames[E]["staff_id"], first_name="Planted", surname="Person",
                                 email="planted.person@example.org", mentor="Dr Planted")
    frames[R] = checks.register_checks(frames[R])
    frames[M] = checks.measure_checks(frames[M], PRIMARY)
    return frames, where


@pytest.fixture(scope="module")
def outcome(reference):
    frames, where = checked_frames(reference, CASES)
    result = validate(frames, reference, run_name="test")
    found: dict[tuple[str, str, int], set[str]] = {}
    for dataset, row_id, rule in result.issues[["dataset", "_row_id", "rule"]].itertuples(index=False):
        case, kind, i = where[(dataset, row_id)]
        found.setdefault((case.id, kind, i), set()).add(rule)
    return SimpleNamespace(result=result, found=found, frames=frames)


# --- Every rule, good and bad ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_good_rows_have_no_issue(outcome, case):
    for i in range(len(case.good)):
        assert outcome.found.get((case.id, "good", i), set()) == set(), f"good row {i}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_rows_break_the_rule(outcome, case):
    bad = {i % len(case.bad) for i in case.bad_at}
    for i in range(len(case.bad)):
        rules = outcome.found.get((case.id, "bad", i), set())
        if i in bad:
            assert rules == {case.rule} | case.also, f"bad row {i}"
        else:
            assert rules == set(), f"row {i} of the bad file is not the bad one"


def test_every_rule_of_every_suite_has_a_case(reference):
    rules = {(name, check.rule) for name, build in SUITES.items() for check in build(reference)}
    assert rules == {(c.dataset, c.rule) for c in CASES}


def test_no_rule_was_skipped_and_every_dataset_ran(outcome):
    assert outcome.result.skipped == {}
    assert set(outcome.result.success) == {E, R, M}
    assert len(outcome.result.results) == 3


def test_issue_rows_say_what_the_check_says(outcome, reference):
    checks_by_rule = {(name, c.rule): c for name, build in SUITES.items() for c in build(reference)}
    issues = outcome.result.issues
    assert len(issues) and list(issues.columns) == ["dataset", "_row_id", "rule", "column", "severity", "message", "fix"]
    for row in issues.itertuples(index=False):
        check = checks_by_rule[(row.dataset, row.rule)]
        assert (row.column, row.severity, row.message, row.fix) == (check.column, check.severity, check.message, check.fix)
    warnings = set(issues.loc[issues["severity"] == "warning", "rule"])
    assert warnings == {"project_not_registered", "target_looks_like_proportion", "value_looks_like_proportion",
                        "period_gap"}


def test_gx_sees_no_personal_column(outcome):
    assert PERSONAL <= set(outcome.frames[E].columns)  # the frame had them; GX must not
    for result in outcome.result.results:
        columns = {r.expectation_config.kwargs.get("column") for r in result.results}
        assert not columns & PERSONAL
        text = str(result.to_json_dict())
        assert "S001" not in text and "Planted" not in text and "planted.person" not in text


def test_expectations_carry_severity_and_a_description(outcome):
    for result in outcome.result.results:
        for item in result.results:
            config = item.expectation_config
            assert config.description.startswith(config.meta["severity"].upper())
            assert config.severity == ("critical" if config.meta["severity"] == "error" else "warning")


# --- The suites themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("module", [enrolment_return, project_register, measure_data], ids=lambda m: m.DATASET)
def test_every_check_is_explained(reference, module):
    checks_ = module.build(reference)
    assert len({c.rule for c in checks_}) == len(checks_)
    seen = set()
    columns = {c.name for c in datasets.BY_NAME[module.DATASET].columns}
    for check in checks_:
        assert (check.rule, check.checked_column) not in seen
        seen.add((check.rule, check.checked_column))
        assert check.severity in ("error", "warning")
        assert check.column in columns
        assert check.message.endswith(".") and check.fix.endswith(".") and check.rule_text.endswith(".")
        assert "$" not in check.description()
        assert check.expectation in ("ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeInSet")
        if check.checked_column.startswith("chk_"):
            assert check.kwargs["value_set"] == [True]


@pytest.mark.parametrize("module", [enrolment_return, project_register, measure_data], ids=lambda m: m.DATASET)
def test_every_required_column_has_a_required_rule(reference, module):
    rules = {c.rule for c in module.build(reference)}
    for name in datasets.BY_NAME[module.DATASET].required:
        assert f"{name}_required" in rules


def test_every_category_has_an_in_list_rule(reference):
    for (dataset, column), category in datasets.CATEGORY_FIELD.items():
        sets = [c.kwargs["value_set"] for c in SUITES[dataset](reference)
                if c.column == column and c.expectation == "ExpectColumnValuesToBeInSet" and c.checked_column == column]
        assert sets == [list(datasets.CATEGORIES[category])]


def test_a_row_with_nothing_to_validate_gives_an_empty_result(reference):
    result = validate({E: pd.DataFrame()}, reference)
    assert result.issues.empty and result.results == [] and result.success == {}


def test_a_rule_gx_could_not_evaluate_is_an_error_not_a_pass():
    item = SimpleNamespace(exception_info={"raised_exception": True, "exception_message": "boom\nmore"})
    assert _exception_message(item) == "boom"
    nested = SimpleNamespace(exception_info={("m", "x"): {"raised_exception": True, "exception_message": "bad"}})
    assert _exception_message(nested) == "bad"
    assert _exception_message(SimpleNamespace(exception_info={"raised_exception": False})) is None
    assert _exception_message(SimpleNamespace(exception_info=None)) is None


# --- The computed checks on their own ----------------------------------------------------------


def test_period_gap_only_compares_periods_within_a_file():
    frame = typed_frame(M, [
        {**MEASURE_GOOD, "source_sha256": "a", "period": D("2025-01-01"), "source_row": 2},
        {**MEASURE_GOOD, "source_sha256": "b", "period": D("2025-05-01"), "source_row": 2},
        {**MEASURE_GOOD, "source_sha256": "b", "period": D("2025-05-01"), "source_row": 3},
        {**MEASURE_GOOD, "source_sha256": "b", "period": pd.NaT, "source_row": 4},
        {**MEASURE_GOOD, "source_sha256": "b", "period": D("2025-03-01"), "source_row": 5},
    ])
    gap = checks.period_gap_check(frame)
    assert gap.tolist() == [True, False, False, pd.NA, True]


def test_project_registered_is_not_applicable_without_a_project():
    frame = pd.DataFrame({"project_id": ["P1", None, "P2"]})
    out = checks.project_registered_check(frame, {"P1"})
    assert out["chk_project_registered"].tolist() == [True, pd.NA, False]


def test_target_checks_need_a_target():
    frame = pd.DataFrame({"target": [np.nan, 50.0, 0.5, 0.5], "measure_type": ["percentage", None, "percentage", "rate"]})
    on_scale, proportion = checks.target_checks(frame)
    assert on_scale.tolist() == [pd.NA, True, True, True]
    assert proportion.tolist() == [pd.NA, pd.NA, False, pd.NA]


def test_a_held_percentage_with_its_ratio_is_not_an_error():
    # A project not registered yet has no declared measure type: its value may be the
    # percentage or the plain ratio of numerator and denominator (SPEC 3.3: held, not an error).
    frame = typed_frame(M, [
        {**MEASURE_GOOD, "project_id": "SET-2030-001", "source_sha256": "a", "source_row": 2},
        {**MEASURE_GOOD, "project_id": "SET-2030-001", "value": 0.8, "source_sha256": "b", "source_row": 2},
        {**MEASURE_GOOD, "project_id": "SET-2030-001", "value": 60.0, "source_sha256": "c", "source_row": 2},
    ])
    checked = checks.measure_checks(frame, PRIMARY)
    assert checked["chk_value_agrees"].tolist() == [True, True, False]


def test_a_measure_takes_its_projects_primary_type_whatever_the_case_of_its_name():
    rows = [{**MEASURE_GOOD, "measure_name": "WRISTBAND %"},  # the primary measure, in capitals
            {**MEASURE_GOOD, "measure_name": "Wristband %"},
            {**MEASURE_GOOD, "measure_name": "Falls"},  # another project's primary measure
            {**COUNT, "value": 3.0},
            {**MEASURE_GOOD, "project_id": "SET-2030-001"},  # not registered
            {**MEASURE_GOOD, "project_id": None},
            {**MEASURE_GOOD, "measure_name": None}]
    frame = typed_frame(M, [{**row, "source_sha256": "a", "source_row": i + 2} for i, row in enumerate(rows)])
    types = checks.measure_checks(frame, PRIMARY)["measure_type"]
    assert [None if pd.isna(t) else t for t in types] == ["percentage", "percentage", None, "count", None, None, None]


def test_validation_is_quiet(reference, capfd):
    frames, _ = checked_frames(reference, [c for c in CASES if c.dataset == R][:2])
    validate({R: frames[R]}, reference, run_name="quiet")
    assert capfd.readouterr() == ("", "")


def test_great_expectations_is_imported_without_loading_scipy_stats_until_it_is_used():
    # GX imports scipy.stats with every expectation class (for distribution expectations
    # this project does not use): the runner makes it load on first use instead.
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from expectations.runner import import_gx\n"
        "gx = import_gx()\n"
        "stats = sys.modules['scipy.stats']\n"
        "assert 'scipy.stats._distn_infrastructure' not in sys.modules, 'scipy.stats was loaded'\n"
        "print(round(float(stats.entropy([1, 2], [2, 1])), 6))\n"
        "assert 'scipy.stats._distn_infrastructure' in sys.modules\n"
        "assert gx.expectations.ExpectColumnKLDivergenceToBeLessThan is not None\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.231049"


def test_validated_rows_are_not_kept_once_validation_is_over(reference):
    # Great Expectations keeps its last context in a module global, and that context's data
    # source every batch it validated: a copy of the rows, a quarter of a gigabyte at double
    # the benchmark's size, held until the process ended.
    n = 1237  # rows no other frame here has
    frame = typed_frame(M, [{**MEASURE_GOOD, "source_sha256": f"f{i}", "source_row": 2} for i in range(n)])
    checked = checks.measure_checks(frame, PRIMARY).assign(_row_id=range(n))
    result = validate({M: checked}, reference, run_name="let-go")
    assert result.success == {M: True} and result.results  # GX did validate them
    del frame, checked
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, pd.DataFrame) and len(o) == n]
