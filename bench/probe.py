"""One measured process of the benchmark. It writes what it measured to a JSON file.

    python -m bench.probe OUT.json cli ARGS...    # `qi-pipeline ARGS...`, timed by stage
    python -m bench.probe OUT.json trivial STATE  # a trivial Prefect flow, same Prefect set-up
    python -m bench.probe OUT.json floor LANDING N  # read every file's sheets, N passes
    python -m bench.probe OUT.json bigfile ROOT FILE N  # one workbook: read-only vs staged and validated

``cli`` runs the real command line in this process; the only difference from
``qi-pipeline`` is that some functions are wrapped with a timer (a few microseconds a
call, no change of behaviour). Each wrapper counts its own time minus that of wrappers
called inside it, so the stages add up to the time spent in them.
"""

from __future__ import annotations

import functools
import gc
import json
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

STARTED = time.time()

_self: dict[str, float] = defaultdict(float)
_calls: dict[str, list[float]] = defaultdict(list)
_stack: list[float] = []  # time spent in nested wrappers, per open frame
_marks: dict[str, float] = {}
_missing: list[str] = []
_peaks: dict[str, int] = {}  # wrapped function -> peak RSS (KiB) of this process when it last returned


def _timed(stage: str, fn, name: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _marks.setdefault(f"first:{name}", time.time())
        t0 = time.perf_counter()
        _stack.append(0.0)
        try:
            return fn(*args, **kwargs)
        finally:
            total = time.perf_counter() - t0
            nested = _stack.pop()
            _self[stage] += total - nested
            _calls[name].append(round(total, 4))
            # the process's peak RSS so far, after each call: which stage set the peak
            _peaks[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            if _stack:
                _stack[-1] += total
    return wrapper


def _wrap(module, attr: str, stage: str) -> None:
    """Wrap ``module.attr``: a plain function, or the function inside a Prefect task."""
    obj = getattr(module, attr, None)
    name = f"{module.__name__}.{attr}"
    if obj is None:
        _missing.append(name)
        return
    if hasattr(obj, "fn") and callable(getattr(obj, "fn")) and hasattr(obj, "task_key"):
        obj.fn = _timed(stage, obj.fn, name)
    elif callable(obj):
        setattr(module, attr, _timed(stage, obj, name))
    else:
        _missing.append(name)


def _install(command: str) -> None:
    from transforms import load, outcomes
    from transforms import run as steps

    _wrap(steps, "open_run", "open_run")
    _wrap(steps, "finish", "finish")
    _wrap(steps, "restage_all", "read")
    _wrap(steps, "_data_docs", "data_docs")
    _wrap(load, "stage_pending", "read")
    _wrap(load, "validate_rows", "validate")
    _wrap(outcomes, "build_project_outcomes", "spc")
    _wrap(outcomes, "build_spc_points", "spc")
    _wrap(outcomes, "build_outcome_marts", "spc")  # (the two above, in worker processes)
    if command == "run":
        import flows.nightly as nightly

        for attr, stage in (("ingest", "ingest"), ("stage", "read"), ("build_and_publish", "marts"),
                            ("write_reports", "reports"), ("write_feedback", "feedback"), ("deliver", "delivery")):
            _wrap(nightly, attr, stage)
    elif command == "backfill":
        import flows.backfill as backfill

        _wrap(backfill, "build_marts", "marts")
        _wrap(backfill, "backfill_period", "reports")


def _data_dir(args: list[str]) -> Path:
    for i, a in enumerate(args):
        if a == "--data-dir":
            return Path(args[i + 1])
        if a.startswith("--data-dir="):
            return Path(a.split("=", 1)[1])
    raise SystemExit("bench.probe cli: pass --data-dir")


def run_cli(args: list[str]) -> int:
    from flows.environment import configure_prefect

    configure_prefect(_data_dir(args) / "state")  # what the CLI does first; idempotent
    _install(args[0])
    from flows import cli

    sys.argv = ["qi-pipeline", *args]
    try:
        cli.main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run_trivial(state: str) -> int:
    from flows.environment import configure_prefect

    configure_prefect(Path(state))
    from prefect import flow

    @flow(name="trivial")
    def trivial() -> int:
        return 1

    trivial()
    return 0


def read_floor(files: list[Path]) -> int:
    """Every sheet of every file into memory: python-calamine for workbooks, the csv module for CSV."""
    import csv
    import io

    import python_calamine

    rows = 0
    for path in files:
        try:
            if path.suffix.lower() == ".csv":
                data = path.read_bytes()
                try:
                    text = data.decode("utf-8-sig")
                except UnicodeDecodeError:
                    text = data.decode("cp1252")
                rows += sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
            else:
                with open(path, "rb") as f, python_calamine.CalamineWorkbook.from_filelike(f) as wb:
                    for name in wb.sheet_names:
                        rows += len(wb.get_sheet_by_name(name).to_python(skip_empty_area=False))
        except Exception:  # noqa: BLE001 - the planted unreadable files
            continue
    return rows


def run_floor(landing: str, passes: int) -> dict:
    import python_calamine  # noqa: F401 - the import is not part of the floor

    files = sorted(p for p in Path(landing).rglob("*") if p.is_file())
    times, rows = [], 0
    for _ in range(passes):
        t0 = time.perf_counter()
        rows = read_floor(files)
        times.append(round(time.perf_counter() - t0, 4))
    return {"files": len(files), "rows": rows, "times": times}


def run_bigfile(root: str, file: str, passes: int) -> dict:
    """The big workbook: read-only (calamine values) vs what the pipeline does with it:
    read with % formats, find the table, type every cell, key and conform, validate."""
    import pandas as pd

    from expectations.runner import import_gx
    from transforms import load
    from transforms.datasets import DATASETS
    from transforms.normalise import default_value_synonyms
    from transforms.reference import load_reference
    from transforms.staging import stage_file
    from transforms.storage import empty_frame
    from transforms.tables import default_column_synonyms

    import_gx()  # imported by every build anyway: not part of one file's cost
    path = Path(root) / file
    reference = load_reference(Path(root) / "reference")
    columns, values = default_column_synonyms(reference.column_synonyms), default_value_synonyms(reference.value_synonyms)
    read_times, stage_times, load_times, rows = [], [], [], 0
    for _ in range(passes):
        staged = frames = validated = None  # each pass starts as a run would: nothing of the last one alive
        gc.collect()
        t0 = time.perf_counter()
        read_floor([path])
        read_times.append(round(time.perf_counter() - t0, 4))
        t0 = time.perf_counter()
        staged = stage_file(path, sha256="bench", column_synonyms=columns, value_synonyms=values)
        frames = {}
        for name in DATASETS:
            frame = staged.tables.get(name)
            frames[name] = (load._conform(frame, load.STAGED_SCHEMAS[name]) if frame is not None
                            else empty_frame(load.STAGED_SCHEMAS[name]))
        t1 = time.perf_counter()
        files = pd.DataFrame({"sha256": ["bench"], "file_name": [file], "organisation_code": ["LEAD"],
                              "received_at": [pd.Timestamp.now(tz="UTC")], "reporting_period": ["2000-01"]})
        frames = {n: load._with_files(f, files) for n, f in frames.items()}
        parse = pd.DataFrame(staged.issues).assign(source_sha256="bench") if staged.issues else \
            empty_frame(load.PARSE_ISSUE_SCHEMA)
        notes = empty_frame(load.NOTE_SCHEMA)
        validated = load.validate_rows(frames, load._conform(parse, load.PARSE_ISSUE_SCHEMA), notes, files, reference)
        t2 = time.perf_counter()
        stage_times.append(round(t1 - t0, 4))
        load_times.append(round(t2 - t0, 4))
        rows = sum(len(f) for f in staged.tables.values())
        issues = len(validated.issues)
    return {"rows": rows, "issues": issues, "read": read_times, "stage": stage_times,
            "load": load_times}


def main() -> int:
    out, mode, *args = sys.argv[1:]
    result: dict = {"mode": mode, "args": args}
    code = 0
    try:
        if mode == "cli":
            code = run_cli(args)
        elif mode == "trivial":
            code = run_trivial(args[0])
        elif mode == "floor":
            result.update(run_floor(args[0], int(args[1])))
        elif mode == "bigfile":
            result.update(run_bigfile(args[0], args[1], int(args[2])))
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        ended = time.time()
        parallel = sys.modules.get("transforms.parallel")
        if parallel is not None:  # reap the worker processes, so RUSAGE_CHILDREN counts them
            result["workers"] = parallel._pool_size  # (the size of the last pool the run used)
            parallel.shutdown()
        result.update({
            "exit_code": code, "started": STARTED, "ended": ended,
            "stages": {k: round(v, 4) for k, v in _self.items()},
            "calls": dict(_calls), "marks": _marks, "missing_wrappers": _missing, "peak_after_kb": _peaks,
            "maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "maxrss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        })
        Path(out).write_text(json.dumps(result, indent=1, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
