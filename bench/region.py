"""A synthetic region for the benchmark: its own reference data, the demo generator's
submissions at a chosen size, and one large measure workbook.

Size: ``orgs`` organisations, ``months`` monthly returns ending last month, about
``participants_per_year`` participants and ``projects_per_year`` projects per programme
year, and one measure workbook of ``big_rows`` rows (long form, values formatted as % in
Excel) received in the middle of the window.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# The demo generator's growth curve: 50 participants in the first programme year x 3.6
# over four years (transforms/demo.py, _allocation).
_FIRST_YEAR = 50
_GROWTH = 180 / 50

_TRUST_FLAVOURS = ("Hospitals NHS Trust", "Community Healthcare NHS Trust", "Mental Health NHS Trust",
                   "Partnership NHS Foundation Trust", "Health NHS Trust")


@dataclass(frozen=True)
class Size:
    orgs: int = 25
    months: int = 36
    participants_per_year: int = 600
    projects_per_year: int = 150
    big_rows: int = 200_000

    def scaled(self, factor: float) -> Size:
        """The same region ``factor`` times as big: organisations, people, projects and the
        big workbook scale; the months stay (the same periods, the same reports)."""
        return Size(max(2, round(self.orgs * factor)), self.months,
                    max(10, round(self.participants_per_year * factor)),
                    max(3, round(self.projects_per_year * factor)), max(100, round(self.big_rows * factor)))


def _month_index(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def _period(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def last_period(today: date | None = None) -> str:
    today = today or datetime.now(UTC).date()
    return _period(today.year * 12 + today.month - 2)


def organisations(n: int) -> list[tuple[str, str, str]]:
    """(code, name, type): one lead trust, then partner trusts, voluntary and independent
    organisations in the demo's proportions."""
    out = [("LEAD", "Benchmark Lead Health and Care NHS Foundation Trust", "lead trust")]
    kinds = ("partner trust", "partner trust", "partner trust", "voluntary", "independent")
    for i in range(1, n):
        kind = kinds[(i - 1) % len(kinds)]
        if kind == "partner trust":
            code = f"P{i:02d}"
            name = f"Benchmark {code} {_TRUST_FLAVOURS[i % len(_TRUST_FLAVOURS)]}"
        elif kind == "voluntary":
            code, name = f"V{i:02d}", f"Benchmark {i:02d} Family Support"
        else:
            code, name = f"I{i:02d}", f"Benchmark {i:02d} Care Homes Ltd"
        out.append((code, name, kind))
    return out


def programme_years(first: str, last: str) -> list[int]:
    """Programme years (April start) with a cohort (A: Apr-Dec, B: Oct-Jun) overlapping the window."""
    lo, hi = _month_index(first), _month_index(last)
    years = []
    for y in range(int(first[:4]) - 2, int(last[:4]) + 1):
        a = (y * 12 + 3, y * 12 + 11)
        b = (y * 12 + 9, (y + 1) * 12 + 5)
        if any(s <= hi and e >= lo for s, e in (a, b)):
            years.append(y)
    return years


def write_reference(folder: Path, size: Size, first: str, last: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    orgs = organisations(size.orgs)
    lines = ["code,name,type,contacts"] + [f"{c},{n},{t},data@{c.lower()}.example.org" for c, n, t in orgs]
    (folder / "organisations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    years = programme_years(first, last)
    cohorts = ["code,programme_year,start_date,end_date"]
    for y in years:
        py = f"{y}/{(y + 1) % 100:02d}"
        cohorts += [f"C{y % 100:02d}A,{py},{y}-04-01,{y}-12-31", f"C{y % 100:02d}B,{py},{y}-10-01,{y + 1}-06-30"]
    (folder / "cohorts.csv").write_text("\n".join(cohorts) + "\n", encoding="utf-8")
    partners = [c for c, _, t in orgs if t == "partner trust"][:2] or [orgs[0][0]]
    (folder / "commissioners.csv").write_text(
        "code,name,scope,profession_filter,recipients\n"
        "RSWP,Regional Social Work QI Programme,ALL,Social Work,sw.programme@region.example.org\n"
        "ICB,Benchmark Integrated Care Board,ALL,,qi.commissioning@icb.example.org\n"
        f"PLACE,Benchmark Place Partnership,{';'.join(partners)},,place@place.example.org\n",
        encoding="utf-8")
    return {"organisations": len(orgs), "programme_years": len(years)}


def team_sizes(mean: float) -> tuple[int, ...]:
    """Twelve team sizes spread around ``mean`` (the demo's default is 2, 3, 3, 4: mean 3)."""
    base = max(1, math.floor(mean))
    sizes = [max(1, base + d) for d in (-1, 0, 0, 1)] * 3
    target = round(12 * mean)
    i = 0
    while sum(sizes) < target:
        sizes[i % 12] += 1
        i += 1
    while sum(sizes) > target and any(s > 1 for s in sizes):
        j = max(range(12), key=lambda k: sizes[k])
        sizes[j] -= 1
    return tuple(sorted(sizes))


def generate_region(root: Path, size: Size, *, end_period: str | None = None, seed: int = 20250401) -> dict:
    """Reference data and landing files for a region of ``size`` under ``root``."""
    from transforms.demo import generate

    end_period = end_period or last_period()
    first = _period(_month_index(end_period) - size.months + 1)
    info = write_reference(root / "reference", size, first, end_period)
    n_years = info["programme_years"]
    mean_growth = sum(_GROWTH ** (i / 4) for i in range(n_years)) / n_years
    scale = size.participants_per_year / (_FIRST_YEAR * mean_growth)
    sizes = team_sizes(size.participants_per_year / size.projects_per_year)
    truth = generate(root / "landing", root / "reference", scale=scale, months=size.months,
                     end_period=end_period, seed=seed, team_sizes=sizes)
    big = write_big_workbook(root, size.big_rows, first, end_period) if size.big_rows else None
    years = max(1, len(truth.participants_by_year))
    return {
        "size": asdict(size), "first_period": first, "last_period": end_period, "scale": round(scale, 3),
        "team_sizes": list(sizes), "demo_files": truth.files, "participants": truth.participants,
        "participants_per_programme_year": round(truth.participants / years),
        "projects": truth.projects, "measure_points": truth.measure_points, "big_workbook": big,
    }


# --- the big measure workbook -------------------------------------------------------------


def _registered_projects(landing: Path, org: str, before: datetime) -> list[str]:
    """Project ids in ``org``'s register rows received before ``before``."""
    from transforms.staging import stage_file

    ids: set[str] = set()
    for path in sorted((landing / org).rglob("*")):
        if not path.is_file() or datetime.fromtimestamp(path.stat().st_mtime, UTC) >= before:
            continue
        staged = stage_file(path, sha256="x")
        frame = staged.tables.get("project_register")
        if frame is not None:
            ids.update(p for p in frame["project_id"].dropna() if isinstance(p, str))
    return sorted(ids)


def write_big_workbook(root: Path, rows: int, first: str, last: str) -> dict:
    """One long-form measure workbook of ``rows`` rows for the lead trust's registered
    projects: weekly secondary measures, numerator and denominator, the value as a % cell."""
    import random

    import xlsxwriter

    landing = root / "landing"
    middle = _period((_month_index(first) + _month_index(last)) // 2)
    nxt = _month_index(middle) + 1
    received = datetime(nxt // 12, nxt % 12 + 1, 20, 10, 0, tzinfo=UTC)
    projects = _registered_projects(landing, "LEAD", received) or ["LEAD-0000-001"]
    start = date(int(first[:4]), int(first[5:7]), 1)
    start += timedelta(days=(7 - start.weekday()) % 7)
    weeks = []
    while start < received.date() - timedelta(days=7):
        weeks.append(start)
        start += timedelta(days=7)
    per_measure = len(projects) * len(weeks)
    n_measures = max(1, math.ceil(rows / per_measure))
    path = landing / "LEAD" / middle / f"LEAD weekly measures extract {middle}.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"bench-big-{rows}")
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    pct = wb.add_format({"num_format": "0.0%"})
    day = wb.add_format({"num_format": "dd/mm/yyyy"})
    ws = wb.add_worksheet("Measures")
    ws.write_row(0, 0, ["Project ID", "Measure Name", "Period", "Numerator", "Denominator", "Value"])
    r = 0
    for project in projects:
        for m in range(n_measures):
            name = f"Weekly audit {m + 1}: % of checks passed"
            for week in weeks:
                if r >= rows:
                    break
                den = rng.randint(20, 80)
                num = rng.randint(den // 2, den)
                r += 1
                ws.write_string(r, 0, project)
                ws.write_string(r, 1, name)
                ws.write_datetime(r, 2, datetime(week.year, week.month, week.day), day)
                ws.write_number(r, 3, num)
                ws.write_number(r, 4, den)
                ws.write_number(r, 5, num / den, pct)
    wb.close()
    ts = received.timestamp()
    os.utime(path, (ts, ts))
    return {"path": str(path.relative_to(root)), "rows": r, "projects": len(projects), "measures": n_measures,
            "weeks": len(weeks), "received_at": received.isoformat(), "bytes": path.stat().st_size}
