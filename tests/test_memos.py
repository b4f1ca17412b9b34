"""The memos that spare a nightly run work it has done before.

- ``expectations.runner.ValidationMemo``: a row validated before, under the same suite, is
  not handed to Great Expectations again; its failures come from the memo.
- ``transforms.outcomes.SpcMemo``: a project whose inputs are unchanged is not analysed
  again; it only gets rows for the new reporting periods.

Either way the result must be exactly what the work done afresh gives.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from expectations.runner import ValidationMemo, validate
from tests.test_expectations import CASES, checked_frames, reference  # noqa: F401 - the fixture
from transforms import datasets, outcomes
from transforms.outcomes import SpcMemo
from transforms.storage import read_table, write_table

E, M = datasets.ENROLMENT_RETURN, datasets.MEASURE_DATA


# --- Validation --------------------------------------------------------------------------------


def rows_validated(result) -> dict[str, int]:
    """Rows GX looked at, per dataset (from the GX results themselves)."""
    return {r.suite_name: max(item.result.get("element_count", 0) for item in r.results) for r in result.results}


def issues_of(result) -> pd.DataFrame:
    return result.issues.sort_values(["dataset", "_row_id", "rule"], ignore_index=True)


def validated_into_memo(frames, reference, path) -> None:
    """Validate ``frames`` once with a memo at ``path`` and save it."""
    memo = ValidationMemo.open(path)
    validate(frames, reference, memo=memo)
    memo.save()


@pytest.fixture(scope="module")
def checked(reference):
    frames, _ = checked_frames(reference, CASES)
    return frames, validate(frames, reference, run_name="plain")


def test_rows_seen_before_are_not_validated_again(reference, checked, tmp_path):
    frames, plain = checked
    path = tmp_path / "memo.parquet"
    first = validate(frames, reference, run_name="first", memo=(memo := ValidationMemo.open(path)))
    memo.save()
    assert rows_validated(first) == {name: len(frame) for name, frame in frames.items()}
    pd.testing.assert_frame_equal(issues_of(first), issues_of(plain))
    assert len(plain.issues) > 50  # (the cases break every rule)

    again = validate(frames, reference, run_name="again", memo=ValidationMemo.open(path))
    assert again.results == []  # Great Expectations ran on nothing
    pd.testing.assert_frame_equal(issues_of(again), issues_of(plain))
    assert again.success == plain.success


def test_a_changed_row_alone_is_validated_and_its_new_failure_found(reference, checked, tmp_path):
    frames, plain = checked
    path = tmp_path / "memo.parquet"
    validated_into_memo(frames, reference, path)

    good = plain.issues.loc[plain.issues["dataset"] == E, "_row_id"]
    row_id = next(r for r in frames[E]["_row_id"] if r not in set(good))
    changed = dict(frames)
    changed[E] = frames[E].copy()
    changed[E].loc[changed[E]["_row_id"] == row_id, "cohort_code"] = "C99Z"
    result = validate(changed, reference, memo=ValidationMemo.open(path))

    assert rows_validated(result) == {E: 1}
    new = issues_of(result).merge(issues_of(plain), how="left", indicator=True)
    new = new[new["_merge"] == "left_only"]
    assert new[["dataset", "_row_id", "rule"]].values.tolist() == [[E, row_id, "cohort_known"]]
    assert len(result.issues) == len(plain.issues) + 1


def test_new_reference_data_validates_every_row_again(reference, checked, tmp_path):
    frames, plain = checked
    path = tmp_path / "memo.parquet"
    validated_into_memo(frames, reference, path)
    cohort = reference.cohorts.iloc[[-1]].assign(code="QQ01")
    newer = dataclasses.replace(reference, cohorts=pd.concat([reference.cohorts, cohort], ignore_index=True))

    result = validate(frames, newer, memo=ValidationMemo.open(path))

    # The cohort rules changed (their list of cohorts), so every dataset that has them is new.
    assert rows_validated(result)[E] == len(frames[E])
    where = ["dataset", "_row_id", "rule"]  # (the cohort rule's advice names the newest cohorts)
    pd.testing.assert_frame_equal(issues_of(result)[where], issues_of(plain)[where])


@pytest.mark.parametrize("broken", ["the memo", "a part"])
def test_an_unreadable_memo_means_validating_everything(reference, checked, tmp_path, caplog, broken):
    frames, plain = checked
    path = tmp_path / "memo.parquet"
    if broken == "the memo":
        path.write_bytes(b"PAR1 this is not parquet")
    else:  # a file and a part of it, the part broken
        names = sorted(frames)
        validated_into_memo({names[0]: frames[names[0]]}, reference, path)
        validated_into_memo({names[1]: frames[names[1]]}, reference, path)
        (part,) = ValidationMemo.parts_folder(path).iterdir()
        part.write_bytes(b"PAR1 not parquet")

    result = validate(frames, reference, memo=(memo := ValidationMemo.open(path)))
    memo.save()

    assert "validation memo unreadable" in caplog.text
    assert rows_validated(result) == {name: len(frame) for name, frame in frames.items()}
    pd.testing.assert_frame_equal(issues_of(result), issues_of(plain))
    parts = ValidationMemo.parts_folder(path)
    assert not parts.exists() or list(parts.iterdir()) == []  # the memo was rewritten whole
    assert validate(frames, reference, memo=ValidationMemo.open(path)).results == []


def test_a_memo_with_entries_sharing_a_key_answers_from_the_newest(tmp_path):
    """Entries repeated, or sharing (suite, h1) with another h2: the newest one is used,
    and a row whose h2 matches no entry kept is not taken for a known one."""
    import numpy as np

    frame = pd.DataFrame({"suite": ["s", "s", "s", "t"], "h1": np.array([1, 1, 1, 1], dtype=np.uint64),
                          "h2": np.array([5, 5, 6, 5], dtype=np.uint64), "failed": ["0", "1", "2", ""]})
    memo = ValidationMemo(tmp_path / "memo.parquet", frame)

    found = memo.lookup("s", np.array([1, 1], dtype=np.uint64), np.array([6, 5], dtype=np.uint64))

    assert found[0] == "2" and found[1] is None  # (s, 1, 5) lost to the newer (s, 1, 6)
    assert memo.lookup("t", np.array([1], dtype=np.uint64), np.array([5], dtype=np.uint64)).tolist() == [""]


def test_each_save_adds_a_part_until_the_memo_is_rewritten_with_them(reference, checked, tmp_path, monkeypatch):
    from expectations import runner

    monkeypatch.setattr(runner, "MEMO_MERGE_PARTS_AT", 2)  # (12 in use)
    frames, _ = checked
    path = tmp_path / "memo.parquet"
    parts = ValidationMemo.parts_folder(path)
    # One dataset at a time, a run each: the first writes the memo, the next add parts.
    names = sorted(frames)
    validated_into_memo({names[0]: frames[names[0]]}, reference, path)
    base = path.read_bytes()
    validated_into_memo({names[1]: frames[names[1]]}, reference, path)
    assert path.read_bytes() == base and [p.name for p in sorted(parts.iterdir())] == ["000001.parquet"]
    validated_into_memo({names[2]: frames[names[2]]}, reference, path)  # not a second part: rewritten whole
    assert path.read_bytes() != base and list(parts.iterdir()) == []
    assert validate(frames, reference, memo=ValidationMemo.open(path)).results == []  # every row remembered
    # A row seen in a part is remembered too, and gives the same issues.
    changed = {**frames, E: pd.concat([frames[E], frames[E].tail(1).assign(_row_id=10_000, cohort_code="C99Z")],
                                      ignore_index=True)}
    validated_into_memo(changed, reference, path)
    assert [p.name for p in sorted(parts.iterdir())] == ["000001.parquet"]
    again = validate(changed, reference, memo=ValidationMemo.open(path))
    assert again.results == []
    pd.testing.assert_frame_equal(issues_of(again), issues_of(validate(changed, reference)))
    assert (again.issues["_row_id"] == 10_000).any()


def test_a_memo_rewritten_but_not_cleared_of_its_parts_reads_the_same(reference, checked, tmp_path):
    # Stopped between rewriting the memo and deleting the parts: entries twice, none lost.
    frames, plain = checked
    path = tmp_path / "memo.parquet"
    names = sorted(frames)
    validated_into_memo({names[0]: frames[names[0]]}, reference, path)
    validated_into_memo({names[1]: frames[names[1]]}, reference, path)
    (part,) = ValidationMemo.parts_folder(path).iterdir()
    kept = part.read_bytes()
    memo = ValidationMemo.open(path)
    memo._whole = True  # (the next save rewrites it whole)
    validate(frames, reference, memo=memo)
    memo.save()
    part.write_bytes(kept)  # as if deleting it had not happened

    again = validate(frames, reference, memo=ValidationMemo.open(path))
    assert again.results == []
    pd.testing.assert_frame_equal(issues_of(again), issues_of(plain))


# --- SPC ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def programme():
    from tests.test_reports_commissioner import synthetic_marts

    marts = synthetic_marts(n_projects=40, months=20, with_measures=True)
    periods = [f"{y}-{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13)]
    return marts["dim_project"], marts["fct_measure"], periods


def built_afresh(projects, measure, periods):
    return outcomes.build_project_outcomes(projects, measure, periods), outcomes.build_spc_points(projects, measure)


def test_a_new_month_from_the_memo_equals_the_marts_built_afresh(programme, tmp_path):
    projects, measure, periods = programme
    last = measure["period"].max()
    earlier = measure[measure["period"] < last]
    outcomes.build_outcome_marts(projects, earlier, periods[:-1], memo_path=tmp_path)

    with_memo = outcomes.build_outcome_marts(projects, measure, periods, memo_path=tmp_path)

    afresh = built_afresh(projects, measure, periods)
    assert len(afresh[0]) > 200 and len(afresh[1]) > 200
    pd.testing.assert_frame_equal(with_memo[0], afresh[0])
    pd.testing.assert_frame_equal(with_memo[1], afresh[1])


def test_unchanged_projects_come_from_the_memo_and_changed_ones_are_analysed(programme, tmp_path):
    projects, measure, periods = programme
    outcomes.build_outcome_marts(projects, measure, periods, memo_path=tmp_path)
    # Mark every remembered explanation, to see which rows the next build takes from the memo.
    path = tmp_path / SpcMemo.OUTCOMES
    remembered = read_table(path, SpcMemo.OUTCOMES_SCHEMA)
    write_table(remembered.assign(explanation="(from the memo)"), path, SpcMemo.OUTCOMES_SCHEMA)
    changed = projects.copy()
    moved = changed["project_id"].iloc[3]
    changed.loc[changed["project_id"] == moved, "target"] = 1.0

    result, _ = outcomes.build_outcome_marts(changed, measure, periods, memo_path=tmp_path)

    from_memo = result["explanation"] == "(from the memo)"
    assert not from_memo[result["project_id"] == moved].any()
    assert from_memo[result["project_id"] != moved].all()
    afresh, _ = built_afresh(changed, measure, periods)
    pd.testing.assert_frame_equal(result[~from_memo].drop(columns="explanation"),
                                  afresh[~from_memo].drop(columns="explanation"))


def test_a_register_row_sent_again_unchanged_keeps_its_projects_memo(programme, tmp_path):
    """A register re-sent with the same content (new file, new received_at) changes only
    dim_project's lineage: nothing is analysed again, and the marts are the same."""
    projects, measure, periods = programme
    first = outcomes.build_outcome_marts(projects, measure, periods, memo_path=tmp_path)
    path = tmp_path / SpcMemo.OUTCOMES
    remembered = read_table(path, SpcMemo.OUTCOMES_SCHEMA)
    write_table(remembered.assign(explanation="(from the memo)"), path, SpcMemo.OUTCOMES_SCHEMA)
    resent = projects.assign(source_sha256="f" * 64, source_row=projects.get("source_row", 0) + 1,
                             received_at=pd.Timestamp("2026-01-05T09:00", tz="UTC"))
    assert not resent.equals(projects)

    result, points = outcomes.build_outcome_marts(resent, measure, periods, memo_path=tmp_path)

    assert (result["explanation"] == "(from the memo)").all()
    pd.testing.assert_frame_equal(result.drop(columns="explanation"), first[0].drop(columns="explanation"))
    pd.testing.assert_frame_equal(points, first[1])


def test_columns_the_analysis_does_not_read_do_not_touch_the_memo(programme, tmp_path):
    """The build's measure rows carry the history's file_name and superseded flag; another
    caller's may carry other columns. Nothing is analysed again for them."""
    projects, measure, periods = programme
    first = outcomes.build_outcome_marts(projects, measure, periods, memo_path=tmp_path)
    path = tmp_path / SpcMemo.POINTS
    remembered = read_table(path, SpcMemo.POINTS_SCHEMA)
    write_table(remembered.assign(rule="(from the memo)"), path, SpcMemo.POINTS_SCHEMA)
    carried = measure.assign(file_name="LEAD measures.xlsx", superseded=False)

    result, points = outcomes.build_outcome_marts(projects, carried, periods, memo_path=tmp_path)

    assert (points["rule"] == "(from the memo)").all()
    pd.testing.assert_frame_equal(points.drop(columns="rule"), first[1].drop(columns="rule"))
    pd.testing.assert_frame_equal(result, first[0])


def test_a_new_month_analyses_only_the_newest_prefix_and_a_revision_redoes_what_follows_it(programme, tmp_path):
    projects, measure, periods = programme
    last = measure["period"].max()
    outcomes.build_outcome_marts(projects, measure[measure["period"] < last], periods, memo_path=tmp_path)
    path = tmp_path / SpcMemo.OUTCOMES
    remembered = read_table(path, SpcMemo.OUTCOMES_SCHEMA)
    write_table(remembered.assign(explanation="(from the memo)"), path, SpcMemo.OUTCOMES_SCHEMA)
    # One project's value three periods back is revised as the new month arrives.
    revised = measure.copy()
    project = revised.loc[revised["period"] == last, "project_id"].iloc[0]
    back = sorted(revised.loc[revised["project_id"] == project, "period"])[-4]
    at = (revised["project_id"] == project) & (revised["period"] == back)
    revised.loc[at, "value"] = revised.loc[at, "value"] + 1.0

    result, _ = outcomes.build_outcome_marts(projects, revised, periods, memo_path=tmp_path)

    from_memo = result["explanation"] == "(from the memo)"
    newest = result["latest_period"] == last.strftime("%Y-%m-%d")
    assert newest.any() and not from_memo[newest].any()  # the new month's analyses are new
    others = result["project_id"] != project
    assert from_memo[others & ~newest].all()  # every earlier prefix of the other projects is remembered
    mine = result[result["project_id"] == project]
    assert from_memo[mine.index[mine["latest_period"] < back.strftime("%Y-%m-%d")]].all()
    assert not from_memo[mine.index[mine["latest_period"] >= back.strftime("%Y-%m-%d")]].any()
    afresh, _ = built_afresh(projects, revised, periods)
    pd.testing.assert_frame_equal(result[~from_memo].drop(columns="explanation"),
                                  afresh[~from_memo].drop(columns="explanation"))


def test_an_unreadable_spc_memo_means_analysing_everything(programme, tmp_path, caplog):
    projects, measure, periods = programme
    (tmp_path / SpcMemo.POINTS).write_bytes(b"not parquet")
    (tmp_path / SpcMemo.OUTCOMES).write_bytes(b"not parquet")

    result = outcomes.build_outcome_marts(projects, measure, periods, memo_path=tmp_path)

    assert "SPC memo unreadable" in caplog.text
    afresh = built_afresh(projects, measure, periods)
    pd.testing.assert_frame_equal(result[0], afresh[0])
    pd.testing.assert_frame_equal(result[1], afresh[1])
    assert len(read_table(tmp_path / SpcMemo.POINTS, SpcMemo.POINTS_SCHEMA)) == len(afresh[1])


def test_a_suite_with_a_rule_across_rows_is_always_validated_whole(reference, checked, tmp_path, monkeypatch):
    from expectations import runner
    from expectations.checks import Check

    frames, _ = checked
    whole = Check("values_plausible", "value", "warning", "A value is implausibly large.", "Check the values.",
                  "ExpectColumnMaxToBeBetween", {"column": "value", "max_value": 1e12})
    build = runner.SUITES[M]
    monkeypatch.setitem(runner.SUITES, M, lambda ref: [*build(ref), whole])
    path = tmp_path / "memo.parquet"
    validated_into_memo(frames, reference, path)

    again = validate(frames, reference, memo=ValidationMemo.open(path))

    assert rows_validated(again) == {M: len(frames[M])}  # the other datasets came from the memo


def test_values_of_different_types_never_share_a_memo_key():
    from expectations.runner import row_keys

    frame = pd.DataFrame({"band": pd.array([5, "5", 5.0, None], dtype=object)})
    h1, h2 = row_keys(frame, ["band"])
    assert len(set(zip(h1.tolist(), h2.tolist()))) == 4
