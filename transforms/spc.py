"""Did it improve? Statistical process control and run charts for a project's measure (SPEC 7).

Three pure functions on plain sequences of numbers, one value per period in time order
(``None`` or NaN for a missing period):

- ``xmr``: the XmR (individuals) chart of NHS England's "Making Data Count", as the R
  package NHSRplotthedots v0.2.x computes it (``ptd_spc``): mean, process limits
  (mean +/- 2.66 x mean moving range), near limits (two thirds of that), outlying moving
  ranges screened, the four special-cause rules in the package's order of precedence,
  variation and assurance.
- ``run_chart``: the median, the IHI shift and trend rules (Perla, Provost & Murray
  2011) and the Anhoej runs analysis exactly as qicharts2 computes it.
- ``p_chart``: qicharts2's P control chart limits.

One deliberate difference from NHSRplotthedots (SPEC 7): missing periods are dropped
before the analysis. The series is the observed points in order, so a gap neither breaks
a run nor removes the moving ranges beside it, and ``fix_after_n_points`` counts observed
points. A missing period keeps its group's centre and limits (so a chart's lines run
through it) but has no point type or rule.

The private helpers mirror the package's internal functions one to one (same names
without the ``ptd_`` prefix), so the package's unit tests port directly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ImprovementDirection = Literal["increase", "decrease", "neutral"]

POINT_TYPES = (
    "common_cause",
    "special_cause_improvement",
    "special_cause_concern",
    "special_cause_neutral_high",
    "special_cause_neutral_low",
)
RULES = ("outside_limits", "trend", "two_in_three", "shift")
VARIATIONS = (
    "common_cause",
    "improvement_high",
    "improvement_low",
    "concern_high",
    "concern_low",
    "neutral_high",
    "neutral_low",
)
ASSURANCES = ("consistent_pass", "consistent_fail", "inconsistent")

# ptd_spc_standard's constants, written the same way so the floating point agrees.
LIMIT = 2.66
LIMIT_CLOSE = 2 * (LIMIT / 3)
MR_SCREEN = 3.267
# Fewer points than this in a group gives trial ("provisional") limits: SPEC 7, and the
# package's documentation, warning text ("n < 12") and tests. (Its code default,
# getOption("ptd_spc.warning_threshold", 13), also flags a group of exactly 12.)
SHORT_GROUP = 12
MIN_FIX_AFTER = 12

Number = float | int | None


def _clean(value: object) -> float | None:
    """A value as float, or None for a missing period (None, NaN, pandas NA)."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _mean(values: Sequence[float]) -> float | None:
    """R's ``mean``: the sum over n, then one correcting pass (so a constant's mean is exact)."""
    if not values:
        return None
    n = len(values)
    s = math.fsum(values) / n
    if math.isfinite(s):
        s += math.fsum(v - s for v in values) / n
    return s


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


# --- The package's rule helpers (R/ptd_calculate_point_type.R) ------------------------


def _seven_point_one_side_mean(v: Sequence[int]) -> list[int]:
    """1 at the 7th (and later) point of a run of 7 on one side of the mean; 0 on the mean breaks it."""
    vp = [0] * 6 + list(v)
    return [int(vp[i] != 0 and all(vp[i] == vp[i - k] for k in range(1, 7))) for i in range(6, len(vp))]


def _part_of_seven_trend(v: Sequence[int]) -> list[int]:
    """1 where this point or one of the next six ends a run of seven."""
    vp = list(v) + [0] * 6
    return [int(any(abs(vp[i + k]) == 1 for k in range(7))) for i in range(len(v))]


def _seven_point_trend(y: Sequence[float]) -> list[int]:
    """+1 / -1 at a point ending 7 points all increasing / all decreasing (a tie breaks it)."""
    n = len(y)
    if n < 7:
        return [0] * n
    out = [0] * 6
    for i in range(6, n):
        steps = [_sign(y[i - k] - y[i - k - 1]) for k in range(6)]
        out.append(1 if all(s == 1 for s in steps) else -1 if all(s == -1 for s in steps) else 0)
    return out


def _two_in_three(v: Sequence[int], rtm: Sequence[int]) -> list[int]:
    """1 where a window of 3 containing the point has >= 2 close points, all 3 on one side."""
    vp = [0, 0, *v, 0, 0]
    rp = [0, 0, *rtm, 0, 0]
    out = []
    for i in range(len(v)):
        hit = False
        for start in (i, i + 1, i + 2):
            if sum(vp[start : start + 3]) >= 2 and abs(sum(rp[start : start + 3])) == 3:
                hit = True
        out.append(int(hit))
    return out


def _part_of_two_in_three(v: Sequence[int], x: Sequence[int]) -> list[int]:
    """Only the close points themselves of a 2-in-3 window are flagged."""
    return [int(a == 1 and abs(b) == 1) for a, b in zip(v, x, strict=True)]


@dataclass(frozen=True)
class _RuleFlags:
    """Each rule's own flags (before precedence) and the side or direction they point."""

    outside: list[int]
    trend: list[int]
    two_in_three: list[int]
    shift: list[int]
    trend_sign: list[int]
    side: list[int]


def _rule_flags(y: Sequence[float], rtm: Sequence[int], close: Sequence[int], outside: Sequence[int]) -> _RuleFlags:
    """ptd_special_cause_type, before its case_when."""
    trend = _part_of_seven_trend(_seven_point_trend(y))
    two = _part_of_two_in_three(_two_in_three(close, rtm), close)
    shift = _part_of_seven_trend(_seven_point_one_side_mean(rtm))
    n = len(y)
    # A point that is part of a trend on both sides takes the direction on its right.
    trend_sign = []
    for i in range(n):
        if trend[i] and i + 1 < n and trend[i + 1]:
            d = _sign(y[i + 1] - y[i])
        else:
            d = _sign(y[i] - y[i - 1]) if i > 0 else 0
        trend_sign.append(1 if d == 1 else -1)  # the package labels anything but +1 "Decreasing"
    side = [1 if r > 0 else -1 for r in rtm]
    return _RuleFlags(list(outside), trend, two, shift, trend_sign, side)


def _special_cause_type(flags: _RuleFlags, rtm: Sequence[int]) -> list[tuple[str | None, int]]:
    """(rule, +1 high / -1 low) per point, in the package's order of precedence."""
    out: list[tuple[str | None, int]] = []
    for i in range(len(rtm)):
        if flags.outside[i]:
            out.append(("outside_limits", 1 if rtm[i] == 1 else -1))
        elif flags.trend[i]:
            out.append(("trend", flags.trend_sign[i]))
        elif flags.two_in_three[i]:
            out.append(("two_in_three", flags.side[i]))
        elif flags.shift[i]:
            out.append(("shift", flags.side[i]))
        else:
            out.append((None, 0))
    return out


def _point_type(sign: int, direction: int) -> str:
    """ptd_point_type: orient high / low through the improvement direction."""
    if sign == 0:
        return "common_cause"
    if direction == 0:
        return "special_cause_neutral_high" if sign > 0 else "special_cause_neutral_low"
    return "special_cause_improvement" if sign * direction > 0 else "special_cause_concern"


def _signal_start(flags: _RuleFlags, rule: str, sign: int, i: int) -> int:
    """Where the pattern that flagged point ``i`` began (same rule, same side or direction)."""
    raw, signs = {
        "outside_limits": (flags.outside, flags.side),
        "trend": (flags.trend, flags.trend_sign),
        "two_in_three": (flags.two_in_three, flags.side),
        "shift": (flags.shift, flags.side),
    }[rule]
    start, j = i, i - 1
    while j >= 0:
        if raw[j] and signs[j] == sign:
            start, j = j, j - 1
        elif rule == "two_in_three" and j >= 1 and raw[j - 1] and signs[j - 1] == sign:
            start, j = j - 1, j - 2  # a 2-in-3 window may hold one point that is not close
        else:
            break
    return start


# --- XmR ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class XmrResult:
    """An XmR chart: per-point lists (same length as the input) and a summary.

    ``signal_start`` gives, for each special-cause point, the index (in the input) of the
    first point of the pattern that flagged it. ``group`` is the rebase group of each
    point. ``baseline_points`` is how many points the latest group's limits came from.
    """

    values: list[float | None]
    mean: list[float | None]
    lower_limit: list[float | None]
    upper_limit: list[float | None]
    lower_near: list[float | None]
    upper_near: list[float | None]
    point_type: list[str | None]
    rule: list[str | None]
    signal_start: list[int | None]
    group: list[int]
    variation: str | None
    assurance: str | None
    provisional: bool
    n_points: int
    baseline_points: int

    @property
    def latest_special_index(self) -> int | None:
        """Index of the last special-cause point, or None."""
        for i in range(len(self.point_type) - 1, -1, -1):
            if self.point_type[i] not in (None, "common_cause"):
                return i
        return None


_DIRECTIONS = {"increase": 1, "neutral": 0, "decrease": -1}


def _variation(point_type: str, direction: str) -> str:
    """The variation icon of geom_ptd_icon for the last point."""
    if point_type == "common_cause":
        return "common_cause"
    if point_type == "special_cause_neutral_high":
        return "neutral_high"
    if point_type == "special_cause_neutral_low":
        return "neutral_low"
    high = direction == "increase"
    if point_type == "special_cause_improvement":
        return "improvement_high" if high else "improvement_low"
    return "concern_low" if high else "concern_high"


def _assurance(target: float | None, direction: str, lpl: float | None, upl: float | None) -> str | None:
    """ptd_calculate_assurance_type on the latest group's limits."""
    if target is None or direction == "neutral":
        return None
    increasing = direction == "increase"
    # The package compares with NA limits too: both comparisons are NA, so "inconsistent".
    if upl is not None and target > upl:
        return "consistent_fail" if increasing else "consistent_pass"
    if lpl is not None and target < lpl:
        return "consistent_pass" if increasing else "consistent_fail"
    return "inconsistent"


def xmr(
    values: Sequence[Number],
    *,
    improvement_direction: ImprovementDirection = "increase",
    target: float | None = None,
    fix_after_n_points: int | None = None,
    rebase_at: Sequence[int] = (),
    screen_outliers: bool = True,
) -> XmrResult:
    """The XmR chart of ``values`` (time order; None or NaN for a missing period).

    ``rebase_at`` holds 0-based indices into ``values`` where a new group starts, with
    its own limits and rules. ``fix_after_n_points`` (>= 12) takes each group's mean and
    limits from its first n observed points. ``target`` gives the assurance of the
    latest group. Raises ValueError for an unknown direction, a fix below 12 or a rebase
    index outside the series.
    """
    if improvement_direction not in _DIRECTIONS:
        raise ValueError("improvement_direction must be one of 'increase', 'decrease' or 'neutral'")
    if fix_after_n_points is not None and (
        isinstance(fix_after_n_points, bool)
        or not isinstance(fix_after_n_points, numbers.Real)
        or fix_after_n_points < MIN_FIX_AFTER
    ):
        raise ValueError("fix_after_n_points must be a single numeric that is greater than or equal to 12.")
    ys = [_clean(v) for v in values]
    n = len(ys)
    starts = sorted({int(r) for r in rebase_at})
    if any(r < 0 or r >= n for r in starts):
        raise ValueError(f"rebase_at indices must be between 0 and {n - 1}")
    target_value = _clean(target)
    direction = _DIRECTIONS[improvement_direction]

    group = [sum(1 for r in starts if 0 < r <= i) for i in range(n)]
    none_list: list = [None] * n
    mean, lpl, upl, nlpl, nupl = (list(none_list) for _ in range(5))
    point_type: list[str | None] = list(none_list)
    rule: list[str | None] = list(none_list)
    signal_start: list[int | None] = list(none_list)
    group_sizes: dict[int, int] = {}
    group_baseline: dict[int, int] = {}
    group_limits: dict[int, tuple] = {}

    for g in sorted(set(group)):
        index = [i for i in range(n) if group[i] == g and ys[i] is not None]
        y = [ys[i] for i in index]  # type: ignore[misc]
        group_sizes[g] = len(y)
        if not y:
            continue
        fix = y[: int(fix_after_n_points)] if fix_after_n_points is not None else y
        group_baseline[g] = len(fix)
        centre = _mean(fix)
        assert centre is not None
        mr = [abs(fix[k] - fix[k - 1]) for k in range(1, len(fix))]
        amr = _mean(mr)
        if screen_outliers and amr is not None:
            threshold = MR_SCREEN * amr
            amr = _mean([m for m in mr if m < threshold])
        if amr is None:  # no moving range left: R gives NaN limits
            limits = (centre, None, None, None, None)
        else:
            limits = (
                centre,
                centre - (LIMIT * amr),
                centre + (LIMIT * amr),
                centre - (LIMIT_CLOSE * amr),
                centre + (LIMIT_CLOSE * amr),
            )
        group_limits[g] = limits
        _, lo, hi, near_lo, near_hi = limits
        outside = [int(lo is not None and (v > hi or v < lo)) for v in y]
        rtm = [_sign(v - centre) for v in y]
        close = [
            int(near_lo is not None and not out and (v < near_lo or v > near_hi))
            for v, out in zip(y, outside, strict=True)
        ]
        flags = _rule_flags(y, rtm, close, outside)
        for k, (fired, sign) in enumerate(_special_cause_type(flags, rtm)):
            i = index[k]
            point_type[i] = _point_type(sign, direction)
            rule[i] = fired
            if fired is not None:
                signal_start[i] = index[_signal_start(flags, fired, sign, k)]

    for i in range(n):
        if group[i] in group_limits:
            mean[i], lpl[i], upl[i], nlpl[i], nupl[i] = group_limits[group[i]]

    observed = [i for i in range(n) if ys[i] is not None]
    if observed:
        last = observed[-1]
        latest_group = group[last]
        variation = _variation(point_type[last], improvement_direction)  # type: ignore[arg-type]
        assurance = _assurance(target_value, improvement_direction, lpl[last], upl[last])
        latest_size = group_sizes[latest_group]
        baseline_points = group_baseline[latest_group]
    else:
        variation, assurance, latest_size, baseline_points = None, None, 0, 0

    return XmrResult(
        values=ys,
        mean=mean,
        lower_limit=lpl,
        upper_limit=upl,
        lower_near=nlpl,
        upper_near=nupl,
        point_type=point_type,
        rule=rule,
        signal_start=signal_start,
        group=group,
        variation=variation,
        assurance=assurance,
        provisional=latest_size < SHORT_GROUP,
        n_points=len(observed),
        baseline_points=baseline_points,
    )


# --- Run chart -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunChartResult:
    """A run chart: the median, per-point IHI shift and trend flags, and the Anhoej analysis.

    The Anhoej fields follow qicharts2's ``runs.analysis``: ``n_useful`` counts points
    not on the median; with none, the run and crossing fields are None and there is no
    signal.
    """

    median: float | None
    shift: list[bool]
    trend: list[bool]
    n_obs: int
    n_useful: int
    longest_run: int | None
    longest_run_max: int | None
    n_crossings: int | None
    n_crossings_min: int | None
    runs_signal: bool


SHIFT_POINTS = 6
TREND_POINTS = 5


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def qbinom_05(size: int) -> int:
    """R's ``qbinom(0.05, size, 0.5)``: the smallest k with P(X <= k) >= 0.05, exactly."""
    total = 2**size
    cumulative = 0
    for k in range(size + 1):
        cumulative += math.comb(size, k)
        if 20 * cumulative >= total:
            return k
    return size


def longest_run_limit(n_useful: int) -> int:
    """``round(log2(n) + 3)`` (Schilling 2012); never a tie, so R's and Python's round agree."""
    return round(math.log2(n_useful)) + 3


def _ihi_shift(y: Sequence[float], centre: float) -> list[bool]:
    """6 or more on one side of the median; points on the median neither add nor break."""
    flags = [False] * len(y)
    run: list[int] = []
    side = 0
    for i, v in enumerate([*y, None]):
        s = 0 if v is None else _sign(v - centre)
        if v is not None and s == 0:
            continue
        if v is None or s != side:
            if len(run) >= SHIFT_POINTS:
                for k in run:
                    flags[k] = True
            run, side = [], s
        run.append(i)
    return flags


def _ihi_trend(y: Sequence[float]) -> list[bool]:
    """5 or more going up or down; a repeated value neither adds nor breaks."""
    flags = [False] * len(y)
    # Collapse repeats: each distinct step keeps the original indices it stands for.
    blocks: list[list[int]] = []
    for i, v in enumerate(y):
        if blocks and y[blocks[-1][0]] == v:
            blocks[-1].append(i)
        else:
            blocks.append([i])
    steps = [_sign(y[blocks[b + 1][0]] - y[blocks[b][0]]) for b in range(len(blocks) - 1)]
    b = 0
    while b < len(steps):
        e = b
        while e + 1 < len(steps) and steps[e + 1] == steps[b]:
            e += 1
        if e - b + 2 >= TREND_POINTS:  # steps b..e join blocks b..e+1
            for block in blocks[b : e + 2]:
                for k in block:
                    flags[k] = True
        b = e + 1
    return flags


def run_chart(
    values: Sequence[Number],
    *,
    baseline_points: int | None = None,
    median: float | None = None,
) -> RunChartResult:
    """The run chart of ``values`` (time order; None or NaN for a missing period).

    The median comes from the first ``baseline_points`` observed values (all of them when
    None) unless ``median`` fixes it. The Anhoej runs analysis covers every observed point
    against that centre line, as qicharts2 does after a ``freeze``.
    """
    ys = [_clean(v) for v in values]
    index = [i for i, v in enumerate(ys) if v is not None]
    y = [ys[i] for i in index]  # type: ignore[misc]
    if median is not None:
        centre: float | None = float(median)
    else:
        base = y[:baseline_points] if baseline_points is not None else y
        centre = _median(base)  # type: ignore[arg-type]
    shift = [False] * len(ys)
    trend = [False] * len(ys)
    if centre is None:
        return RunChartResult(None, shift, trend, len(y), 0, None, None, None, None, False)
    for k, flag in enumerate(_ihi_shift(y, centre)):
        shift[index[k]] = flag
    for k, flag in enumerate(_ihi_trend(y)):
        trend[index[k]] = flag

    runs = [s for s in (_sign(v - centre) for v in y) if s != 0]
    n_useful = len(runs)
    if not n_useful:
        return RunChartResult(centre, shift, trend, len(y), 0, None, None, None, None, False)
    lengths = [1]
    for a, b in zip(runs, runs[1:], strict=False):
        if a == b:
            lengths[-1] += 1
        else:
            lengths.append(1)
    longest = max(lengths)
    longest_max = longest_run_limit(n_useful)
    crossings = len(lengths) - 1
    crossings_min = qbinom_05(n_useful - 1)
    return RunChartResult(
        median=centre,
        shift=shift,
        trend=trend,
        n_obs=len(y),
        n_useful=n_useful,
        longest_run=longest,
        longest_run_max=longest_max,
        n_crossings=crossings,
        n_crossings_min=crossings_min,
        runs_signal=longest > longest_max or crossings < crossings_min,
    )


# --- P chart -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PChartResult:
    """A P chart on the 0-1 scale: per-point lists, None where the point is missing."""

    proportion: list[float | None]
    centre: list[float | None]
    lower_limit: list[float | None]
    upper_limit: list[float | None]


def p_chart(numerators: Sequence[Number], denominators: Sequence[Number]) -> PChartResult:
    """qicharts2's P chart (``qic.p``): centre = total numerator / total denominator,
    limits = centre +/- 3 sqrt(centre (1 - centre) / n), clamped to [0, 1].

    A point with a missing numerator or denominator, or a denominator <= 0, is missing:
    it takes no part in the centre and has no limits.
    """
    if len(numerators) != len(denominators):
        raise ValueError("numerators and denominators must be the same length")
    nums = [_clean(v) for v in numerators]
    dens = [_clean(v) for v in denominators]
    valid = [i for i in range(len(nums)) if nums[i] is not None and dens[i] is not None and dens[i] > 0]  # type: ignore[operator]
    n = len(nums)
    proportion: list[float | None] = [None] * n
    centre_out: list[float | None] = [None] * n
    lcl: list[float | None] = [None] * n
    ucl: list[float | None] = [None] * n
    if not valid:
        return PChartResult(proportion, centre_out, lcl, ucl)
    cl = math.fsum(nums[i] for i in valid) / math.fsum(dens[i] for i in valid)  # type: ignore[misc]
    for i in valid:
        size = dens[i]
        stdev = math.sqrt(cl * (1 - cl) / size)  # type: ignore[operator]
        proportion[i] = nums[i] / size  # type: ignore[operator]
        centre_out[i] = cl
        ucl[i] = min(cl + 3 * stdev, 1.0)
        lcl[i] = max(cl - 3 * stdev, 0.0)
    return PChartResult(proportion, centre_out, lcl, ucl)
