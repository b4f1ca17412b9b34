"""Cross-field and cross-row rules, computed as ``chk_*`` columns for the suites.

Great Expectations states single-column rules directly; rules that compare columns,
look across rows or need reference dates are computed here as a boolean column that is
True when the row passes, False when it fails and null when the rule does not apply.
The suites in ``expectations/`` then expect each column to be True.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transforms.datasets import ENROLMENT_RETURN, LEAVING_STATUSES, MEASURE_DATA, PROJECT_REGISTER

STAFF_ID_PATTERN = r"^[A-Z0-9]{3,20}$"


def _rule(applies: pd.Series, passes: pd.Series) -> pd.Series:
    """True/False where the rule applies, null elsewhere (``applies`` and ``passes`` share an index)."""
    where = applies.fillna(False).to_numpy(dtype=bool)
    ok = passes.fillna(False).to_numpy(dtype=bool)
    return pd.Series(pd.arrays.BooleanArray(where & ok, ~where), index=passes.index)


def _duplicate_in_file(frame: pd.DataFrame, key: list[str]) -> pd.Series:
    complete = frame[key].notna().all(axis=1)
    dup = frame.duplicated(subset=["source_sha256", *key], keep="first")
    return _rule(complete, ~dup)


def enrolment_checks(frame: pd.DataFrame, cohorts: pd.DataFrame) -> pd.DataFrame:
    """Add the enrolment return's ``chk_*`` columns (SPEC 3.1)."""
    out = frame.copy()
    dates = cohorts.set_index("code")
    start = out["cohort_code"].map(dates["start_date"])
    end = out["cohort_code"].map(dates["end_date"])
    enrolled = out["enrolment_date"]
    out["chk_enrolment_in_window"] = _rule(
        enrolled.notna() & start.notna(), (enrolled <= end) & (enrolled >= start - pd.Timedelta(days=120))
    )
    leaving = out["status"].isin(LEAVING_STATUSES)
    out["chk_status_date_present"] = _rule(leaving, out["status_date"].notna())
    both = out["status_date"].notna() & enrolled.notna()
    out["chk_status_date_after_enrolment"] = _rule(both, out["status_date"] >= enrolled)
    received_day = out["received_at"].dt.tz_convert("Europe/London").dt.tz_localize(None).dt.normalize()
    out["chk_status_date_not_future"] = _rule(out["status_date"].notna(), out["status_date"] <= received_day)
    out["chk_withdrawal_reason_present"] = _rule(
        out["status"].eq("Withdrawn"), out["withdrawal_reason"].fillna("").str.strip().ne("")
    )
    out["chk_unique_in_file"] = _duplicate_in_file(out, ["organisation_code", "participant_key", "cohort_code"])
    return out


def register_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the project register's ``chk_*`` columns (SPEC 3.2)."""
    out = frame.copy()
    out["chk_unique_in_file"] = _duplicate_in_file(out, ["project_id"])
    out["chk_target_on_scale"], out["chk_target_not_proportion"] = target_checks(out)
    return out


def measure_checks(frame: pd.DataFrame, primary: pd.DataFrame) -> pd.DataFrame:
    """Add the measure data's ``chk_*`` columns (SPEC 3.3).

    ``primary`` holds each registered project's primary measure: project_id,
    measure_name, measure_type. Only the primary measure has a declared type; other
    measures, and measures of projects not yet registered, get the ``>= 0`` rule.
    """
    out = frame.copy()
    measure_type = _primary_type(out, primary)
    out["measure_type"] = measure_type
    pct = measure_type.eq("percentage").fillna(False)
    num, den, val = out["numerator"], out["denominator"], out["value"]
    has_ratio = num.notna() & den.notna()
    out["chk_value_present"] = _rule(out["project_id"].notna(), val.notna() | has_ratio)
    out["chk_denominator_positive"] = _rule(den.notna(), den > 0)
    out["chk_numerator_not_over_denominator"] = _rule(has_ratio & pct, num <= den)
    computed = np.where(pct, 100 * num / den.where(den > 0), num / den.where(den > 0))
    effective = val.fillna(pd.Series(computed, index=out.index))
    out["chk_value_in_range"] = _rule(effective.notna() & pct, (effective >= 0) & (effective <= 100))
    out["chk_value_not_negative"] = _rule(effective.notna() & ~pct, effective >= 0)
    tolerance = np.where(pct, 0.5, 0.005 * np.maximum(1, np.abs(val.fillna(0))))
    agree = (val - pd.Series(computed * 1.0, index=out.index)).abs() <= tolerance
    # With no declared type (not the primary measure, or not registered yet) a value may be
    # the ratio or the percentage: either agrees.
    untyped = measure_type.isna()
    ratio = num / den.where(den > 0)
    agree |= untyped & (((val - 100 * ratio).abs() <= 0.5) | ((val - ratio).abs() <= 0.005 * np.maximum(1, val.abs())))
    out["chk_value_agrees"] = _rule(val.notna() & has_ratio & (den > 0), agree)
    received_day = out["received_at"].dt.tz_convert("Europe/London").dt.tz_localize(None).dt.normalize()
    out["chk_period_not_future"] = _rule(out["period"].notna(), out["period"] <= received_day)
    out["chk_unique_in_file"] = _duplicate_in_file(out, ["project_id", "measure_name", "period"])
    # Warning: a percentage series whose values all look like proportions (0-1).
    # (Per series: some value, none above 1 and one above 0; as flags, so no Python per group.)
    present = effective.notna()
    series = out.assign(_any=present, _over=present & (effective > 1), _pos=present & (effective > 0)).groupby(
        ["source_sha256", "project_id", "measure_name"], dropna=False)
    looks = series["_any"].transform("any") & ~series["_over"].transform("any") & series["_pos"].transform("any")
    out["chk_not_proportion"] = _rule(pct & effective.notna(), ~looks.astype(bool))
    out["chk_no_period_gap"] = period_gap_check(out)
    out["value"] = effective
    return out


def _primary_type(measures: pd.DataFrame, primary: pd.DataFrame) -> pd.Series:
    """Each measure row's declared type: its project's primary measure's, matched on the
    project and the measure name ignoring case; NaN for any other measure."""
    def key(project_id: pd.Series, measure_name: pd.Series) -> pd.Series:
        return project_id.astype("string") + "\0" + measure_name.astype("string").str.casefold()

    declared = key(primary["project_id"], primary["measure_name"]).to_numpy()
    types = pd.Series(primary["measure_type"].to_numpy(), index=declared)
    # A few hundred (project, measure) pairs among the rows: each is looked up once.
    pairs = measures[["project_id", "measure_name"]]
    codes = pairs.groupby(["project_id", "measure_name"], dropna=False, sort=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    found = key(pairs["project_id"].iloc[first], pairs["measure_name"].iloc[first]).map(types)
    return found.iloc[codes].set_axis(measures.index)


CHECKERS = {ENROLMENT_RETURN: enrolment_checks, PROJECT_REGISTER: register_checks, MEASURE_DATA: measure_checks}


# --- Rules added after the first suites (appended so the functions above keep their shape) ----


def target_checks(register: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The register's target against its measure type (SPEC 3.2: a number on the measure's scale).

    Returns (on scale: 0-100 for a percentage, >= 0 otherwise; looks like a proportion:
    False for a percentage target strictly between 0 and 1), null where there is no target.
    """
    target = pd.to_numeric(register.get("target", pd.Series(np.nan, index=register.index)), errors="coerce")
    kind = register.get("measure_type", pd.Series(pd.NA, index=register.index, dtype="object"))
    pct = kind.eq("percentage").fillna(False).astype(bool)
    present = target.notna()
    on_scale = _rule(present, (target >= 0) & ((target <= 100) | ~pct))
    proportion = _rule(present & pct, ~((target > 0) & (target < 1)))
    return on_scale, proportion


# Weekly periods a little off a 7-day step still count as consecutive.
_WEEKLY_GAP_DAYS = 10


def period_gap_check(measures: pd.DataFrame) -> pd.Series:
    """False on a value whose series (file, project, measure) skips the period(s) before it.

    A series is monthly when every period starts on the 1st of a month, else weekly.
    The first period of a series passes; rows without a period are not checked. Only
    periods within one file are compared: a file carrying just the latest month has no gap.
    """
    key = ["source_sha256", "project_id", "measure_name"]
    valid = measures["period"].notna() & measures[key].notna().all(axis=1)
    if not valid.any():
        return _rule(valid, valid)
    rows = measures.loc[valid, [*key, "period"]]
    # Each series as a number, its rows sorted by period: the copies of one period are a
    # run, and a run's previous period is the row just before it in the same series.
    series = rows.groupby(key, sort=False).ngroup().to_numpy()
    order = np.lexsort((rows["period"].to_numpy(), series))
    s, period = series[order], rows["period"].to_numpy()[order]
    same_series = np.r_[False, s[1:] == s[:-1]]
    run_start = ~same_series | np.r_[True, period[1:] != period[:-1]]
    previous = np.r_[period[:1], period[:-1]]
    month = period.astype("datetime64[M]")
    day_one = period.astype("datetime64[D]") == month.astype("datetime64[D]")
    monthly = (np.bincount(s, weights=~day_one) == 0)[s]  # every period of the series on the 1st
    month_step = (month - previous.astype("datetime64[M]")).astype("int64")
    day_step = (period - previous) // np.timedelta64(1, "D")
    gap = run_start & same_series & ((monthly & (month_step > 1)) | (~monthly & (day_step > _WEEKLY_GAP_DAYS)))
    gap = gap[np.flatnonzero(run_start)][np.cumsum(run_start) - 1]  # a run's copies share its flag
    flagged = np.empty(len(gap), dtype=bool)
    flagged[order] = gap
    passes = pd.Series(True, index=measures.index)
    passes.loc[valid] = ~flagged
    return _rule(valid, passes)


def project_registered_check(enrolment: pd.DataFrame, project_ids: pd.Series | list[str] | set[str]) -> pd.DataFrame:
    """Add ``chk_project_registered`` to checked enrolment rows (SPEC 3.1: project_id is a
    project in the register): False when a row names a project missing from ``project_ids``
    (the accepted register plus the published one), null when the row names no project.
    The suite makes it a warning, since the register may arrive after the return."""
    out = enrolment.copy()
    known = set(pd.Series(list(project_ids), dtype="object").dropna())
    named = out["project_id"].notna()
    out["chk_project_registered"] = _rule(named, out["project_id"].isin(known))
    return out
