"""Did each project improve? The SPC marts (SPEC 6 and 7).

Two tables, built by pure functions from ``dim_project`` and ``fct_measure``:

- ``mart_spc_points``: one row per project x measure x period, what the run charts
  draw: the value, the centre line and limits at that point, its point type and the rule
  that flagged it, the run-chart median with the IHI shift and trend flags, and for a
  percentage with numerators and denominators the P chart's centre and limits.
- ``mart_project_outcomes``: one row per reporting period x project: the XmR analysis of
  the project's primary measure as of that period (the points whose period starts before
  the end of the reporting month), its variation and assurance codes, which rule fired
  from which period, and one plain-English sentence saying so.

Only each project's primary measure (``dim_project.measure_name``) is analysed. The
baseline is the points before ``intervention_date`` when there are at least 12 of them
(their mean and limits are then fixed); otherwise all points. A series of fewer than 12
points is ``insufficient_data`` (its chart is still drawn). The codes are those of
``transforms.spc``; words appear only in ``explanation`` and in the reports.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from transforms.parallel import run_jobs
from transforms.spc import PChartResult, RunChartResult, XmrResult, p_chart, run_chart, xmr

log = logging.getLogger("qi.outcomes")

MIN_POINTS = 12  # SPEC 7: fewer points than this is insufficient data
DATE = pa.timestamp("ms")

MART_SPC_POINTS_SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("measure_name", pa.string()),
        ("period", DATE),
        ("value", pa.float64()),
        ("centre", pa.float64()),
        ("lower_limit", pa.float64()),
        ("upper_limit", pa.float64()),
        ("lower_near", pa.float64()),
        ("upper_near", pa.float64()),
        ("point_type", pa.string()),
        ("rule", pa.string()),
        # 'YYYY-MM-DD': where the pattern that flagged this point began
        ("signal_period", pa.string()),
        ("in_baseline", pa.bool_()),
        ("provisional_limits", pa.bool_()),
        ("run_median", pa.float64()),
        ("run_shift", pa.bool_()),
        ("run_trend", pa.bool_()),
        # qicharts2's P chart, offered for a percentage with numerators and denominators,
        # on the measure's 0-100 scale so it can be drawn on the same chart
        ("p_centre", pa.float64()),
        ("p_lower_limit", pa.float64()),
        ("p_upper_limit", pa.float64()),
        ("revised", pa.bool_()),
        ("source_sha256", pa.string()),
        ("source_sheet", pa.string()),
        ("source_row", pa.int64()),
    ]
)

MART_PROJECT_OUTCOMES_SCHEMA = pa.schema(
    [
        ("reporting_period", pa.string()),
        ("project_id", pa.string()),
        ("measure_name", pa.string()),
        ("n_points", pa.int64()),
        ("centre", pa.float64()),
        ("lower_limit", pa.float64()),
        ("upper_limit", pa.float64()),
        ("latest_period", pa.string()),  # 'YYYY-MM-DD'
        ("latest_value", pa.float64()),
        ("target", pa.float64()),
        ("improvement_direction", pa.string()),
        ("variation", pa.string()),
        ("assurance", pa.string()),
        ("provisional_limits", pa.bool_()),
        ("rule", pa.string()),
        ("signal_period", pa.string()),  # 'YYYY-MM-DD'
        ("baseline", pa.string()),  # 'before_intervention' or 'all_points'
        ("baseline_points", pa.int64()),
        ("runs_signal", pa.bool_()),
        ("explanation", pa.string()),
    ]
)

PROJECT_COLUMNS = ("project_id", "measure_name", "measure_type", "improvement_direction", "target", "intervention_date")
MEASURE_COLUMNS = ("project_id", "measure_name", "period", "value")
# Read when present: the p-chart's counts, the newest value per period, each point's lineage.
MEASURE_OPTIONAL_COLUMNS = ("numerator", "denominator", "revised", "received_at", "source_sha256", "source_sheet",
                            "source_row")


# --- One project's series ---------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesAnalysis:
    """The XmR and run-chart analysis of one measure series, with the baseline it used."""

    periods: list[pd.Timestamp]
    xmr: XmrResult
    run: RunChartResult
    baseline: str  # 'before_intervention' or 'all_points'
    in_baseline: list[bool]


def analyse_series(
    periods: Sequence[pd.Timestamp],
    values: Sequence[float | None],
    *,
    improvement_direction: str,
    target: float | None,
    intervention_date: pd.Timestamp | None,
) -> SeriesAnalysis:
    """Analyse one series in period order (missing values allowed, and skipped).

    The limits come from the observed points before ``intervention_date`` when there are
    at least 12 of them, else from all points; the run chart's median from the same points.
    """
    observed = [i for i, v in enumerate(values) if v is not None and not pd.isna(v)]
    fix = None
    if intervention_date is not None and not pd.isna(intervention_date):
        before = sum(1 for i in observed if periods[i] < intervention_date)
        if before >= MIN_POINTS:
            fix = before
    chart = xmr(
        values,
        improvement_direction=improvement_direction,  # type: ignore[arg-type]
        target=target,
        fix_after_n_points=fix,
    )
    run = run_chart(values, baseline_points=fix)
    used = set(observed[:fix] if fix is not None else observed)
    return SeriesAnalysis(
        periods=list(periods),
        xmr=chart,
        run=run,
        baseline="before_intervention" if fix is not None else "all_points",
        in_baseline=[i in used for i in range(len(values))],
    )


# --- Words for commissioners -------------------------------------------------------------------

_RULE_WORDS = {
    "outside_limits": "outside the limits",
    "trend": "trend",
    "two_in_three": "two in three",
    "shift": "shift",
}


def _frequency(periods: Sequence[pd.Timestamp]) -> str:
    """'monthly', 'weekly' or '' from the period starts."""
    if all(p.day == 1 for p in periods) and all(
        (b - a).days >= 28 for a, b in zip(periods, periods[1:], strict=False)
    ):
        return "monthly"
    if len(periods) > 1 and all((b - a).days % 7 == 0 for a, b in zip(periods, periods[1:], strict=False)):
        return "weekly"
    return ""


def _when(period: pd.Timestamp, frequency: str) -> str:
    if frequency == "monthly":
        return period.strftime("%b %Y")
    if frequency == "weekly":
        return f"the week of {period.day} {period.strftime('%b %Y')}"
    return f"{period.day} {period.strftime('%b %Y')}"


def _kind(point_type: str) -> str:
    return {
        "special_cause_improvement": "improvement",
        "special_cause_concern": "concern",
    }.get(point_type, "an unusual change (neither better nor worse)")


def _describe_signal(analysis: SeriesAnalysis, i: int, frequency: str, *, ongoing: bool) -> str:
    """e.g. '8 points in a row above the average since Mar 2025 (shift)'."""
    chart = analysis.xmr
    rule = chart.rule[i]
    start = chart.signal_start[i]
    assert rule is not None and start is not None
    value = chart.values[i]
    points = [k for k in range(start, i + 1) if chart.values[k] is not None]
    count = len(points)
    since = _when(analysis.periods[start], frequency)
    span = f"since {since}" if ongoing else f"from {since} to {_when(analysis.periods[i], frequency)}"
    high = chart.mean[i] is not None and value is not None and value > chart.mean[i]
    if rule == "outside_limits":
        where = "above the upper process limit" if high else "below the lower process limit"
        if count == 1:  # the sentence names the rule itself
            return f"the {_when(analysis.periods[i], frequency)} value was {where}"
        what = f"{count} points in a row {where} {span}"
    elif rule == "trend":
        rising = value is not None and chart.values[start] is not None and value > chart.values[start]
        what = f"{count} points in a row {'rising' if rising else 'falling'} {span}"
    elif rule == "two_in_three":
        close = sum(1 for k in points if chart.rule[k] == "two_in_three")
        where = "the upper process limit" if high else "the lower process limit"
        what = f"{close} of {count} points close to {where} {span}"
    else:
        what = f"{count} points in a row {'above' if high else 'below'} the average {span}"
    return f"{what} ({_RULE_WORDS[rule]})"


def _target_words(target: float | None, measure_type: str | None) -> str:
    suffix = "%" if measure_type == "percentage" else ""
    return f"{target:g}{suffix}"


_ASSURANCE_WORDS = {
    "consistent_pass": "the target of {t} is consistently met",
    "consistent_fail": "the target of {t} is consistently missed",
    "inconsistent": "the target of {t} is hit and miss",
}


def explain(
    analysis: SeriesAnalysis,
    *,
    target: float | None = None,
    measure_type: str | None = None,
) -> str:
    """One plain-English sentence on what the chart shows, naming the rule and its period."""
    chart = analysis.xmr
    observed = [p for p, v in zip(analysis.periods, chart.values, strict=True) if v is not None]
    frequency = _frequency(observed)
    if chart.n_points < MIN_POINTS:
        unit = f"{frequency} " if frequency else ""
        return f"Not enough data yet: {chart.n_points} of the {MIN_POINTS} {unit}points needed."
    last = max(i for i, v in enumerate(chart.values) if v is not None)
    special = chart.latest_special_index
    if special == last:
        kind = _kind(chart.point_type[last])  # type: ignore[arg-type]
        sentence = f"{kind[0].upper()}{kind[1:]}: {_describe_signal(analysis, last, frequency, ongoing=True)}"
    elif special is not None:
        kind = _kind(chart.point_type[special])  # type: ignore[arg-type]
        sentence = (
            "No change now (common cause variation); the last signal was "
            f"{kind}: {_describe_signal(analysis, special, frequency, ongoing=False)}"
        )
    else:
        sentence = "No change: the latest value is within the expected range (common cause variation)"
    if chart.assurance is not None and target is not None:
        sentence += "; " + _ASSURANCE_WORDS[chart.assurance].format(t=_target_words(target, measure_type))
    return sentence + "."


# --- Builders ---------------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def _optional_float(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _direction(value: object, project_id: str) -> str:
    direction = str(value).strip().lower() if value is not None and not pd.isna(value) else ""
    if direction not in ("increase", "decrease", "neutral"):
        raise ValueError(f"project {project_id}: improvement_direction {value!r} is not increase or decrease")
    return direction


def _primary_series(dim_project: pd.DataFrame, fct_measure: pd.DataFrame):
    """Yield (project row, its primary measure's rows in period order) for every project."""
    measures = _primary_rows(dim_project, fct_measure)
    if "received_at" in measures.columns:  # one value per period: the newest (SPEC 4)
        measures = measures.sort_values("received_at", kind="stable")
    measures = measures.drop_duplicates(subset=["project_id", "measure_name", "period"], keep="last")
    measures = measures.sort_values(["project_id", "measure_name", "period"], kind="stable")  # once, not per series
    # Each series is a run of consecutive rows now: slices, not a groupby's copy of each group.
    ids, names = measures["project_id"].to_numpy(), measures["measure_name"].to_numpy()
    spans: dict[tuple, tuple[int, int]] = {}
    if len(ids):
        starts = np.flatnonzero(np.r_[True, (ids[1:] != ids[:-1]) | (names[1:] != names[:-1])])
        spans = {(ids[a], names[a]): (a, b) for a, b in zip(starts, [*starts[1:], len(ids)], strict=True)}
    for project in dim_project.sort_values("project_id", kind="stable").itertuples(index=False):
        span = spans.get((project.project_id, project.measure_name))
        if span is None:
            continue
        yield project, measures.iloc[span[0]:span[1]]  # (read by column: no copy, nor a new index)


def _primary_rows(dim_project: pd.DataFrame, fct_measure: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``fct_measure`` that belong to a project's primary measure (the only ones analysed)."""
    _require(dim_project, PROJECT_COLUMNS, "dim_project")
    _require(fct_measure, MEASURE_COLUMNS, "fct_measure")
    primary = pd.MultiIndex.from_frame(dim_project[["project_id", "measure_name"]])
    return fct_measure[pd.MultiIndex.from_frame(fct_measure[["project_id", "measure_name"]]).isin(primary)]


def _analyse(project, rows: pd.DataFrame) -> SeriesAnalysis:
    return _analyse_lists(project, [pd.Timestamp(p) for p in rows["period"]], [_optional_float(v) for v in rows["value"]])


def _analyse_lists(project, periods: list[pd.Timestamp], values: list[float | None]) -> SeriesAnalysis:
    return analyse_series(
        periods,
        values,
        improvement_direction=_direction(project.improvement_direction, project.project_id),
        target=_optional_float(project.target),
        intervention_date=None if pd.isna(project.intervention_date) else pd.Timestamp(project.intervention_date),
    )


def _iso(period: pd.Timestamp | None) -> str | None:
    return None if period is None else period.strftime("%Y-%m-%d")


def _frame(rows: list[dict], schema: pa.Schema) -> pd.DataFrame:
    return pa.Table.from_pylist(rows, schema=schema).to_pandas()


def _p_chart_of(project, rows: pd.DataFrame) -> PChartResult | None:
    """The P chart of a percentage measure's numerators and denominators, if it has any."""
    if project.measure_type != "percentage" or not {"numerator", "denominator"} <= set(rows.columns):
        return None
    if not (rows["numerator"].notna() & rows["denominator"].notna()).any():
        return None
    chart = p_chart([_optional_float(v) for v in rows["numerator"]], [_optional_float(v) for v in rows["denominator"]])
    scale = lambda xs: [None if x is None else 100 * x for x in xs]  # noqa: E731
    return PChartResult(scale(chart.proportion), scale(chart.centre), scale(chart.lower_limit), scale(chart.upper_limit))


def build_spc_points(dim_project: pd.DataFrame, fct_measure: pd.DataFrame) -> pd.DataFrame:
    """mart_spc_points: one row per project x primary measure x period, what the run charts draw.

    Each row has the value, the centre and (near) limits in force at that point, its point
    type and the rule that flagged it (with the period its pattern began), whether it is in
    the baseline, and the run chart's median with the IHI shift and trend flags. Lineage
    (source_sha256, source_sheet, source_row) comes from ``fct_measure``.
    """
    out: list[dict] = []
    for project, rows in _primary_series(dim_project, fct_measure):
        analysis = _analyse(project, rows)
        chart, run = analysis.xmr, analysis.run
        proportions = _p_chart_of(project, rows)
        # (as lists: a pandas lookup per row and column would cost more than the analysis)
        revised = rows["revised"].tolist() if "revised" in rows.columns else None
        sha = rows["source_sha256"].tolist() if "source_sha256" in rows.columns else None
        sheet = rows["source_sheet"].tolist() if "source_sheet" in rows.columns else None
        source_row = rows["source_row"].tolist() if "source_row" in rows.columns else None
        for i in range(len(rows)):
            start = chart.signal_start[i]
            out.append(
                {
                    "project_id": project.project_id,
                    "measure_name": project.measure_name,
                    "period": analysis.periods[i],
                    "value": chart.values[i],
                    "centre": chart.mean[i],
                    "lower_limit": chart.lower_limit[i],
                    "upper_limit": chart.upper_limit[i],
                    "lower_near": chart.lower_near[i],
                    "upper_near": chart.upper_near[i],
                    "point_type": chart.point_type[i],
                    "rule": chart.rule[i],
                    "signal_period": None if start is None else _iso(analysis.periods[start]),
                    "in_baseline": analysis.in_baseline[i],
                    "provisional_limits": chart.provisional,
                    "run_median": run.median,
                    "run_shift": run.shift[i],
                    "run_trend": run.trend[i],
                    "p_centre": proportions.centre[i] if proportions else None,
                    "p_lower_limit": proportions.lower_limit[i] if proportions else None,
                    "p_upper_limit": proportions.upper_limit[i] if proportions else None,
                    "revised": bool(revised[i]) if revised is not None else False,
                    "source_sha256": sha[i] if sha is not None else None,
                    "source_sheet": sheet[i] if sheet is not None else None,
                    "source_row": int(source_row[i]) if source_row is not None and not pd.isna(source_row[i]) else None,
                }
            )
    return _frame(out, MART_SPC_POINTS_SCHEMA)


def _month_after(reporting_period: str) -> pd.Timestamp:
    year, month = int(reporting_period[:4]), int(reporting_period[5:7])
    return pd.Timestamp(date(year + month // 12, month % 12 + 1, 1))


def outcome_row(
    reporting_period: str,
    project,
    analysis: SeriesAnalysis,
) -> dict:
    """The mart_project_outcomes row of one project's analysis as of ``reporting_period``."""
    chart = analysis.xmr
    last = max(i for i, v in enumerate(chart.values) if v is not None)
    target = _optional_float(project.target)
    enough = chart.n_points >= MIN_POINTS
    special = chart.latest_special_index if enough else None
    start = None if special is None else chart.signal_start[special]
    return {
        "reporting_period": reporting_period,
        "project_id": project.project_id,
        "measure_name": project.measure_name,
        "n_points": chart.n_points,
        "centre": chart.mean[last],
        "lower_limit": chart.lower_limit[last],
        "upper_limit": chart.upper_limit[last],
        "latest_period": _iso(analysis.periods[last]),
        "latest_value": chart.values[last],
        "target": target,
        "improvement_direction": _direction(project.improvement_direction, project.project_id),
        "variation": chart.variation if enough else "insufficient_data",
        "assurance": chart.assurance if enough else None,
        "provisional_limits": chart.provisional,
        "rule": None if special is None else chart.rule[special],
        "signal_period": None if start is None else _iso(analysis.periods[start]),
        "baseline": analysis.baseline,
        "baseline_points": chart.baseline_points,
        "runs_signal": analysis.run.runs_signal,
        "explanation": explain(analysis, target=target, measure_type=getattr(project, "measure_type", None)),
    }


def build_project_outcomes(dim_project: pd.DataFrame, fct_measure: pd.DataFrame, periods: list[str],
                           remembered: dict[str, dict] | None = None) -> pd.DataFrame:
    """mart_project_outcomes: one row per reporting_period x project.

    For each reporting period P ('YYYY-MM'), each project's primary measure is analysed on
    its points whose period starts before the end of month P (the data as of that period).
    A project with no such point yet has no row for P.

    ``remembered``: outcome rows of earlier builds by the key of what they were computed
    from (``prefix_keys``: the project's row and its first n points); a prefix found there
    is not analysed again (a new month then costs one analysis a project, not one per
    period). With it, the rows carry that key as ``input_key``, for the memo.
    """
    out: list[dict] = []
    hashes = _project_hashes(dim_project) if remembered is not None else {}
    for project, rows in _primary_series(dim_project, fct_measure):
        present = rows["value"].notna().to_numpy()  # (two columns read, not every column copied)
        series_periods = [pd.Timestamp(p) for p in rows["period"].to_numpy()[present]]
        series_values = [float(v) for v in rows["value"].to_numpy()[present]]
        keys = prefix_keys(hashes[project.project_id], series_periods, series_values) if remembered is not None else []
        previous: tuple[int, dict] | None = None
        for reporting_period in periods:
            known = bisect.bisect_left(series_periods, _month_after(reporting_period))
            if not known:
                continue
            if previous is None or previous[0] != known:  # no new point: the same analysis
                row = remembered.get(keys[known - 1]) if remembered is not None else None
                if row is None:
                    analysis = _analyse_lists(project, series_periods[:known], series_values[:known])
                    row = outcome_row(reporting_period, project, analysis)
                if remembered is not None:
                    row = {**row, "input_key": keys[known - 1]}
                previous = (known, row)
            out.append({**previous[1], "reporting_period": reporting_period})
    frame = _frame(out, MART_PROJECT_OUTCOMES_SCHEMA if remembered is None else SpcMemo.OUTCOMES_SCHEMA)
    return frame.sort_values(["reporting_period", "project_id"], ignore_index=True)


def _project_hashes(dim_project: pd.DataFrame) -> dict[str, bytes]:
    """project_id -> a hash of its whole dim_project row (and the columns it has)."""
    hashes = pd.util.hash_pandas_object(dim_project, index=False).to_numpy()
    columns = ",".join(dim_project.columns).encode()
    return {pid: columns + h.tobytes() for pid, h in zip(dim_project["project_id"], hashes, strict=True)}


def prefix_keys(project_hash: bytes, periods: list[pd.Timestamp], values: list[float]) -> list[str]:
    """For n = 1, 2, ...: a key of the project's row and its first n points (period, value),
    everything an outcome row as of n points is computed from."""
    digest = hashlib.sha256(f"{SPC_MEMO_VERSION}|outcome|".encode() + project_hash)
    keys = []
    for period, value in zip(periods, values, strict=True):
        digest.update(f"|{period.isoformat()}={value!r}".encode())
        keys.append(digest.copy().hexdigest()[:32])
    return keys


SPC_IN_PROCESS_BELOW = 100  # fewer projects are analysed here: shipping them to workers would cost more


def _outcome_marts(job: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    projects, measures, periods, remembered, points_known = job
    outcomes = build_project_outcomes(projects, measures, periods, remembered)
    pending = projects[~projects["project_id"].isin(points_known)]
    return outcomes, build_spc_points(pending, measures[measures["project_id"].isin(pending["project_id"])])


def build_outcome_marts(dim_project: pd.DataFrame, fct_measure: pd.DataFrame, periods: list[str], *,
                        workers: int = 1, memo_path: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mart_project_outcomes, mart_spc_points), the same as building each on its own.

    Projects are analysed independently, so with ``workers`` > 1 and enough projects they
    go to worker processes in runs of consecutive project ids (each with only its own
    measure rows), and the pieces are put back in the order the builders give.

    ``memo_path``: a folder keeping what earlier builds computed (``SpcMemo``): a project
    whose inputs are unchanged keeps its points, and an outcome row is computed only for a
    number of points never analysed with the same project row and the same earlier points
    (a new month: one analysis a project, not one a period).
    """
    # Only what the analysis reads: a project's register row re-sent unchanged (new lineage,
    # a new received_at) keeps its memo entries, and a column the analysis started to read
    # without being listed here would fail loudly, not go stale in the memo.
    _require(dim_project, PROJECT_COLUMNS, "dim_project")
    dim_project = dim_project[list(PROJECT_COLUMNS)]
    # Likewise the measure rows: the memo must not depend on columns a caller happens to
    # carry (the history's superseded flag), nor the workers receive them.
    fct_measure = fct_measure[[c for c in (*MEASURE_COLUMNS, *MEASURE_OPTIONAL_COLUMNS) if c in fct_measure.columns]]
    if memo_path is None:
        return _analyse_projects(dim_project, fct_measure, periods, workers)
    projects = dim_project.sort_values("project_id", kind="stable", ignore_index=True)
    rows = _primary_rows(projects, fct_measure)
    keys = _input_keys(projects, rows)
    memo = SpcMemo.open(memo_path)
    points_known = memo.points_known(keys)
    outcomes, points = _analyse_projects(projects, rows, periods, workers, memo.remembered_outcomes(), points_known)
    cached_points = memo.points_for({p: keys[p] for p in points_known})
    points = pd.concat([cached_points, points], ignore_index=True).sort_values("project_id", kind="stable",
                                                                              ignore_index=True)
    memo.save(keys, outcomes, points)
    return outcomes.drop(columns="input_key"), points


def _analyse_projects(dim_project: pd.DataFrame, fct_measure: pd.DataFrame, periods: list[str], workers: int,
                      remembered: dict[str, dict] | None = None,
                      points_known: set[str] = frozenset()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outcomes (with ``input_key`` when ``remembered`` is given) and the points of the
    projects not in ``points_known``."""
    projects = dim_project.sort_values("project_id", kind="stable", ignore_index=True)
    fct_measure = _primary_rows(projects, fct_measure)  # ship nothing that is not analysed
    if workers <= 1 or len(projects) < SPC_IN_PROCESS_BELOW:
        return _outcome_marts((projects, fct_measure, periods, remembered, points_known))
    pieces = 2 * workers  # uneven series lengths: more pieces than workers keeps both busy
    bounds = [len(projects) * i // pieces for i in range(pieces + 1)]
    jobs = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        part = projects.iloc[lo:hi]
        ids = set(part["project_id"])
        # (only this piece's remembered rows travel)
        mine = None if remembered is None else {k: r for k, r in remembered.items() if r["project_id"] in ids}
        jobs.append((part, fct_measure[fct_measure["project_id"].isin(ids)], periods, mine, points_known & ids))
    results = run_jobs(_outcome_marts, jobs, workers=workers)
    outcomes = pd.concat([r[0] for r in results], ignore_index=True)
    outcomes = outcomes.sort_values(["reporting_period", "project_id"], ignore_index=True)
    points = pd.concat([r[1] for r in results], ignore_index=True)
    return outcomes, points


# Bump when a change to the analysis changes what the same inputs give: the memo is ignored.
SPC_MEMO_VERSION = "3"


def _input_keys(projects: pd.DataFrame, rows: pd.DataFrame) -> dict[str, str]:
    """project_id -> a hash of everything its analysis reads: its dim_project row and its
    primary measure's rows, in the order given (newest-per-period picks depend on it)."""
    project_hash = pd.util.hash_pandas_object(projects, index=False).to_numpy()
    row_hash = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    positions = rows.groupby("project_id", sort=False).indices if len(rows) else {}
    columns = ",".join(projects.columns) + "|" + ",".join(rows.columns)
    keys = {}
    for project_id, h in zip(projects["project_id"], project_hash, strict=True):
        digest = hashlib.sha256(f"{SPC_MEMO_VERSION}|{columns}|".encode())
        digest.update(h.tobytes())
        digest.update(row_hash[positions.get(project_id, [])].tobytes())
        keys[project_id] = digest.hexdigest()[:32]
    return keys


class SpcMemo:
    """What earlier builds computed, in two Parquet files in ``folder``: each project's
    mart_spc_points rows under the hash of all its inputs (``_input_keys``), and every
    mart_project_outcomes row under the key of what it was computed from (``prefix_keys``:
    the project's row and its first n points; the reporting period does not matter).
    Derived data: a missing or unreadable memo only means everything is analysed."""

    POINTS, OUTCOMES = "spc_memo_points.parquet", "spc_memo_outcomes.parquet"
    POINTS_SCHEMA = MART_SPC_POINTS_SCHEMA.append(pa.field("input_key", pa.string()))
    OUTCOMES_SCHEMA = MART_PROJECT_OUTCOMES_SCHEMA.append(pa.field("input_key", pa.string()))

    def __init__(self, folder: Path, points: pd.DataFrame, outcomes: pa.Table) -> None:
        self.folder, self.points, self.outcomes = folder, points, outcomes

    @classmethod
    def open(cls, folder: Path) -> SpcMemo:
        import pyarrow.parquet as pq

        from transforms.storage import empty_frame, read_table

        try:
            points = read_table(folder / cls.POINTS, cls.POINTS_SCHEMA)
            outcomes = pq.read_table(folder / cls.OUTCOMES).select(cls.OUTCOMES_SCHEMA.names).cast(cls.OUTCOMES_SCHEMA)
        except Exception as exc:  # noqa: BLE001 - missing or unreadable: analyse everything
            if not isinstance(exc, FileNotFoundError):
                log.warning("SPC memo unreadable, analysing every project again: %s", type(exc).__name__)
            points, outcomes = empty_frame(cls.POINTS_SCHEMA), cls.OUTCOMES_SCHEMA.empty_table()
        return cls(folder, points, outcomes)

    def points_known(self, keys: dict[str, str]) -> set[str]:
        """The projects whose points the memo holds for their current inputs."""
        held = set(self.points["input_key"])
        return {project for project, key in keys.items() if key in held}

    def remembered_outcomes(self) -> dict[str, dict]:
        """Outcome rows (as ``outcome_row`` gives them) by the key of what they came from."""
        rows = self.outcomes.drop_columns(["reporting_period"]).to_pylist()
        return {row.pop("input_key"): row for row in rows}

    def points_for(self, keys: dict[str, str]) -> pd.DataFrame:
        return self.points[self.points["input_key"].isin(set(keys.values()))].drop(columns="input_key")

    def save(self, keys: dict[str, str], outcomes: pd.DataFrame, points: pd.DataFrame) -> None:
        """Keep the current projects' analyses (and nothing else). ``outcomes`` carry their
        ``input_key`` (``build_project_outcomes`` with ``remembered``)."""
        from transforms.storage import write_table

        write_table(points.assign(input_key=points["project_id"].map(keys)), self.folder / self.POINTS,
                    self.POINTS_SCHEMA)
        write_table(outcomes.drop_duplicates(["input_key"], ignore_index=True), self.folder / self.OUTCOMES,
                    self.OUTCOMES_SCHEMA)
