"""`qi-pipeline serve`: a real local Prefect server, both deployments registered, clean stop on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import new_root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _deployments(api: str) -> list[dict]:
    try:
        response = httpx.post(f"{api}/deployments/filter", json={}, timeout=5)
        return response.json() if response.status_code == 200 else []
    except httpx.HTTPError:
        return []


def test_serve_registers_both_deployments_and_stops_on_sigterm(tmp_path):
    root = new_root(tmp_path / "root")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--data-dir", str(root), "--port", str(port), "--demo"],
        cwd=Path(__file__).resolve().parent.parent, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 150
        found: list[dict] = []
        while time.monotonic() < deadline and len(found) < 2:
            assert proc.poll() is None, proc.stdout.read()
            found = _deployments(api)
            time.sleep(1)
        by_name = {d["name"]: d for d in found}
        assert set(by_name) == {"nightly", "backfill"}
        [nightly_schedule] = by_name["nightly"]["schedules"]
        assert nightly_schedule["schedule"]["cron"] == "0 2 * * *"
        assert nightly_schedule["schedule"]["timezone"] == "Europe/London"
        assert by_name["backfill"]["schedules"] == []
        assert by_name["nightly"]["parameters"]["data_dir"] == str(root.resolve())

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 0, proc.stdout.read()
        with socket.socket() as sock:  # the local server went with it
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
