"""Atomic publish of the marts, and the run lock (SPEC 6, 9).

A publish writes every table into ``marts/publishes/<id>/`` and then switches the
``marts/current`` symlink in one ``rename``: a reader that resolves ``current`` once
sees the previous complete set or the new one, never a mix. Old sets are removed after
``keep`` publishes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from transforms.faults import checkpoint
from transforms.marts import SCHEMAS
from transforms.storage import atomic_write_bytes, fsync_dir, read_table, write_table

BUILD_INFO = "_build.json"


class LockHeld(Exception):
    """Another run holds the data root's lock (exit code 3)."""


@contextmanager
def run_lock(state: Path, timeout: float) -> Iterator[FileLock]:
    """Hold the data root's OS-level lock (fcntl.flock): the kernel releases it if the holder dies."""
    state.mkdir(parents=True, exist_ok=True)
    lock = FileLock(state / "run.lock", timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockHeld(
            f"another run holds the lock {lock.lock_file}; waited {timeout:g} s (QI_LOCK_TIMEOUT). Try again later."
        ) from None
    try:
        yield lock
    finally:
        lock.release()


def current_dir(marts: Path) -> Path | None:
    link = marts / "current"
    return link.resolve() if link.exists() else None


def current_build(marts: Path) -> dict | None:
    folder = current_dir(marts)
    if folder is None or not (folder / BUILD_INFO).exists():
        return None
    return json.loads((folder / BUILD_INFO).read_text())


def publish(marts: Path, tables: dict[str, pd.DataFrame], info: dict, *, keep: int) -> Path:
    """Write a complete new set and switch ``current`` to it; return its folder."""
    publishes = marts / "publishes"
    publishes.mkdir(parents=True, exist_ok=True)
    folder = publishes / info["publish_id"]
    if folder.exists():
        shutil.rmtree(folder)
    staging = publishes / f".{info['publish_id']}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    for index, (name, frame) in enumerate(tables.items(), start=1):
        write_table(frame, staging / f"{name}.parquet", SCHEMAS[name])
        checkpoint(f"publish:{index}")
    atomic_write_bytes(staging / BUILD_INFO, json.dumps(info, indent=2, sort_keys=True).encode())
    fsync_dir(staging)
    os.rename(staging, folder)
    tmp_link = marts / ".current.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(Path("publishes") / folder.name)
    os.replace(tmp_link, marts / "current")
    fsync_dir(marts)
    _prune(publishes, keep=keep, current=folder)
    return folder


def _prune(publishes: Path, *, keep: int, current: Path) -> None:
    done = sorted((p for p in publishes.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in done[: max(0, len(done) - max(keep, 1))]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
    for partial in publishes.glob(".*.partial"):
        shutil.rmtree(partial, ignore_errors=True)


def read_mart(marts: Path, name: str) -> pd.DataFrame:
    """Read one table of the current publish, checked against its schema."""
    folder = current_dir(marts)
    if folder is None:
        raise FileNotFoundError(f"nothing published yet under {marts}")
    return read_table(folder / f"{name}.parquet", SCHEMAS[name])
