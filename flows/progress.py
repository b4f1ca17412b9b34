"""A progress bar in a terminal, plain log lines otherwise (SPEC 9)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("qi.progress")


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[str], None]]:
    """Yield ``advance(label)``: a rich bar on a terminal, else one log line per step."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[label]}"), transient=False) as bar:
            task = bar.add_task(description, total=total, label="")
            yield lambda label: bar.update(task, advance=1, label=label)
        return
    done = 0

    def advance(label: str) -> None:
        nonlocal done
        done += 1
        log.info("%s: %d/%d %s", description, done, total, label)

    yield advance
