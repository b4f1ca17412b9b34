"""Run independent jobs (a file to read, a workbook to write) on the machine's other cores.

Reading a spreadsheet into typed rows and writing a workbook are pure Python (calamine's
cells are typed in Python, xlsxwriter writes XML in Python), so threads would not help;
a pool of worker processes does. The pool is started once per process and kept (starting a worker costs
about half a second: a new interpreter importing pandas and xlsxwriter), with the
``spawn`` method: the caller may be a Prefect flow with threads of its own, which a
forked child must not inherit. Workers are in the caller's process group, so stopping a
run stops them too.

``QI_WORKERS`` (``Settings.workers``) sets the number of worker processes; 0 means one
per core available to this process, 1 runs every job in the calling process.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import gc
import importlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

log = logging.getLogger("qi.parallel")

T = TypeVar("T")
R = TypeVar("R")

MAX_AUTO_WORKERS = 4  # on a bigger machine, leave cores for the database and the Prefect server

_pool: ProcessPoolExecutor | None = None
_pool_size = 0

# In a worker process: the kind of job (its function) it ran last, and the caches of
# ``worker_cache``.
_last_kind: Callable | None = None
_worker_caches: list[Callable[[], None]] = []


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_count(setting: int) -> int:
    """Worker processes to use for ``setting`` (0: one per available core, at most ``MAX_AUTO_WORKERS``)."""
    if setting < 0:
        raise ValueError(f"workers must be 0 (automatic) or more, not {setting}")
    return setting if setting else min(available_cores(), MAX_AUTO_WORKERS)


def _executor(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != workers:
        shutdown()
        _pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_worker_started)
        _pool_size = workers
    return _pool


def _worker_started() -> None:
    # At exit, what the worker still holds (the marts it read, its workbooks' leftovers) is
    # not walked by the interpreter's final garbage collection: the run waits for its
    # workers to exit, and that collection took a good part of a second.
    atexit.register(gc.freeze)


def shutdown(wait: bool = True) -> None:
    """Stop the worker processes (started again when next needed).

    ``wait=False``: do not wait for them to exit; they do so while the caller goes on
    (a new pool may start meanwhile)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=wait, cancel_futures=True)
        _pool = None


atexit.register(shutdown)


def start(workers: int, modules: Sequence[str] = ()) -> None:
    """Start the worker processes now, each importing ``modules``, without waiting for them.

    Their start-up (an interpreter, pandas, the modules) then overlaps whatever the
    caller does next, instead of delaying the first jobs.
    """
    if workers <= 1:
        return
    pool = _executor(workers)
    for _ in range(workers):  # one task each: a busy worker makes the pool start the next
        pool.submit(_import, tuple(modules))


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        importlib.import_module(name)


def release_memory(*, collect: bool = False) -> None:
    """Give the memory this process has freed back to the system.

    Freed pandas and Arrow buffers stay with the allocators (glibc's heap, Arrow's
    mimalloc pool) and count as resident; a process about to wait while its workers write
    the workbooks would hold them for nothing (measured at double the benchmark's size:
    0.95 GiB resident while the workers ran, 0.51 GiB after this). ``collect``: a garbage
    collection first, for frames held in reference cycles (a quarter of a gigabyte at that
    size; cheap when the objects that outlive the work were frozen first, ``gc.freeze``)."""
    if collect:
        gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001 - an optimisation only
        pass
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def worker_cache(fn: Callable[..., R]) -> Callable[..., R]:
    """``functools.lru_cache(maxsize=1)`` for what a worker reads once for all its jobs of one
    kind (the marts of a publish): forgotten when the worker goes on to another kind."""
    cached = functools.lru_cache(maxsize=1)(fn)
    _worker_caches.append(cached.cache_clear)
    return cached


def _job(fn: Callable[[T], R], job: T) -> R:
    global _last_kind
    if fn is not _last_kind:
        if _last_kind is not None:
            # What the jobs before left behind goes back to the system. (Memory: after the
            # commissioner workbooks of double the benchmark's size a worker held 0.4 GiB
            # through the feedback workbooks, which need half of that; this took 0.3 s.)
            for clear in _worker_caches:
                clear()
            release_memory(collect=True)
        _last_kind = fn
    return fn(job)


def run_jobs(fn: Callable[[T], R], jobs: Sequence[T], *, workers: int, chunksize: int = 1,
             in_process_below: int = 2) -> list[R]:
    """``[fn(job) for job in jobs]``, in that order, spread over ``workers`` processes.

    ``fn`` must be a module-level function and jobs picklable. Fewer than
    ``in_process_below`` jobs, or one worker, run here. An exception in a job is raised
    here, as it would be in a loop. If a worker dies, every job is run again here.
    """
    jobs = list(jobs)
    if workers <= 1 or len(jobs) < max(2, in_process_below):
        return [fn(job) for job in jobs]
    pool = _executor(workers)
    try:
        return list(pool.map(functools.partial(_job, fn), jobs, chunksize=max(1, chunksize)))
    except BrokenProcessPool as exc:
        # A worker died (killed, out of memory, or it could not start: a script that runs
        # a flow without an ``if __name__ == "__main__":`` guard). The jobs are done here
        # instead; the next call starts a new pool.
        shutdown()
        log.warning("worker processes failed (%s): writing %d job(s) in this process", exc, len(jobs))
        return [fn(job) for job in jobs]


__all__ = ["available_cores", "release_memory", "run_jobs", "shutdown", "start", "worker_cache", "worker_count"]
