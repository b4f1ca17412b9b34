"""Settings and the data root's layout (SPEC 2, 9).

Settings come from the environment (``QI_*``); the data root is ``--data-dir``, else
``QI_DATA_DIR``, else ``./data``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Built-in key for the shipped synthetic demo only; never for real data (SPEC 9).
DEMO_PSEUDONYMISATION_KEY = "qi-demo-key-NOT-FOR-REAL-DATA"


class Settings(BaseSettings):
    """Everything a deployment configures, read from ``QI_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="QI_", extra="ignore")

    data_dir: Path = Path("data")
    pseudonymisation_key: SecretStr | None = None
    due_day: int = 10
    quiet_seconds: int = 60
    lock_timeout: float = 300.0
    keep_publishes: int = 3
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_from: str | None = None
    alert_to: str | None = None
    feedback_always: bool = False  # send feedback for clean submissions too, not only those with problems
    workers: int = Field(default=0, ge=0)  # processes writing workbooks: 0 one per core (at most 4), 1 none


class UsageError(Exception):
    """Bad usage, environment or reference data: a one-line message, exit code 2."""


@dataclass(frozen=True)
class DataRoot:
    """The folders of one data root (SPEC 2)."""

    root: Path

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def marts(self) -> Path:
        return self.root / "marts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def suppression_memo(self) -> Path:
        """Solved disclosure-control problems (transforms.disclosure): derived, safe to delete."""
        return self.state / "suppression_memo"

    @property
    def staged(self) -> Path:
        return self.state / "staged"

    def ensure(self) -> None:
        """Create the pipeline's folders; archive and quarantine are owner-only."""
        for path in (self.landing, self.marts, self.reports, self.docs, self.outbox, self.state, self.staged):
            path.mkdir(parents=True, exist_ok=True)
        for private in (self.raw, self.quarantine):
            private.mkdir(parents=True, exist_ok=True)
            os.chmod(private, 0o700)


def resolve_data_root(data_dir: Path | None, settings: Settings, *, create: bool = False) -> DataRoot:
    """Pick the data root; one without ``reference/`` is a usage error unless ``create``."""
    root = DataRoot((data_dir or settings.data_dir).expanduser().resolve())
    if not root.reference.is_dir():
        if not create:
            raise UsageError(
                f"{root.root} is not a data root: it has no reference/ folder "
                "(organisations.csv, commissioners.csv, cohorts.csv). "
                "Pass --data-dir or set QI_DATA_DIR, or run `qi-pipeline demo` to create one."
            )
        root.reference.mkdir(parents=True, exist_ok=True)
    return root
