"""A nightly run rewrites the provisional workbooks only when the marts changed (or they are gone)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from transforms import run as steps

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


def _run(tmp_path: Path) -> steps.Run:
    shutil.copytree(REFERENCE, tmp_path / "reference")
    # The 5th of March: February's returns are still arriving (provisional), January's are final.
    return steps.open_run(tmp_path, as_of=date(2025, 3, 5), demo=True)


def test_provisional_written_again_only_when_the_build_changed(tmp_path):
    run = _run(tmp_path)
    run.build_fingerprint = "build-1"
    assert steps.reports_due(run) == [("2025-01", False), ("2025-02", True)]

    workbooks = []
    for code in ("A", "B"):
        path = run.root.reports / "2025-02" / f"{code}_qi_programme_2025-02.xlsx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        workbooks.append(path)
    steps.mark_reports(run, "2025-01", False)
    steps.mark_reports(run, "2025-02", True, workbooks)
    assert steps.reports_due(run) == []  # nothing changed: nothing to write

    run.build_fingerprint = "build-2"  # new data: the provisional period is written again
    assert steps.reports_due(run) == [("2025-02", True)]

    run.build_fingerprint = "build-1"
    workbooks[0].unlink()  # a workbook gone: written again
    assert steps.reports_due(run) == [("2025-02", True)]


def test_provisional_without_a_known_build_is_always_written(tmp_path):
    run = _run(tmp_path)
    path = run.root.reports / "2025-02" / "A_qi_programme_2025-02.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    steps.mark_reports(run, "2025-02", True, [path])  # no build fingerprint: nothing recorded
    assert ("2025-02", True) in steps.reports_due(run)
