"""`make bench`: how long the pipeline takes, and what it costs beyond reading the files.

    python -m bench.run [--quick] [--orgs N] [--months M] [--participants-per-year P]
                        [--projects-per-year Q] [--big-rows R] [--repeat K] [--no-scaling]

Generates a synthetic region (transforms/demo.py, with its own reference data) plus one
large measure workbook, then measures, each in its own process as `qi-pipeline` runs:

- the read-only floor (every file's sheets into memory with python-calamine; CSV with the
  csv module) and a trivial Prefect flow with the same Prefect set-up (on a fresh Prefect
  home next to each full load, on an existing one next to each nothing-new run);
- a full load (one nightly run over everything, from an empty data root), by stage;
- a nightly run with nothing new, and one with one new month of files;
- a restated backfill of every period;
- the big workbook: read-only vs staged and validated;
- the full load at half and at double the size.

Prints a table and writes ``bench/results.json``. Runs are dated ``--as-of`` the due day
of the month after the last period, so the nightly run writes a final and a
provisional period whatever the day the benchmark runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path

from bench.region import Size, generate_region, last_period

REPO = Path(__file__).resolve().parent.parent
GIB = 1024**3


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- data roots --------------------------------------------------------------------------------


def link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of ``source`` under ``target`` (same bytes, same mtimes, no copy)."""
    for dirpath, _dirs, files in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(dirpath) / name, target / rel / name)
            except OSError:
                shutil.copy2(Path(dirpath) / name, target / rel / name)


def fresh_root(region: Path, root: Path) -> Path:
    """An empty data root: the region's reference data and landing files, nothing else."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copytree(region / "reference", root / "reference")
    link_tree(region / "landing", root / "landing")
    return root


def copy_root(source: Path, root: Path) -> Path:
    """A copy of a data root after some runs (archive, state, marts; landing linked)."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(source, root, symlinks=True, ignore=lambda d, names: ["landing"] if Path(d) == source else [])
    link_tree(source / "landing", root / "landing")
    return root


# --- one measured process ----------------------------------------------------------------------


TREE_SAMPLE_SECONDS = 0.1


def tree_rss(pid: int) -> tuple[int, int, int, list[int]]:
    """Resident bytes of ``pid`` and all its descendants now, of the largest descendant
    alone, the tree's proportional set size (Linux /proc; 0 elsewhere), and each
    process's resident bytes (``pid``'s first, then the largest descendant first).

    The summed RSS counts a page shared by several of the processes (the libraries they
    all load: Python, numpy, Arrow) once per process; the PSS splits it between them, so
    it is what the machine holds for them.

    Sampled rather than taken from ``getrusage(RUSAGE_CHILDREN)``: a worker process is
    spawned by fork then exec, and the kernel's high-water mark for it includes the parent's
    pages it held for the instant in between, so it reports the parent's size, not the worker's."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    each = [rss.get(pid, 0), *sorted((rss.get(p, 0) for p in tree - {pid}), reverse=True)]
    return sum(each), max(each[1:], default=0), sum(_pss(p) for p in tree), each


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass  # the process ended meanwhile, or no smaps_rollup (Linux before 4.14)
    return 0


def probe(work: Path, tag: str, mode: str, *args: str) -> dict:
    """Run ``bench.probe`` in a new process; its measurements plus wall time and peak RSS."""
    out = work / "probes" / f"{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    env = {**os.environ, "QI_QUIET_SECONDS": "0", "PYTHONPATH": str(REPO)}
    for name in ("PREFECT_HOME", "QI_LOG_FILE", "PREFECT_API_URL"):
        env.pop(name, None)
    logfile = work / "logs" / f"{tag}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    t0 = time.perf_counter()
    with open(logfile, "w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "bench.probe", str(out), mode, *args], cwd=REPO, env=env,
                                stdout=handle, stderr=subprocess.STDOUT)
        tree_peak = child_peak = pss_peak = 0
        peak_moment: tuple[float, list[int]] = (started, [])
        while proc.poll() is None:
            total, largest_child, pss, each = tree_rss(proc.pid)
            if total > tree_peak:
                peak_moment = (time.time(), each)
            tree_peak, child_peak, pss_peak = max(tree_peak, total), max(child_peak, largest_child), max(pss_peak, pss)
            time.sleep(TREE_SAMPLE_SECONDS)
    wall = time.perf_counter() - t0
    data = json.loads(out.read_text()) if out.exists() else {"stages": {}, "calls": {}, "marks": {}}
    data.update(tag=tag, wall=round(wall, 3), returncode=proc.returncode, log=str(logfile))
    flow_start = data.get("marks", {}).get("first:transforms.run.open_run")
    data["startup"] = round(flow_start - started, 3) if flow_start else None
    data["peak_rss_bytes"] = data.get("maxrss_self_kb", 0) * 1024
    # Worker processes and Prefect's temporary server are children: the largest of them.
    data["peak_rss_child_bytes"] = child_peak  # (sampled: see tree_rss)
    # What the machine had to hold: the RSS of the whole process tree, summed, sampled.
    data["peak_rss_tree_bytes"] = tree_peak
    data["peak_pss_tree_bytes"] = pss_peak  # the same, shared pages counted once
    # When the summed peak was sampled: seconds after the start, the step under way (the
    # last one the probe saw begin) and each process's RSS then, the run's first.
    at, each = peak_moment
    begun = [(t, name.split(":", 1)[1]) for name, t in data.get("marks", {}).items() if t <= at]
    data["peak_rss_tree_moment"] = {"seconds": round(at - started, 1), "step": max(begun)[1] if begun else None,
                                    "process_bytes": each}
    if mode == "cli" and proc.returncode not in (0, 1):
        raise RuntimeError(f"{tag}: qi-pipeline exited {proc.returncode}; see {logfile}")
    return data


STAGES = ("ingest", "read", "validate", "data_docs", "marts", "spc", "reports", "feedback", "delivery")


def breakdown(run: dict) -> dict:
    """Seconds by stage; orchestration is the rest of the wall time (process start, imports,
    Prefect's temporary server, tasks, ledgers)."""
    stages = run.get("stages", {})
    out = {s: round(stages.get(s, 0.0), 3) for s in STAGES}
    out["orchestration"] = round(run["wall"] - sum(out.values()), 3)
    out["of which startup"] = run.get("startup")
    return out


def run_outputs(root: Path) -> dict:
    """Files and rows the last run took in, from the runs ledger and the manifest."""
    import pyarrow.parquet as pq

    info: dict = {}
    ledger = root / "state" / "runs.jsonl"
    if ledger.exists():
        lines = [json.loads(x) for x in ledger.read_text().splitlines() if x.strip()]
        if lines:
            last = lines[-1]
            info.update(files_received=last.get("files_received"), reports=len(last.get("reports", [])),
                        feedback=len(last.get("feedback", [])))
    manifest = root / "raw" / "manifest.parquet"
    if manifest.exists():
        m = pq.read_table(manifest, columns=["kind", "rows_received"]).to_pandas()
        info["rows_received"] = int(m.loc[m["kind"] == "submission", "rows_received"].sum())
    return info


def nightly(work: Path, tag: str, root: Path, as_of: date) -> dict:
    result = probe(work, tag, "cli", "run", "--data-dir", str(root), "--as-of", as_of.isoformat(), "--demo")
    result.update(run_outputs(root))
    result["breakdown"] = breakdown(result)
    log(f"{tag}: {result['wall']:.1f} s, peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB, "
        f"{result.get('files_received')} files received")
    return result


def _moment(moment: dict | None) -> str:
    """When the summed peak was sampled, in words (empty if not known)."""
    if not moment or not moment.get("process_bytes"):
        return ""
    own, *others = moment["process_bytes"]
    return (f"; sampled {moment['seconds']} s in, during {moment['step']}: the run {own / GIB:.2f}, the others "
            + " + ".join(f"{b / GIB:.2f}" for b in others if b >= 0.005 * GIB))


def summarise(runs: list[dict]) -> dict:
    """Median wall time and stage times of repeated runs, worst peak RSS, and every run."""
    keys = runs[0]["breakdown"].keys() if runs and "breakdown" in runs[0] else []
    return {
        "wall": round(median([r["wall"] for r in runs]), 3),
        "walls": [r["wall"] for r in runs],
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
        "peak_rss_child_bytes": max(r.get("peak_rss_child_bytes", 0) for r in runs),
        "peak_rss_tree_bytes": max(r.get("peak_rss_tree_bytes", 0) for r in runs),
        "peak_pss_tree_bytes": max(r.get("peak_pss_tree_bytes", 0) for r in runs),
        "peak_rss_tree_moment": max(runs, key=lambda r: r.get("peak_rss_tree_bytes", 0)).get("peak_rss_tree_moment"),
        "breakdown": {k: round(median([r["breakdown"][k] or 0 for r in runs]), 3) for k in keys},
        "runs": runs,
    }


# --- the benchmark ------------------------------------------------------------------------------


def plus_months(period: str, months: int) -> str:
    i = int(period[:4]) * 12 + int(period[5:7]) - 1 + months
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def due_day_of(period: str) -> date:
    """The due day (QI_DUE_DAY, default 10) of the month after ``period``."""
    nxt = plus_months(period, 1)
    return date(int(nxt[:4]), int(nxt[5:7]), int(os.environ.get("QI_DUE_DAY", "10")))


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    mem = 0
    try:
        mem = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) * 1024
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    from importlib.metadata import version

    versions = {p: version(p) for p in ("prefect", "great-expectations", "pandas", "pyarrow", "python-calamine",
                                         "xlsxwriter", "openpyxl")}
    return {"cpu": cpu, "cores": cores, "memory_gib": round(mem / GIB, 1), "os": platform.platform(),
            "python": platform.python_version(), "packages": versions}


def region_for(work: Path, name: str, size: Size, end_period: str, regenerate: bool) -> tuple[Path, dict]:
    folder = work / "regions" / name
    info_path = folder / "region.json"
    # A region is reused while its size, last period and generator code are unchanged.
    generator = hashlib.sha256(b"".join(f.read_bytes() for f in (REPO / "transforms" / "demo.py",
                                                                  REPO / "bench" / "region.py"))).hexdigest()
    if not regenerate and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("size") == asdict(size) and info.get("last_period") == end_period \
                and info.get("generator") == generator:
            log(f"region {name}: reusing {folder}")
            return folder, info
    if folder.exists():
        shutil.rmtree(folder)
    log(f"region {name}: generating {size}")
    t0 = time.perf_counter()
    info = generate_region(folder, size, end_period=end_period)
    info["generate_seconds"] = round(time.perf_counter() - t0, 1)
    info["generator"] = generator
    info_path.write_text(json.dumps(info, indent=1))
    log(f"region {name}: {info['demo_files']} demo files + 1 workbook of {size.big_rows} rows "
        f"in {info['generate_seconds']} s")
    return folder, info


def full_load(work: Path, tag: str, region: Path, as_of: date, repeat: int, keep: Path | None = None,
              before=None) -> dict:
    runs = []
    for i in range(repeat):
        if before is not None:
            before(i)
        root = fresh_root(region, work / "roots" / f"{tag}-{i}")
        runs.append(nightly(work, f"{tag}-{i}", root, as_of))
        if keep is not None and i == repeat - 1:
            if keep.exists():
                shutil.rmtree(keep)
            root.rename(keep)
        else:
            shutil.rmtree(root)
    return summarise(runs)


def ratio(value: float, base: float) -> float:
    return round(value / base, 2) if base else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small region and one run of each: a smoke run")
    parser.add_argument("--orgs", type=int, help="organisations (default 25; --quick 6)")
    parser.add_argument("--months", type=int, help="monthly periods (default 36; --quick 12)")
    parser.add_argument("--participants-per-year", type=int, help="about this many a programme year (default 600)")
    parser.add_argument("--projects-per-year", type=int, help="about this many a programme year (default 150)")
    parser.add_argument("--big-rows", type=int, help="rows of the big measure workbook")
    parser.add_argument("--repeat", type=int, help="runs of each cheap-enough measurement (median reported)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the half and double size full loads")
    parser.add_argument("--regenerate", action="store_true", help="generate the regions even if cached")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args(argv)

    base = Size(orgs=6, months=12, participants_per_year=100, projects_per_year=25, big_rows=20_000) \
        if args.quick else Size()
    size = Size(args.orgs or base.orgs, args.months or base.months,
                args.participants_per_year or base.participants_per_year,
                args.projects_per_year or base.projects_per_year,
                base.big_rows if args.big_rows is None else args.big_rows)
    repeat = args.repeat or (1 if args.quick else 3)
    heavy = 1 if args.quick else max(1, min(repeat, 2))  # full loads are half a minute to a minute each
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    for old in ("roots", "probes", "logs"):
        shutil.rmtree(work / old, ignore_errors=True)
    started = time.perf_counter()

    # Two months back: the last period's on-time returns are all in by its due day, which
    # is in the past, and the nightly run as of that day writes a final and a provisional period.
    end_period = plus_months(last_period(), -1)
    as_of = due_day_of(end_period)
    as_of_prev = due_day_of(plus_months(end_period, -1))
    results: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                     "size": asdict(size), "quick": args.quick, "as_of": as_of.isoformat(), "repeat": repeat,
                     "heavy_repeat": heavy}
    prefix = "quick-" if args.quick else ""  # (a quick run keeps its own small regions, not the full ones)
    region, results["region"] = region_for(work, f"{prefix}default", size, end_period, args.regenerate)

    # The trivial flow is measured next to what it is compared with (a fresh Prefect home
    # before each full load, an existing one before each nothing-new run): this machine's
    # speed drifts by several per cent over minutes.
    fresh: list[dict] = []
    warm: list[dict] = []
    warm_state = work / "roots" / "trivial-warm" / "state"

    def trivial(kind: str, i: int) -> None:
        if kind == "fresh":
            state = work / "roots" / f"trivial-fresh-{i}" / "state"
            fresh.append(probe(work, f"trivial-fresh-{i}", "trivial", str(state)))
            if not warm_state.exists():  # the Prefect home the later trivial flows find
                warm_state.parent.mkdir(parents=True, exist_ok=True)
                state.rename(warm_state)
            shutil.rmtree(state.parent, ignore_errors=True)
        else:
            if not warm_state.exists():
                probe(work, "trivial-warm-setup", "trivial", str(warm_state))
            warm.append(probe(work, f"trivial-warm-{i}", "trivial", str(warm_state)))
        log(f"trivial flow ({'fresh' if kind == 'fresh' else 'existing'} Prefect home): "
            f"{(fresh if kind == 'fresh' else warm)[-1]['wall']:.2f} s")

    log("read-only floor")
    floor = probe(work, "floor", "floor", str(region / "landing"), str(max(3, repeat)))
    results["floor"] = {"seconds": median(floor["times"]), "times": floor["times"], "files": floor["files"],
                        "rows": floor["rows"]}
    log(f"floor: {results['floor']['seconds']:.2f} s for {floor['files']} files, {floor['rows']} rows")

    log(f"full load (as of {as_of})")
    base_root = work / "roots" / "base"
    results["full_load"] = full = full_load(work, "full", region, as_of, heavy, keep=base_root,
                                            before=lambda i: trivial("fresh", i))
    last = full["runs"][-1]
    full["files"] = last.get("files_received")
    full["rows"] = last.get("rows_received")
    full["files_per_second"] = round(full["files"] / full["wall"], 1) if full["files"] else None
    full["rows_per_second"] = round(full["rows"] / full["wall"]) if full["rows"] else None

    # Each ratio's two sides are measured side by side, in turns (the machine drifts): a
    # trivial flow, a nothing-new run, then a new-month run (from a copy of a data root
    # loaded as of a month earlier), three times.
    log(f"nightly runs with nothing new and with one new month of files (history as of {as_of_prev})")
    prev_root = work / "roots" / "prev"
    results["previous_month_load"] = nightly(work, "prev-month-load", fresh_root(region, prev_root), as_of_prev)
    nothing_new, new_runs = [], []
    for i in range(repeat):
        trivial("warm", i)
        nothing_new.append(nightly(work, f"nothing-new-{i}", base_root, as_of))
        root = copy_root(prev_root, work / "roots" / f"new-month-{i}")
        new_runs.append(nightly(work, f"new-month-{i}", root, as_of))
        shutil.rmtree(root)
    shutil.rmtree(prev_root)
    results["nothing_new"] = summarise(nothing_new)
    results["trivial_flow"] = {"fresh_home": median([r["wall"] for r in fresh]),
                               "existing_home": median([r["wall"] for r in warm]),
                               "fresh_walls": [r["wall"] for r in fresh], "existing_walls": [r["wall"] for r in warm]}
    results["new_month"] = summarise(new_runs)

    first_period = results["region"]["first_period"]
    log(f"backfill {first_period} to {end_period}")
    backfill = probe(work, "backfill", "cli", "backfill", "--from", first_period, "--to", end_period,
                     "--data-dir", str(base_root), "--demo")
    per_period = backfill["calls"].get("flows.backfill.backfill_period", [])
    results["backfill"] = {"wall": backfill["wall"], "periods": len(per_period),
                           "per_period_median": round(median(per_period), 3),
                           "per_period_mean": round(sum(per_period) / len(per_period), 3) if per_period else None,
                           "per_period_wall": round(backfill["wall"] / max(1, len(per_period)), 3),
                           "marts": round(sum(backfill["calls"].get("flows.backfill.build_marts", [])), 3),
                           "peak_rss_bytes": backfill["peak_rss_bytes"], "per_period": per_period,
                           "stages": backfill["stages"], "returncode": backfill["returncode"]}
    log(f"backfill: {backfill['wall']:.1f} s for {len(per_period)} periods")
    shutil.rmtree(base_root)

    big = results["region"].get("big_workbook")
    if big:
        log("big workbook")
        b = probe(work, "bigfile", "bigfile", str(region), big["path"], str(max(3, repeat)))
        results["big_workbook"] = {**big, "read_only": median(b["read"]), "stage": median(b["stage"]),
                                   "load": median(b["load"]), "read_times": b["read"], "stage_times": b["stage"],
                                   "load_times": b["load"], "issues": b.get("issues")}

    if not args.no_scaling:
        for name, factor in (("half", 0.5), ("double", 2.0)):
            scaled = size.scaled(factor)
            folder, info = region_for(work, f"{prefix}{name}", scaled, end_period, args.regenerate)
            log(f"full load at {name} size")
            loaded = full_load(work, name, folder, as_of, 1)
            loaded["region"] = info
            results[f"full_load_{name}"] = loaded

    results["targets"] = targets(results)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print()
    print(table(results))
    print(f"\nwritten {args.out} ({results['bench_seconds']:.0f} s)")
    return 0


def targets(r: dict) -> list[dict]:
    """The issue's five targets, each a ratio measured in this run."""
    trivial_fresh, trivial_warm = r["trivial_flow"]["fresh_home"], r["trivial_flow"]["existing_home"]
    out = []

    def add(name: str, value: float, limit: float, how: str, extra: str = "") -> None:
        out.append({"target": name, "ratio": value, "limit": limit, "met": bool(value <= limit), "how": how,
                    "note": extra})

    full = r["full_load"]["wall"]
    add("full load minus trivial flow vs read-only floor", ratio(full - trivial_fresh, r["floor"]["seconds"]), 3.0,
        f"({full:.1f} - {trivial_fresh:.1f}) / {r['floor']['seconds']:.2f} s")
    nothing = r["nothing_new"]["wall"]
    add("nothing new vs trivial flow", ratio(nothing, trivial_warm), 1.5, f"{nothing:.1f} / {trivial_warm:.1f} s")
    new = r["new_month"]["wall"]
    add("one new month vs nothing new", ratio(new, nothing), 2.0, f"{new:.1f} / {nothing:.1f} s")
    if "full_load_double" in r:
        double = r["full_load_double"]["wall"]
        add("double size vs default size", ratio(double, full), 2.2, f"{double:.1f} / {full:.1f} s",
            f"without the trivial flow's fixed cost: {ratio(double - trivial_fresh, full - trivial_fresh)}x")
        d = r["full_load_double"]
        rss = d["peak_rss_bytes"] / GIB
        add("double size peak RSS of the run's process (GiB)", round(rss, 2), 1.5, f"{rss:.2f} GiB")
        tree = d["peak_rss_tree_bytes"] / GIB
        add("double size peak RSS of all its processes (GiB)", round(tree, 2), 1.5,
            f"{tree:.2f} GiB: the run, its {d['runs'][-1].get('workers', 0)} worker processes and Prefect's "
            f"temporary server, summed, sampled every {TREE_SAMPLE_SECONDS} s (largest child alone "
            f"{d['peak_rss_child_bytes'] / GIB:.2f})",
            f"shared pages counted once (PSS): {d.get('peak_pss_tree_bytes', 0) / GIB:.2f} GiB"
            + _moment(d.get("peak_rss_tree_moment")))
    if "big_workbook" in r:
        b = r["big_workbook"]
        add("big workbook load vs read-only", ratio(b["load"], b["read_only"]), 3.0,
            f"{b['load']:.2f} / {b['read_only']:.2f} s")
    return out


def table(r: dict) -> str:
    mib = 2**20
    lines = ["| measurement | value |", "|---|---|"]

    def row(name: str, value: str) -> None:
        lines.append(f"| {name} | {value} |")

    reg = r["region"]
    row("region", f"{reg['size']['orgs']} organisations, {reg['size']['months']} months "
        f"({reg['first_period']} to {reg['last_period']}), {reg['participants']} participants "
        f"(~{reg['participants_per_programme_year']}/programme year), {reg['projects']} projects, "
        f"{reg['demo_files']} demo files + 1 workbook of {reg['size']['big_rows']:,} rows")
    row("trivial Prefect flow (fresh / existing Prefect home)",
        f"{r['trivial_flow']['fresh_home']:.2f} s / {r['trivial_flow']['existing_home']:.2f} s")
    f = r["floor"]
    row("read-only floor (calamine, every sheet)", f"{f['seconds']:.2f} s ({f['files']} files, {f['rows']:,} rows)")
    full = r["full_load"]
    row("full load: wall", f"{full['wall']:.1f} s (runs: {', '.join(f'{w:.1f}' for w in full['walls'])})")
    row("full load: peak RSS", f"all the run's processes together {full['peak_rss_tree_bytes'] / mib:.0f} MiB "
        f"(shared pages once: {full.get('peak_pss_tree_bytes', 0) / mib:.0f} MiB PSS; "
        f"main process {full['peak_rss_bytes'] / mib:.0f} MiB, largest child process "
        f"{full['peak_rss_child_bytes'] / mib:.0f} MiB)")
    row("full load: throughput", f"{full['files_per_second']} files/s, {full['rows_per_second']:,} rows/s "
        f"({full['files']} files, {full['rows']:,} rows)")
    row("full load: by stage (s)", ", ".join(f"{k} {v}" for k, v in full["breakdown"].items()))
    nn = r["nothing_new"]
    row("nightly, nothing new", f"{nn['wall']:.1f} s (runs: {', '.join(f'{w:.1f}' for w in nn['walls'])}); "
        + ", ".join(f"{k} {v}" for k, v in nn["breakdown"].items() if v))
    nm = r["new_month"]
    row("nightly, one new month", f"{nm['wall']:.1f} s ({nm['runs'][-1].get('files_received')} new files); "
        + ", ".join(f"{k} {v}" for k, v in nm["breakdown"].items() if v))
    b = r["backfill"]
    row("backfill, every period", f"{b['wall']:.1f} s for {b['periods']} periods: {b['per_period_wall']:.2f} s a period "
        f"(reports of one period: median {b['per_period_median']:.2f} s; marts {b['marts']:.1f} s)")
    if "big_workbook" in r:
        w = r["big_workbook"]
        row("big workbook", f"{w['rows']:,} rows: read-only {w['read_only']:.2f} s, staged {w['stage']:.2f} s, "
            f"staged and validated {w['load']:.2f} s")
    for name in ("half", "double"):
        s = r.get(f"full_load_{name}")
        if s:
            row(f"full load at {name} size", f"{s['wall']:.1f} s, peak RSS {s['peak_rss_tree_bytes'] / mib:.0f} MiB "
                f"(PSS {s.get('peak_pss_tree_bytes', 0) / mib:.0f} MiB; "
                f"main process {s['peak_rss_bytes'] / mib:.0f} MiB) "
                f"({s['region']['demo_files']} files); by stage: "
                + ", ".join(f"{k} {v}" for k, v in s["breakdown"].items() if v))
    lines += ["", "| target | ratio | limit | met | measured |", "|---|---|---|---|---|"]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['ratio']} | {t['limit']} | {'yes' if t['met'] else 'NO'} | {t['how']}"
                     f"{'; ' + t['note'] if t['note'] else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
