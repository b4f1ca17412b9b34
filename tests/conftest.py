"""Test set-up: Prefect quiet and local, its home in a temporary folder (STACK.md)."""

import os
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="qi-prefect-home-"))
os.environ["PREFECT_HOME"] = str(_HOME)
os.environ["QI_LOG_FILE"] = str(_HOME / "qi-tests.log")
os.environ.setdefault("QI_QUIET_SECONDS", "0")

from flows.environment import configure_prefect  # noqa: E402

configure_prefect(_HOME)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness for the whole session (about 9 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
