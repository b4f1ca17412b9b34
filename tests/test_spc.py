"""Tests for transforms.spc against the reference tools' published expected values.

Every case from a package cites where it came from:
- NHSRplotthedots v0.2.2 (github.com/nhs-r-community/NHSRplotthedots, tag 0.2.2):
  tests/testthat/*.R, tests/testthat/_snaps/*.md, vignettes/*.Rmd, README.Rmd.
- qicharts2 v0.8.1 (github.com/anhoej/qicharts2): tests/testthat/*.R and the reference
  data frames they compare with (tests/testthat/*.rds, read out with an R-serialisation
  reader; inputs and expected outputs are both stored in those frames), and the
  vignette qicharts2.Rmd (rendered in docs/articles/qicharts2.html).
- IHI run-chart rules: Perla RJ, Provost LP, Murray SK. The run chart: a simple analytical
  tool for learning from variation in healthcare processes. BMJ Qual Saf 2011;20:46-51.
  No public test suite publishes values for these, so those cases are built from the
  rule text.

Several package tests draw their data with R's ``set.seed(s); rnorm(n)``. ``r_rnorm``
reproduces R's default generator (Mersenne-Twister seeded by R's ``set.seed``
scrambling, normals by inversion); its first five values are checked against the
package snapshot, which prints them.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import spc
from transforms.spc import p_chart, run_chart, xmr

# --- R's set.seed / rnorm ------------------------------------------------------------------


class _RNorm:
    """R's ``set.seed(seed)`` then successive ``rnorm`` calls (Mersenne-Twister, Inversion)."""

    BIG = 134217728  # 2^27, R's INVERSION

    def __init__(self, seed: int):
        s = seed & 0xFFFFFFFF
        for _ in range(50):  # RNG_Init's initial scrambling
            s = (69069 * s + 1) & 0xFFFFFFFF
        key = []
        for _ in range(625):  # dummy[0] (mti) then mt[624]
            s = (69069 * s + 1) & 0xFFFFFFFF
            key.append(s)
        self._bits = np.random.MT19937()
        self._bits.state = {
            "bit_generator": "MT19937",
            "state": {"key": np.array(key[1:], dtype=np.uint32), "pos": 624},
        }

    def _unif(self) -> float:
        return int(self._bits.random_raw()) * 2.3283064365386963e-10

    def rnorm(self, n: int, mean: float = 0.0) -> list[float]:
        out = []
        for _ in range(n):
            u = self._unif()
            u = int(self.BIG * u) + self._unif()
            out.append(mean + NormalDist().inv_cdf(u / self.BIG))
        return out


def r_rnorm(seed: int, n: int) -> list[float]:
    return _RNorm(seed).rnorm(n)


def test_r_rnorm_reproduces_r():
    # NHSRplotthedots tests/testthat/_snaps/ptd_spc_standard.md prints set.seed(123); rnorm(20).
    assert [round(v, 8) for v in r_rnorm(123, 20)[:5]] == [
        -0.56047565,
        -0.23017749,
        1.55870831,
        0.07050839,
        0.12928774,
    ]


RNORM_123 = r_rnorm(123, 20)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


# --- NHSRplotthedots: rule helpers (tests/testthat/test-ptd_calculate_point_type.R) ---------


def test_seven_point_one_side_mean():
    # test-ptd_calculate_point_type.R: "ptd_seven_point_one_side_mean works as expected"
    f = spc._seven_point_one_side_mean
    assert f([]) == []
    assert f([1] * 6) == [0] * 6
    assert f([1] * 6 + [-1]) == [0] * 7
    assert f([1] * 8 + [-1]) == [0, 0, 0, 0, 0, 0, 1, 1, 0]
    assert f([-1] * 8 + [1]) == [0, 0, 0, 0, 0, 0, 1, 1, 0]


def test_part_of_seven_trend():
    # test-ptd_calculate_point_type.R: "ptd_part_of_seven_trend works as expected"
    f = spc._part_of_seven_trend
    assert f([]) == []
    assert f([0] * 6) == [0] * 6
    assert f([0] * 6 + [1, 0]) == [1] * 7 + [0]
    assert f([0] * 7 + [1, 0]) == [0] + [1] * 7 + [0]
    assert f([0] * 6 + [-1, 0]) == [1] * 7 + [0]
    assert f([0] * 7 + [-1, 0]) == [0] + [1] * 7 + [0]


def test_seven_point_trend():
    # test-ptd_calculate_point_type.R: "ptd_seven_point_trend works as expected"
    f = spc._seven_point_trend
    assert f([]) == []
    assert f(list(range(1, 7))) == [0] * 6
    assert f([1, 2, 3, 3, 4, 5, 6]) == [0] * 7
    assert f(list(range(1, 8))) == [0, 0, 0, 0, 0, 0, 1]
    assert f([2, *range(1, 8), 3]) == [0, 0, 0, 0, 0, 0, 0, 1, 0]
    assert f(list(range(7, 0, -1))) == [0, 0, 0, 0, 0, 0, -1]
    assert f([2, *range(7, 0, -1), 3]) == [0, 0, 0, 0, 0, 0, 0, -1, 0]


def test_two_in_three():
    # test-ptd_calculate_point_type.R: "ptd_two_in_three works as expected"
    f = spc._two_in_three
    assert f([], []) == []
    assert f([1, 0, 1], [1, 1, 1]) == [1, 1, 1]
    assert f([0, 1, 1], [1, 1, 1]) == [1, 1, 1]
    assert f([1, 1, 0], [1, 1, 1]) == [1, 1, 1]
    assert f([0, 0, 1, 0, 1, 0, 0], [1] * 7) == [0, 0, 1, 1, 1, 0, 0]
    assert f([0, 0, 1, 1, 0, 0, 0], [1] * 7) == [0, 1, 1, 1, 1, 0, 0]


def test_two_in_three_opposite_sides_of_the_mean():
    # test-ptd_calculate_point_type.R: "ptd_two_in_three works as expected when points are
    # on opposite sides of the mean" (the 0.2.x fix for issue #143)
    f = spc._two_in_three
    assert f([1, 0, 1], [1, -1, 1]) == [0, 0, 0]
    assert f([0, 1, 1], [1, -1, 1]) == [0, 0, 0]
    assert f([1, 1, 0], [1, -1, 1]) == [0, 0, 0]
    assert f([0, 0, 1, 0, 1, 0, 0], [1, -1, 1, -1, 1, -1, 1]) == [0] * 7
    assert f([0, 0, 1, 1, 0, 0, 0], [-1, 1, -1, 1, -1, 1, -1]) == [0] * 7


@pytest.mark.parametrize(
    ("v", "rtm", "expected"),
    [
        ([1, 0, 1], [1, 1, 1], [1, 0, 1]),
        ([0, 1, 1], [1, 1, 1], [0, 1, 1]),
        ([1, 1, 0], [1, 1, 1], [1, 1, 0]),
        ([0, 0, 1, 0, 1, 0, 0], [1] * 7, [0, 0, 1, 0, 1, 0, 0]),
        ([1, 0, 0, 1], [1] * 4, [0, 0, 0, 0]),
        ([1, 0, 0, 1, 1], [1] * 5, [0, 0, 0, 1, 1]),
    ],
)
def test_part_of_two_in_three(v, rtm, expected):
    # test-ptd_calculate_point_type.R: "ptd_part_of_two_in_three works as expected"
    assert spc._part_of_two_in_three(spc._two_in_three(v, rtm), v) == expected


# --- NHSRplotthedots: limits (test-ptd_spc_standard.R and its snapshot) -----------------------


def test_limits_snapshot_r1():
    # _snaps/ptd_spc_standard.md "it returns expected values", r1: rnorm(20) from seed 123.
    r = xmr(RNORM_123)
    assert r.mean[0] == pytest.approx(0.1416238, abs=5e-8)
    assert r.lower_limit[0] == pytest.approx(-3.01138, abs=5e-6)
    assert r.upper_limit[0] == pytest.approx(3.294627, abs=5e-7)
    # the snapshot's relative_to_mean, first 15 values shown
    rtm = [_sign(v - r.mean[0]) for v in RNORM_123[:15]]
    assert rtm == [-1, -1, 1, -1, -1, 1, 1, -1, -1, -1, 1, 1, 1, -1, -1]
    assert all(r.mean[i] == r.mean[0] and r.upper_limit[i] == r.upper_limit[0] for i in range(20))


def test_limits_snapshot_outlier_screened_r2_and_unscreened_r3():
    # _snaps/ptd_spc_standard.md r2 (y[15] <- 10, screen_outliers = TRUE) and r3 (FALSE).
    y = list(RNORM_123)
    y[14] = 10
    r2 = xmr(y)
    assert r2.mean[0] == pytest.approx(0.6694159, abs=5e-8)
    assert r2.lower_limit[0] == pytest.approx(-2.383666, abs=5e-7)
    assert r2.upper_limit[0] == pytest.approx(3.722497, abs=5e-7)
    assert [_sign(v - r2.mean[0]) for v in y[:14]] == [-1, -1, 1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1, -1]
    r3 = xmr(y, screen_outliers=False)
    assert r3.mean[0] == pytest.approx(0.6694159, abs=5e-8)
    assert r3.lower_limit[0] == pytest.approx(-4.596625, abs=5e-7)
    assert r3.upper_limit[0] == pytest.approx(5.935457, abs=5e-7)
    # test-ptd_spc_standard.R: the unscreened range is wider
    assert r3.upper_limit[0] - r3.lower_limit[0] > r2.upper_limit[0] - r2.lower_limit[0]


def test_fix_after_n_points_changes_the_limits():
    # test-ptd_spc_standard.R: "setting fix_after_n_points changes the calculations"
    s0 = xmr(RNORM_123)
    s1 = xmr(RNORM_123, fix_after_n_points=12)
    assert s1.lower_limit[0] != s0.lower_limit[0]
    assert s1.upper_limit[0] != s0.upper_limit[0]
    assert s1.mean[0] == pytest.approx(sum(RNORM_123[:12]) / 12)
    assert s1.baseline_points == 12


def test_rebase_group():
    # test-ptd_spc_standard.R: "it sets the rebase_group field" (rebase at the 11th point)
    assert xmr(RNORM_123).group == [0] * 20
    r = xmr(RNORM_123, rebase_at=[10])
    assert r.group == [0] * 10 + [1] * 10
    # each group has its own limits: the facet summaries of the next test
    assert r.mean[0] == pytest.approx(0.0746, abs=5e-5)
    assert r.mean[19] == pytest.approx(0.209, abs=5e-4)


def test_summary_snapshots():
    # _snaps/ptd_spc.md "it outputs expected content": whole series, and facets of 10
    # (summary tibbles printed to 3 significant figures).
    whole = xmr(RNORM_123)
    assert (round(whole.mean[0], 3), round(whole.lower_limit[0], 2), round(whole.upper_limit[0], 2)) == (
        0.142,
        -3.01,
        3.29,
    )
    assert whole.point_type.count("common_cause") == 20
    assert whole.variation == "common_cause"
    a, b = xmr(RNORM_123[:10]), xmr(RNORM_123[10:])
    assert (round(a.mean[0], 4), round(a.lower_limit[0], 2), round(a.upper_limit[0], 2)) == (0.0746, -2.60, 2.75)
    assert (round(b.mean[0], 3), round(b.lower_limit[0], 2), round(b.upper_limit[0], 2)) == (0.209, -3.28, 3.70)
    assert a.point_type.count("common_cause") == 10 and b.point_type.count("common_cause") == 10
    # a rebase on a date before the first point is no rebase
    assert xmr(RNORM_123, rebase_at=[0]).group == [0] * 20


def test_two_in_three_needs_the_same_side_of_the_mean():
    # test-ptd_spc_standard.R: "it only reports special cause for 2of3 points close to
    # limits when they are on the same side of the mean"
    y = [1, -1] * 8
    y[14], y[15] = 5.5, -5.5
    assert xmr(y).point_type[-2:] == ["common_cause", "common_cause"]


@pytest.mark.parametrize(
    ("screen", "upl", "mean", "lpl"),
    [(True, 4.6, 1.94, -0.72), (False, 6.95, 1.94, -3.06)],
)
def test_deviations_vignette_outlier_screening(screen, upl, mean, lpl):
    # vignettes/deviations.Rmd "1. Treatment of outlying points": package default, and
    # screen_outliers = FALSE, which "produces the same output as Excel" (the MDC tool).
    data = [1, 2, 1, 2, 10, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1]
    r = xmr(data, screen_outliers=screen)
    assert (round(r.upper_limit[0], 2), round(r.mean[0], 2), round(r.lower_limit[0], 2)) == (upl, mean, lpl)
    assert r.point_type[4] == "special_cause_improvement"
    assert r.rule[4] == "outside_limits"
    assert r.point_type.count("common_cause") == 17


# NHSRdatasets ae_attendances (data/ae_attendances.rda): org RQM, type 1, breaches,
# Apr 2016 - Mar 2018.
RQM_BREACHES = [1199, 929, 970, 1178, 1110, 1388, 2061, 1985, 2675, 3141, 1942, 2030,
                1309, 1960, 1169, 1117, 1085, 1492, 1280, 1197, 1569, 1406, 1328, 1564]  # fmt: skip


def test_readme_summary_variation_and_assurance():
    # README.Rmd: ptd_spc(breaches, improvement_direction = "decrease", target = 1200)
    # |> summary(): variation_type "common_cause", assurance_type "inconsistent".
    r = xmr(RQM_BREACHES, improvement_direction="decrease", target=1200)
    assert r.variation == "common_cause"
    assert r.assurance == "inconsistent"


# --- NHSRplotthedots: assurance (test-ptd_calculate_assurance_type.R) -----------------------


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("increase", ["consistent_fail", "consistent_pass", "inconsistent"]),
        ("decrease", ["consistent_pass", "consistent_fail", "inconsistent"]),
        ("neutral", [None, None, None]),
    ],
)
def test_assurance_type(direction, expected):
    # test-ptd_calculate_assurance_type.R: facets with lpl (1, 5, 1), upl (3, 7, 5), target 4
    limits = [(1, 3), (5, 7), (1, 5)]
    assert [spc._assurance(4, direction, lo, hi) for lo, hi in limits] == expected


def test_assurance_without_target_is_none():
    # test-ptd_calculate_assurance_type.R: "it returns a column of NA's if there is no target"
    assert xmr(RNORM_123).assurance is None
    assert xmr(RNORM_123, target=float("nan")).assurance is None


def test_assurance_uses_the_latest_group():
    # test-ptd_calculate_assurance_type.R: "it returns correct values for assurance when
    # rebase": the last row's limits decide.
    low = [1.0, 1.2, 0.8] * 4  # limits around 1
    high = [10.0, 10.2, 9.8] * 4  # limits around 10
    assert xmr(low + high, rebase_at=[12], target=5).assurance == "consistent_pass"
    assert xmr(high + low, rebase_at=[12], target=5).assurance == "consistent_fail"


# --- NHSRplotthedots: short groups and options ----------------------------------------------


def test_short_group_is_provisional():
    # test-ptd_add_short_group_warnings.R (warning_threshold 12): 11 points warn, 12 do not.
    assert xmr(RNORM_123[:11]).provisional is True
    assert xmr(RNORM_123[:12]).provisional is False


def test_short_group_after_rebase():
    # test-ptd_add_short_group_warnings.R "it handles facets and rebase groups - warning on
    # one facet": facet a has groups of 35 and 5 points, facet b two of 20.
    a = (RNORM_123 * 2)[:40]
    assert xmr(a, rebase_at=[35]).provisional is True
    assert xmr(a, rebase_at=[20]).provisional is False


@pytest.mark.parametrize("bad", [11, "a", True])
def test_fix_after_n_points_must_be_at_least_12(bad):
    # test-ptd_spc_options.R: "fix_after_n_points must be a single numeric that is greater
    # than or equal to 12."
    with pytest.raises(ValueError, match="greater than or equal to 12"):
        xmr(RNORM_123, fix_after_n_points=bad)
    xmr(RNORM_123, fix_after_n_points=12)


def test_improvement_direction_must_be_known():
    # test-ptd_spc_options.R: "improvement_direction must be one of increase, neutral, or decrease"
    with pytest.raises(ValueError):
        xmr(RNORM_123, improvement_direction="up")  # type: ignore[arg-type]


# --- The rules on whole series (SPEC 7 and the package's precedence) --------------------------


def test_shift_of_seven_on_one_side_of_the_mean():
    y = [5, 6, 5, 6, 5, 6, 5, 6, 5, 6, 5, 6, 7, 7.5, 7, 7.5, 7, 7.5, 7]
    r = xmr(y, improvement_direction="decrease")
    assert r.rule[-7:] == ["shift"] * 7
    assert r.point_type[-1] == "special_cause_concern"
    assert r.variation == "concern_high"
    assert r.signal_start[-1] == len(y) - 7


def test_a_point_on_the_mean_breaks_a_run():
    base = [4, 6] * 6  # mean 5
    r = xmr([*base, 5.5, 5.5, 5.5, 5, 5.5, 5.5, 5.5])
    assert "shift" not in r.rule


def test_trend_of_seven_and_a_tie_breaks_it():
    base = [10, 12] * 6  # fixed: mean 11, limits 5.68 to 16.32
    r = xmr([*base, 6, 7, 8, 9, 10, 11, 12], fix_after_n_points=12)
    assert r.rule[-7:] == ["trend"] * 7  # trend outranks the 2-in-3 of the first two
    assert r.point_type[-1] == "special_cause_improvement"
    assert r.signal_start[-1] == 12
    r = xmr([*base, 6, 7, 8, 8, 9, 10, 11], fix_after_n_points=12)
    assert "trend" not in r.rule


def test_outside_limits_takes_precedence_and_points_are_typed_by_side():
    r = xmr([*([10, 11] * 8), 30, 10, 11, -10])
    assert r.rule[16] == "outside_limits" and r.point_type[16] == "special_cause_improvement"
    assert r.rule[19] == "outside_limits" and r.point_type[19] == "special_cause_concern"
    assert r.variation == "concern_low"


def test_neutral_direction():
    r = xmr([*([10, 11] * 8), 30], improvement_direction="neutral", target=11)
    assert r.point_type[-1] == "special_cause_neutral_high"
    assert r.variation == "neutral_high"
    assert r.assurance is None


def test_two_in_three_flags_the_close_points_only():
    y = [10, 11] * 8 + [12.7, 11.0, 12.7]  # mean ~10.5, near limit ~12.3, limit ~13.2
    r = xmr(y, fix_after_n_points=16)
    assert r.rule[-3:] == ["two_in_three", None, "two_in_three"]
    assert r.signal_start[-1] == 16


def test_fix_after_n_points_keeps_limits_from_the_baseline():
    y = [10, 11] * 6 + [20, 21, 20, 21]
    r = xmr(y, fix_after_n_points=12)
    assert r.mean[-1] == pytest.approx(10.5)
    assert r.baseline_points == 12
    assert all(t == "special_cause_improvement" for t in r.point_type[12:])


def test_constant_series_screens_every_moving_range_like_the_package():
    # Every moving range is 0, and 0 < 3.267 x 0 is false, so the package screens them all
    # and its limits are NaN; without screening (the MDC Excel tool) they equal the mean.
    r = xmr([5.0] * 15, target=4)
    assert r.mean[0] == 5.0 and r.upper_limit[0] is None and r.lower_limit[0] is None
    assert set(r.point_type) == {"common_cause"}
    assert r.assurance == "inconsistent"  # the package compares with NA limits
    r = xmr([5.0] * 15, screen_outliers=False)
    assert r.upper_limit[0] == r.lower_limit[0] == 5.0


def test_missing_values_are_skipped_not_zero():
    y = [10, 11, None, 10, float("nan"), 11, 10, 11, 10, 11, 10, 11, 10, 11]
    r = xmr(y)
    assert r.mean[0] == pytest.approx(10.5)
    assert r.point_type[2] is None and r.rule[2] is None
    assert r.mean[2] == r.mean[0]  # the line runs through the gap
    assert r.n_points == 12 and r.provisional is False
    empty = xmr([None, None])
    assert empty.variation is None and empty.n_points == 0 and empty.mean == [None, None]


def test_rebase_index_out_of_range():
    with pytest.raises(ValueError):
        xmr([1, 2, 3], rebase_at=[3])


# --- qicharts2: Anhoej runs analysis ---------------------------------------------------------

# vignettes/qicharts2.Rmd, Appendix 2: critical values for n = 10..100 useful observations.
APPENDIX2_LONGEST = [6, 6] + [7] * 11 + [8] * 23 + [9] * 45 + [10] * 10
APPENDIX2_CROSSINGS = [
    2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9, 10, 10, 11, 11, 11, 12, 12,
    13, 13, 14, 14, 14, 15, 15, 16, 16, 17, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 21,
    22, 22, 23, 23, 24, 24, 25, 25, 25, 26, 26, 27, 27, 28, 28, 29, 29, 29, 30, 30, 31,
    31, 32, 32, 33, 33, 34, 34, 34, 35, 35, 36, 36, 37, 37, 38, 38, 39, 39, 39, 40, 40,
    41, 41,
]  # fmt: skip


def test_appendix2_critical_values():
    # qicharts2.Rmd Appendix 2: round(log2(n) + 3) and qbinom(0.05, n - 1, 0.5), n = 10..100
    assert [spc.longest_run_limit(n) for n in range(10, 101)] == APPENDIX2_LONGEST
    assert [spc.qbinom_05(n - 1) for n in range(10, 101)] == APPENDIX2_CROSSINGS
    # the vignette's worked example: 24 useful points -> 8 and 8
    assert (spc.longest_run_limit(24), spc.qbinom_05(23)) == (8, 8)


def test_vignette_runs_analysis_of_a_shifted_series():
    # qicharts2.Rmd "The Anhoej rules": set.seed(19); y <- rnorm(24); y[22] <- 4;
    # y[13:24] <- rnorm(12, mean = 2); summary(qic(y, chart = 'i')) prints n.useful 24,
    # longest.run 13 (max 8), n.crossings 4 (min 8), runs.signal 1, CL 1.057091.
    gen = _RNorm(19)
    y = gen.rnorm(24)
    y[21] = 4
    y[12:24] = gen.rnorm(12, mean=2)
    cl = sum(y) / 24
    assert cl == pytest.approx(1.057091, abs=5e-7)
    r = run_chart(y, median=cl)
    assert (r.n_useful, r.longest_run, r.longest_run_max, r.n_crossings, r.n_crossings_min) == (24, 13, 8, 4, 8)
    assert r.runs_signal is True


def test_montgomery_ex_6_5_freeze_runs_analysis():
    # test_montgomery.R "Example 6.5" reference ex_6.5_3.rds: qic(weeks, cost, chart = 'i',
    # freeze = 20): cl 300.5 from the first 20, runs over all 40: n.useful 40, longest.run 6
    # (max 8), n.crossings 20 (min 14), no runs signal.
    assert sum(MONTGOMERY_6_7[:20]) / 20 == 300.5
    r = run_chart(MONTGOMERY_6_7, median=300.5)
    assert (r.n_useful, r.longest_run, r.longest_run_max, r.n_crossings, r.n_crossings_min) == (40, 6, 8, 20, 14)
    assert r.runs_signal is False


MONTGOMERY_6_7 = [310, 288, 297, 298, 307, 303, 294, 297, 308, 306, 294, 299, 297, 299, 314,
                  295, 293, 306, 301, 304, 305, 282, 305, 296, 314, 295, 287, 301, 298, 311,
                  310, 292, 305, 299, 304, 310, 304, 305, 333, 328]  # fmt: skip


def test_montgomery_ex_6_5_moving_range_cross_check():
    # Same reference: qicharts2's I chart limits are cl +/- 3 x AMR / 1.128 (279.7833...,
    # 321.2166...). NHSRplotthedots uses 2.66 x AMR instead, so only the screened average
    # moving range of the 20-point baseline can be compared: it must be the same number.
    qic_amr = (321.21668533034716 - 300.5) * 1.128 / 3
    r = xmr(MONTGOMERY_6_7, fix_after_n_points=20)
    assert r.mean[0] == 300.5
    assert (r.upper_limit[0] - r.mean[0]) / 2.66 == pytest.approx(qic_amr, rel=1e-12)


# --- qicharts2: P chart (test_montgomery.R) -------------------------------------------------

T74_COUNT = [12, 8, 6, 9, 10, 12, 11, 16, 10, 6, 20, 15, 9, 8, 6, 8, 10, 7, 5, 8, 5, 8, 10, 6, 9]
T74_SIZE = [100, 80, 80, 100, 110, 110, 100, 100, 90, 90, 110, 120, 120, 120, 110, 80, 80, 80,
            90, 100, 100, 100, 100, 90, 90]  # fmt: skip
T74_UCL = {80: 0.19409342051458195, 90: 0.18845535188285867, 100: 0.18368571343549223,
           110: 0.17958225353821256, 120: 0.17600306323599374}  # fmt: skip
T74_LCL = {80: 0.0, 90: 0.0025650562804066107, 100: 0.007334694727773067,
           110: 0.011438154625052752, 120: 0.01501734492727154}  # fmt: skip


def test_montgomery_table_7_4_p_chart():
    # test_montgomery.R "Table 7.4 is equal to reference" (tbl_7.4_1.rds):
    # qic(sample, count, size, data = tbl_07.04, chart = 'p'). Variable subgroup sizes;
    # the lower limit of n = 80 is clamped to 0.
    r = p_chart(T74_COUNT, T74_SIZE)
    assert r.centre == [0.09551020408163265] * 25
    assert r.upper_limit == pytest.approx([T74_UCL[n] for n in T74_SIZE], rel=1e-12, abs=0)
    assert r.lower_limit == pytest.approx([T74_LCL[n] for n in T74_SIZE], rel=1e-12, abs=1e-17)
    assert r.proportion[0] == 0.12
    # the same reference's runs analysis (around the chart's centre line)
    rc = run_chart([c / n for c, n in zip(T74_COUNT, T74_SIZE, strict=True)], median=r.centre[0])
    assert (rc.n_useful, rc.longest_run, rc.longest_run_max, rc.n_crossings, rc.n_crossings_min) == (25, 5, 8, 10, 8)
    assert rc.runs_signal is False


E71_COUNT = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18, 24,
             15, 9, 12, 7, 13, 9, 6, 9, 6, 12, 5, 6, 4, 6, 3, 7, 6, 2, 4, 3, 6, 5, 4, 8, 5, 6, 7,
             5, 6, 3, 5, 8, 7, 5, 6, 4, 5, 2, 3, 4, 7, 6, 5, 5, 3, 7, 9, 6, 10, 4, 3, 5, 8, 11, 9,
             7, 3, 5, 2, 1, 4, 5, 3, 7, 6, 4, 4, 6, 8, 5, 6]  # fmt: skip


def test_montgomery_example_7_1_p_chart_with_exclusions_and_parts():
    # test_montgomery.R "Example 7.1 is equal to reference" (ex_7.1_5.rds):
    # qic(sample, count, size = 50, chart = 'p', exclude = c(15, 23), part = 30).
    # Excluded subgroups are passed as missing; each part is its own chart.
    counts: list[float | None] = list(E71_COUNT)
    counts[14] = counts[22] = None
    first = p_chart(counts[:30], [50] * 30)
    assert first.centre[0] == 0.215
    assert first.upper_limit[0] == pytest.approx(0.38929716004571047, rel=1e-12)
    assert first.lower_limit[0] == pytest.approx(0.040702839954289555, rel=1e-12)
    second = p_chart(counts[30:], [50] * 64)
    assert second.centre[0] == 0.1096875
    assert second.upper_limit[0] == pytest.approx(0.24226995518120034, rel=1e-12)
    assert second.lower_limit[0] == 0.0
    # runs analysis of each part: n.useful 28 / 64, longest.run 5 / 7 (max 8 / 9),
    # n.crossings 13 / 30 (min 9 / 25)
    y = [None if c is None else c / 50 for c in counts]
    a = run_chart(y[:30], median=0.215)
    b = run_chart(y[30:], median=0.1096875)
    assert (a.n_useful, a.longest_run, a.longest_run_max, a.n_crossings, a.n_crossings_min) == (28, 5, 8, 13, 9)
    assert (b.n_useful, b.longest_run, b.longest_run_max, b.n_crossings, b.n_crossings_min) == (64, 7, 9, 30, 25)


def test_p_chart_missing_and_clamping():
    r = p_chart([0, 1, None, 3], [10, 10, 10, 0])
    assert r.proportion == [0.0, 0.1, None, None]
    assert r.centre[0] == 0.05 and r.centre[2] is None
    assert r.lower_limit[0] == 0.0
    assert p_chart([10, 10], [10, 10]).upper_limit == [1.0, 1.0]
    with pytest.raises(ValueError):
        p_chart([1], [1, 2])


# --- IHI run-chart rules (Perla, Provost & Murray 2011) --------------------------------------


def test_ihi_shift_points_on_the_median_neither_add_nor_break():
    # Perla 2011, rule 1: "Six or more consecutive points either all above or all below the
    # median. Values that fall on the median do not add to nor break a shift."
    y = [1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 5, 9, 8]  # median 5
    r = run_chart(y)
    assert r.median == 5
    assert r.shift == [False] * 7 + [True, True, True, True, False, True, True]
    assert run_chart([1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 5, 1, 8]).shift == [False] * 14


def test_ihi_trend_repeated_values_neither_add_nor_break():
    # Perla 2011, rule 2: "Five or more consecutive points all going up or all going down.
    # If the value of two or more successive points is the same, ignore one of the points
    # when counting; like values do not make or break a trend."
    assert run_chart([5, 1, 2, 3, 4, 5, 3]).trend == [False, True, True, True, True, True, False]
    assert run_chart([5, 1, 2, 2, 3, 3, 4, 2]).trend == [False] * 8  # only 4 distinct steps up
    assert run_chart([9, 1, 2, 2, 3, 4, 5, 0]).trend == [False, True, True, True, True, True, True, False]
    assert run_chart([9, 8, 7, 7, 6, 5, 9]).trend == [True, True, True, True, True, True, False]


def test_run_chart_baseline_median_and_missing_points():
    y = [1, 2, 3, None, 10, 11, 12]
    r = run_chart(y, baseline_points=3)
    assert r.median == 2
    assert r.n_obs == 6 and r.n_useful == 5 and r.n_crossings == 1 and r.longest_run == 4
    assert run_chart([]).median is None and run_chart([]).runs_signal is False
    assert run_chart([3, 3, 3]).n_useful == 0 and run_chart([3, 3, 3]).longest_run is None


# --- Property tests ---------------------------------------------------------------------------

PROPS = settings(max_examples=200, deadline=None)
values_st = st.lists(st.integers(min_value=0, max_value=12).map(float), min_size=0, max_size=40)
directions = st.sampled_from(["increase", "decrease", "neutral"])


@PROPS
@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=40),
    st.booleans(),
)
def test_limits_are_symmetric_about_the_mean(values, screen):
    r = xmr(values, screen_outliers=screen)
    scale = max(1.0, max(abs(v) for v in values))
    for i in range(len(values)):
        if r.upper_limit[i] is None:
            continue
        assert r.upper_limit[i] - r.mean[i] == pytest.approx(r.mean[i] - r.lower_limit[i], abs=1e-9 * scale)
        assert r.upper_near[i] - r.mean[i] == pytest.approx(r.mean[i] - r.lower_near[i], abs=1e-9 * scale)
        assert r.lower_limit[i] <= r.lower_near[i] <= r.mean[i] <= r.upper_near[i] <= r.upper_limit[i]


@PROPS
@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), st.integers(1, 40), directions, st.booleans())
def test_a_constant_series_is_common_cause(value, n, direction, screen):
    r = xmr([value] * n, improvement_direction=direction, screen_outliers=screen)
    assert set(r.point_type) == {"common_cause"}
    assert r.variation == "common_cause"
    assert set(r.rule) == {None}


_SWAP_TYPE = {
    "special_cause_improvement": "special_cause_concern",
    "special_cause_concern": "special_cause_improvement",
}
_SWAP_VARIATION = {
    "improvement_high": "concern_high",
    "concern_high": "improvement_high",
    "improvement_low": "concern_low",
    "concern_low": "improvement_low",
}
_SWAP_ASSURANCE = {"consistent_pass": "consistent_fail", "consistent_fail": "consistent_pass"}


@PROPS
@given(values_st, st.one_of(st.none(), st.floats(min_value=-2, max_value=14)))
def test_swapping_the_direction_swaps_improvement_and_concern(values, target):
    up = xmr(values, improvement_direction="increase", target=target)
    down = xmr(values, improvement_direction="decrease", target=target)
    assert down.point_type == [_SWAP_TYPE.get(t, t) for t in up.point_type]
    assert down.rule == up.rule
    assert down.variation == _SWAP_VARIATION.get(up.variation, up.variation)
    assert down.assurance == _SWAP_ASSURANCE.get(up.assurance, up.assurance)


@PROPS
@given(
    values_st,
    st.data(),
    st.sampled_from([None, 12, 15]),
    st.booleans(),
)
def test_inserting_a_missing_value_changes_no_other_point(values, data, fix, screen):
    n = len(values)
    rebase = sorted(set(data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=3)))) if n else []
    at = data.draw(st.integers(0, n))
    missing = data.draw(st.sampled_from([None, float("nan")]))
    before = xmr(values, fix_after_n_points=fix, rebase_at=rebase, screen_outliers=screen, target=6)
    gapped = [*values[:at], missing, *values[at:]]
    shifted = [r + 1 if r >= at else r for r in rebase]
    after = xmr(gapped, fix_after_n_points=fix, rebase_at=shifted, screen_outliers=screen, target=6)
    keep = [i for i in range(n + 1) if i != at]
    for field in ("mean", "lower_limit", "upper_limit", "lower_near", "upper_near", "point_type", "rule"):
        assert [getattr(after, field)[i] for i in keep] == getattr(before, field), field
    assert [None if s is None else (s if s < at else s - 1) for s in (after.signal_start[i] for i in keep)] == [
        before.signal_start[i] for i in range(n)
    ]
    assert after.point_type[at] is None and after.rule[at] is None
    assert (after.variation, after.assurance, after.provisional) == (before.variation, before.assurance, before.provisional)
    run_before, run_after = run_chart(values), run_chart(gapped)
    assert [run_after.shift[i] for i in keep] == run_before.shift
    assert [run_after.trend[i] for i in keep] == run_before.trend
    assert (run_after.median, run_after.runs_signal) == (run_before.median, run_before.runs_signal)


@PROPS
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(1, 50)), min_size=1, max_size=30),
)
def test_p_chart_limits_stay_on_the_0_1_scale(pairs):
    nums = [min(a, b) for a, b in pairs]
    dens = [b for _, b in pairs]
    r = p_chart(nums, dens)
    for lo, c, hi in zip(r.lower_limit, r.centre, r.upper_limit, strict=True):
        assert 0.0 <= lo <= c <= hi <= 1.0


@PROPS
@given(values_st)
def test_run_chart_counts_are_consistent(values):
    r = run_chart(values)
    if r.n_useful:
        assert 1 <= r.longest_run <= r.n_useful
        assert 0 <= r.n_crossings <= r.n_useful - 1
        assert r.runs_signal == (r.longest_run > r.longest_run_max or r.n_crossings < r.n_crossings_min)


def test_qbinom_matches_the_binomial_definition():
    for size in range(0, 60):
        k = spc.qbinom_05(size)
        cdf = lambda j: sum(math.comb(size, i) for i in range(j + 1)) / 2**size  # noqa: E731
        assert cdf(k) >= 0.05 and (k == 0 or cdf(k - 1) < 0.05)
