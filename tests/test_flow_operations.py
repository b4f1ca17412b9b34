"""Backfills, as-known-at rebuilds and retraction, through the real flows (one Prefect harness)."""

from datetime import date

import pandas as pd
import pytest

from tests.helpers import file_hashes, marts, new_root
from transforms.demo import generate


@pytest.fixture(scope="module")
def root(tmp_path_factory, prefect_harness):
    """A data root whose first nightly run was as of 15 March 2026, snapshotted, then a run as of today."""
    from flows.nightly import nightly

    base = new_root(tmp_path_factory.mktemp("ops"))
    generate(base / "landing", base / "reference", months=14, end_period="2026-10")
    nightly(data_dir=str(base), as_of=date(2026, 3, 15), demo=True)
    as_of_march = marts(base / "marts" / "current")
    nightly(data_dir=str(base), demo=True)
    return base, as_of_march


def test_as_known_at_build_equals_what_the_nightly_run_on_that_date_produced(root):
    from flows.backfill import backfill

    base, as_of_march = root
    current_before = file_hashes(base / "marts" / "current")
    result = backfill(first="2026-01", last="2026-02", as_known_at=date(2026, 3, 15), data_dir=str(base), demo=True)
    assert result["failed"] == []
    rebuilt = marts(base / "asof" / "2026-03-15" / "marts" / "current")
    assert rebuilt.keys() == as_of_march.keys()
    for name, frame in as_of_march.items():
        pd.testing.assert_frame_equal(rebuilt[name], frame, obj=name)
    # Never replaces the current publish; the reports go under asof/ too.
    assert file_hashes(base / "marts" / "current") == current_before
    assert (base / "asof" / "2026-03-15" / "reports" / "2026-02" / "NLICB_qi_programme_2026-02.xlsx").exists()


def test_a_failing_period_does_not_stop_the_others_and_only_failed_repeats_it(root):
    from flows.backfill import backfill

    base, _ = root
    blocker = base / "reports" / "restated" / "2026-05"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # writing 2026-05's reports fails
    result = backfill(first="2026-04", last="2026-06", data_dir=str(base), demo=True)
    statuses = {r["period"]: r["status"] for r in result["periods"]}
    assert statuses == {"2026-04": "succeeded", "2026-05": "failed", "2026-06": "succeeded"}
    failed = next(r for r in result["periods"] if r["status"] == "failed")
    assert "2026-05" in failed["reason"] or "Not a directory" in failed["reason"] or "exists" in failed["reason"]
    assert (base / "reports" / "restated" / "2026-04" / "NLICB_qi_programme_2026-04.xlsx").exists()

    blocker.unlink()
    again = backfill(only_failed=True, data_dir=str(base), demo=True)
    assert [(r["period"], r["status"]) for r in again["periods"]] == [("2026-05", "succeeded")]
    assert again["backfill_id"] == result["backfill_id"]
    assert (base / "reports" / "restated" / "2026-05" / "NLICB_qi_programme_2026-05.xlsx").exists()


def test_retracted_file_is_kept_but_the_next_run_rebuilds_without_it(root):
    from flows.nightly import nightly
    from transforms import run as steps

    base, _ = root
    before = marts(base / "marts" / "current")
    manifest = pd.read_parquet(base / "raw" / "manifest.parquet")
    register = manifest[manifest["datasets"].str.contains("project_register") & (manifest["outcome"] == "accepted")]
    target = register.sort_values("received_at").iloc[0]
    run = steps.open_run(base, need_key=False)
    steps.retract(run, target["sha256"][:12], "sent by mistake")
    nightly(data_dir=str(base), demo=True)
    after = marts(base / "marts" / "current")
    assert target["sha256"] not in set(after["dim_project"]["source_sha256"])
    assert target["sha256"] not in set(after["fct_measure_history"]["source_sha256"])
    assert len(after["fct_measure_history"]) <= len(before["fct_measure_history"])
    archived = pd.read_parquet(base / "raw" / "manifest.parquet").set_index("sha256").loc[target["sha256"]]
    assert archived["retracted"] and archived["retracted_reason"] == "sent by mistake"
    assert (base / "raw" / archived["archive_path"]).exists()


def test_reference_change_revalidates_the_archive(root):
    """Rows rejected for an unknown cohort load once the cohort is added (SPEC 4)."""
    from flows.nightly import nightly

    base, _ = root
    issues = pd.read_parquet(base / "marts" / "current" / "data_quality_issues.parquet")
    unknown = issues[(issues["rule"] == "cohort_known") & (issues["dataset"] == "enrolment_return")]
    assert len(unknown), "the demo plants an unknown cohort"
    code = unknown["value"].iloc[0]
    with open(base / "reference" / "cohorts.csv", "a") as handle:
        handle.write(f"{code},2025/26,2020-01-01,2030-12-31\n")
    nightly(data_dir=str(base), demo=True)
    after = pd.read_parquet(base / "marts" / "current" / "data_quality_issues.parquet")
    assert not ((after["rule"] == "cohort_known") & (after["value"] == code)).any()
    enrolment = pd.read_parquet(base / "marts" / "current" / "fct_enrolment.parquet")
    assert (enrolment["cohort_code"] == code).sum() >= 1
    manifest = pd.read_parquet(base / "raw" / "manifest.parquet")
    assert (manifest["kind"] == "reference").sum() == 2  # both versions archived by hash


def test_restore_from_the_archive_alone_gives_the_same_marts(root):
    """With the staged store gone (a restore from backup), the next run re-stages the archive."""
    import shutil

    from flows.nightly import nightly

    base, _ = root
    before = marts(base / "marts" / "current")
    shutil.rmtree(base / "state" / "staged")
    shutil.rmtree(base / "marts")
    nightly(data_dir=str(base), demo=True)
    after = marts(base / "marts" / "current")
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)
