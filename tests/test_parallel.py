"""Workbooks written in worker processes (transforms.parallel): the same bytes as written here.

The commissioner workbooks of a period are written in worker processes that read the
published marts from Parquet; the feedback workbooks are sent to them in batches. Both
must give, byte for byte, what the same jobs give in the calling process.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from reports.feedback import FEEDBACK_IN_PROCESS_BELOW, build_feedback_workbook, write_feedback_workbooks
from reports.period import write_reports
from tests.test_reports_commissioner import AS_OF, PRODUCED, small_marts
from tests.test_reports_feedback import _issues, _notes
from transforms import parallel
from transforms.publish import publish
from transforms.reference import load_reference
from transforms.run import FeedbackJob

ROOT = Path(__file__).resolve().parents[1]


def _fails_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("job 3 is bad")
    return n * n


def _pid(_: int) -> int:
    return os.getpid()


def test_jobs_come_back_in_order_from_worker_processes():
    assert parallel.run_jobs(_fails_on_three, [5, 4, 2, 1, 0], workers=2) == [25, 16, 4, 1, 0]
    pids = set(parallel.run_jobs(_pid, list(range(8)), workers=2))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_a_failing_job_raises_its_own_error_here():
    with pytest.raises(ValueError, match="job 3 is bad"):
        parallel.run_jobs(_fails_on_three, [1, 2, 3, 4], workers=2)
    assert parallel.run_jobs(_fails_on_three, [6, 7], workers=2) == [36, 49]  # the pool is still usable


@parallel.worker_cache
def _read_once(name: str) -> list[int]:
    return list(range(1000))


def _uses_the_cache(job: int) -> tuple[int, int]:
    _read_once("marts")
    return os.getpid(), _read_once.cache_info().currsize


def _sees_the_cache(job: int) -> tuple[int, int]:
    return os.getpid(), _read_once.cache_info().currsize


def test_a_worker_forgets_its_cache_when_it_goes_on_to_another_kind_of_job():
    parallel.shutdown()
    first = parallel.run_jobs(_uses_the_cache, list(range(6)), workers=2)
    assert {size for _, size in first} == {1}
    # Jobs of the same kind find it there; the first job of another kind in each worker does not.
    again = parallel.run_jobs(_uses_the_cache, list(range(6)), workers=2)
    assert {pid for pid, _ in again} <= {pid for pid, _ in first}
    then = parallel.run_jobs(_sees_the_cache, list(range(6)), workers=2)
    assert {pid for pid, _ in then} <= {pid for pid, _ in first}
    assert {size for _, size in then} == {0}


def _dies_in_a_worker(job: tuple[int, int]) -> int:
    parent, n = job
    if os.getpid() != parent:
        os._exit(9)  # as if killed or out of memory
    return n + 1


def test_jobs_are_done_here_when_a_worker_dies(caplog):
    jobs = [(os.getpid(), n) for n in range(4)]
    assert parallel.run_jobs(_dies_in_a_worker, jobs, workers=2) == [1, 2, 3, 4]
    assert "worker processes failed" in caplog.text
    assert parallel.run_jobs(_pid, [0, 1], workers=2) != [os.getpid()] * 2  # a new pool next time


def test_one_worker_or_few_jobs_run_in_this_process():
    assert parallel.run_jobs(_pid, [0, 1, 2], workers=1) == [os.getpid()] * 3
    assert parallel.run_jobs(_pid, [0, 1, 2], workers=2, in_process_below=4) == [os.getpid()] * 3


def test_worker_count_setting():
    assert parallel.worker_count(3) == 3
    assert 1 <= parallel.worker_count(0) <= parallel.MAX_AUTO_WORKERS
    with pytest.raises(ValueError):
        parallel.worker_count(-1)


def test_commissioner_workbooks_from_workers_match_those_written_here(tmp_path):
    reference = load_reference(ROOT / "data" / "reference")
    tables = small_marts()
    folder = publish(tmp_path / "marts", tables, {"publish_id": "p1"}, keep=2)
    due = [("2025-05", False), ("2025-06", True)]
    here = write_reports(tmp_path / "here", reference, due, produced_at=PRODUCED, data_as_of=AS_OF, tables=tables)
    there = write_reports(tmp_path / "there", reference, due, produced_at=PRODUCED, data_as_of=AS_OF, marts=folder,
                          workers=2)
    assert list(here) == list(there) == due
    codes = sorted(reference.commissioners["code"])
    for key in due:
        assert [p.name.split("_qi_programme_")[0] for p in there[key]] == codes  # commissioner order kept
        for a, b in zip(here[key], there[key], strict=True):
            assert a.relative_to(tmp_path / "here") == b.relative_to(tmp_path / "there")
            assert a.read_bytes() == b.read_bytes(), b.name


def feedback_jobs(n: int) -> list[FeedbackJob]:
    """``n`` submissions from four organisations: clean ones, and some with every kind of issue."""
    empty_issues, empty_notes = _issues().iloc[:0], _notes().iloc[:0]
    jobs = []
    for i in range(n):
        messy = i % 3 == 0
        jobs.append(FeedbackJob(
            sha256=f"{i:08x}" + "ab" * 28, period=f"2025-0{1 + i % 6}", file_name=f"Return {i} (June).xlsx",
            organisation_code=("LEAD", "RPA", "RPB", "VCS1")[i % 4],
            received_at=datetime(2025, 1 + i % 6, 11, 9, i % 60, tzinfo=UTC),
            outcome="accepted_with_errors" if messy else "accepted", reason=None,
            counts={"rows_received": 40 + i, "rows_accepted": 40 + i - (3 if messy else 0),
                    "rows_rejected": 3 if messy else 0, "warnings": 2 if messy else 0},
            issues=_issues() if messy else empty_issues, notes=_notes() if messy else empty_notes))
    return jobs


def test_feedback_workbooks_from_workers_match_those_written_here(tmp_path):
    jobs = feedback_jobs(FEEDBACK_IN_PROCESS_BELOW + 6)
    produced = datetime(2025, 7, 11, 2, 0, tzinfo=UTC)
    paths = write_feedback_workbooks(tmp_path / "reports", jobs, produced_at=produced, workers=2)
    assert len(paths) == len(jobs) and len(set(paths)) == len(jobs)
    for job, path in zip(jobs[::9], paths[::9], strict=True):
        assert job.sha256[:8] in path.name
        here = build_feedback_workbook(tmp_path / "here" / path.name, file_name=job.file_name,
                                       organisation_code=job.organisation_code, received_at=job.received_at,
                                       outcome=job.outcome, reason=job.reason, counts=job.counts,
                                       issues=job.issues, notes=job.notes, produced_at=produced)
        assert here.read_bytes() == path.read_bytes(), path.name
    assert pd.Series([p.parent.name for p in paths]).eq("feedback").all()


def test_files_staged_in_workers_give_the_same_store_and_manifest(tmp_path, monkeypatch):
    """A small demo month by month: every file read in worker processes, then all read here."""
    from transforms import load
    from transforms import run as steps
    from transforms.demo import ensure_demo

    ensure_demo(tmp_path / "demo", scale=0.15, months=4, end_period="2025-03")
    monkeypatch.setattr(load, "STAGE_IN_PROCESS_BELOW", 2)  # workers even for a handful of files
    outcomes = {}
    for workers in (2, 1):
        root = tmp_path / f"root-{workers}"
        shutil.copytree(tmp_path / "demo", root)
        monkeypatch.setenv("QI_WORKERS", str(workers))
        monkeypatch.setenv("QI_QUIET_SECONDS", "0")
        run = steps.open_run(root, as_of=date(2025, 4, 20), demo=True)
        assert run.workers == workers
        steps.ingest(run)
        staged = steps.stage(run)
        store = load.StagedStore.open(run.root.staged)
        manifest = run.archive.manifest.sort_values("sha256", ignore_index=True)
        outcomes[workers] = (sorted(staged), manifest.drop(columns=["first_seen_run"]),
                             {name: frame.sort_values(["source_sha256", "source_sheet", "source_row"],
                                                      ignore_index=True) for name, frame in store.tables.items()},
                             store.parse_issues.sort_values(["source_sha256", "sheet", "row", "column"],
                                                            ignore_index=True))
    staged2, manifest2, tables2, issues2 = outcomes[2]
    staged1, manifest1, tables1, issues1 = outcomes[1]
    assert len(staged2) >= 20 and staged2 == staged1
    pd.testing.assert_frame_equal(manifest2, manifest1)
    for name in tables1:
        pd.testing.assert_frame_equal(tables2[name], tables1[name], obj=name)
    pd.testing.assert_frame_equal(issues2, issues1)


def test_project_outcomes_from_workers_match_those_built_here(monkeypatch):
    from tests.test_reports_commissioner import synthetic_marts
    from transforms import outcomes

    marts = synthetic_marts(n_projects=40, months=20, with_measures=True)
    projects, measure = marts["dim_project"], marts["fct_measure"]
    periods = [f"{y}-{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13)]
    monkeypatch.setattr(outcomes, "SPC_IN_PROCESS_BELOW", 2)
    there = outcomes.build_outcome_marts(projects, measure, periods, workers=2)
    here = outcomes.build_project_outcomes(projects, measure, periods), outcomes.build_spc_points(projects, measure)
    assert len(there[0]) > 200 and len(there[1]) > 200
    pd.testing.assert_frame_equal(there[0], here[0])
    pd.testing.assert_frame_equal(there[1], here[1])
