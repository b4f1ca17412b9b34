"""Serve the two deployments: nightly on a schedule, backfill on demand (SPEC 9).

Scheduling needs a real Prefect server (the temporary one refuses to schedule,
STACK.md). With ``PREFECT_API_URL`` set, the deployments register there; otherwise a
local server is started for as long as ``serve`` runs. Stops cleanly on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

log = logging.getLogger("qi.serve")
NIGHTLY_CRON = "0 2 * * *"
TIMEZONE = "Europe/London"


def start_local_server(state: Path, port: int, timeout: float = 90.0) -> subprocess.Popen:
    """Start ``prefect server start`` on loopback and wait until it answers its health check."""
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = open(logs / "prefect-server.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy(),
    )
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/api/health"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Prefect server stopped at start-up; see {logs / 'prefect-server.log'}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"the Prefect server did not become healthy in {timeout:g} s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def serve(data_dir: Path, *, demo: bool, port: int) -> None:
    """Register and serve the deployments until SIGTERM or Ctrl-C."""
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server = start_local_server(data_dir / "state", port)
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        log.info("started a local Prefect server: UI and API at http://127.0.0.1:%d", port)

    def stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        from prefect import serve as prefect_serve
        from prefect.schedules import Cron

        from flows.backfill import backfill
        from flows.nightly import nightly

        parameters = {"data_dir": str(data_dir), "demo": demo}
        prefect_serve(
            nightly.to_deployment(name="nightly", schedule=Cron(NIGHTLY_CRON, timezone=TIMEZONE), parameters=parameters,
                                  description="Nightly: ingest, validate, publish marts, write the reports due."),
            backfill.to_deployment(name="backfill", parameters=parameters,
                                   description="Rebuild reporting periods: parameters first, last (YYYY-MM), "
                                               "as_known_at (date, optional), only_failed."),
            print_starting_message=False,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            stop_server(server)
        log.info("serve stopped")
