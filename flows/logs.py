"""Log handlers for runs: plain lines for people, full detail in a file.

The console never shows a traceback (SPEC 9: never a traceback to a person); the
run log file under ``state/logs/`` keeps them for whoever investigates.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL message``, and for an exception only its one-line summary."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        # Prefect puts the whole traceback into some messages: keep the first line.
        if "Traceback (most recent call last)" in text:
            text = text.split("\n", 1)[0]
        return text


class RunFileHandler(logging.FileHandler):
    """Appends everything, tracebacks included, to ``$QI_LOG_FILE`` (owner-only)."""

    def __init__(self) -> None:
        path = Path(os.environ.get("QI_LOG_FILE", "qi-pipeline.log"))
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, encoding="utf-8", delay=False)
        os.chmod(path, 0o600)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
