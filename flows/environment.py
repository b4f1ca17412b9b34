"""Prefect's environment: embedded, quiet, its home under the data root (SPEC 2, STACK.md).

Must run before ``prefect`` is imported: Prefect reads its settings at import time.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path


def configure_prefect(state_dir: Path) -> None:
    home = state_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH", str(Path(__file__).with_name("logging.yml")))
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QI_LOG_FILE", str(logs / f"qi-pipeline-{datetime.now(UTC):%Y-%m}.log"))
