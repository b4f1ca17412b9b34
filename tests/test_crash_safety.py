"""A run killed with SIGKILL at any point leaves the last publish intact; the next run finishes the job.

Real runs in subprocesses (each with its own temporary Prefect server, so the whole
process group is killed), paused at named points (transforms/faults.py), then killed.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import marts, new_root
from transforms.demo import generate
from transforms.marts import SCHEMAS

REPO = Path(__file__).resolve().parent.parent


def _run(root: Path, pause_at: str | None = None, as_of: str | None = None, timeout: float = 240) -> int | None:
    """Run the nightly job; with ``pause_at``, kill its process group when it gets there."""
    env = {**os.environ, "QI_QUIET_SECONDS": "0"}
    env.pop("QI_PAUSE_AT", None)
    marker = root / "paused"
    marker.unlink(missing_ok=True)
    if pause_at:
        env.update(QI_PAUSE_AT=pause_at, QI_PAUSE_FILE=str(marker))
    args = ["--as-of", as_of] if as_of else []
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", "--data-dir", str(root), "--demo", *args], cwd=REPO,
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not pause_at:
        return proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, f"the run ended before reaching {pause_at}"
        assert time.monotonic() < deadline, f"the run never reached {pause_at}"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return None


def _readable(root: Path) -> dict[str, pd.DataFrame] | None:
    current = root / "marts" / "current"
    if not current.exists():
        return None
    tables = marts(current)
    assert set(tables) == set(SCHEMAS)
    return tables


@pytest.fixture(scope="module")
def reference_marts(tmp_path_factory):
    root = new_root(tmp_path_factory.mktemp("uninterrupted"))
    generate(root / "landing", root / "reference", months=6, end_period="2026-10")
    assert _run(root) == 1  # the demo plants bad rows: done, needs attention
    return marts(root / "marts" / "current")


def test_killed_runs_leave_the_last_publish_intact_and_the_next_run_completes(tmp_path, reference_marts):
    root = new_root(tmp_path / "killed")
    generate(root / "landing", root / "reference", months=6, end_period="2026-10")
    assert _run(root, as_of="2026-08-15") in (0, 1)  # an earlier night: the publish readers see
    published = _readable(root)
    for point in ("archive:10", "stage", "staged", "validate", "publish:6"):
        _run(root, pause_at=point)
        still = _readable(root)
        for name, frame in published.items():
            pd.testing.assert_frame_equal(still[name], frame, obj=f"killed at {point}: {name}")
    _run(root, pause_at="published")  # killed after the switch, before the manifest was updated
    assert _run(root) in (0, 1)
    final = marts(root / "marts" / "current")
    for name, frame in reference_marts.items():
        pd.testing.assert_frame_equal(final[name], frame, obj=name)
    manifest = pd.read_parquet(root / "raw" / "manifest.parquet")
    assert manifest["sha256"].is_unique
    assert not manifest["outcome"].isin(["pending", "staged"]).any()
    assert not list((root / "marts" / "publishes").glob(".*.partial"))
