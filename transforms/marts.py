"""The published marts (SPEC 6): one declared pyarrow schema per table, and their builders.

Every builder is a pure function on DataFrames. ``fct_`` rows and ``dim_project`` rows
carry their lineage (source_sha256, source_sheet, source_row). No name, e-mail,
staff id or mentor reaches any table here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from transforms.datasets import ENROLMENT_STATUSES
from transforms.outcomes import MART_PROJECT_OUTCOMES_SCHEMA, MART_SPC_POINTS_SCHEMA

TS = pa.timestamp("ms", tz="UTC")
DATE = pa.timestamp("ms")
LINEAGE = [("source_sha256", pa.string()), ("source_sheet", pa.string()), ("source_row", pa.int64())]

SCHEMAS: dict[str, pa.Schema] = {
    "dim_organisation": pa.schema([("organisation_code", pa.string()), ("name", pa.string()), ("type", pa.string())]),
    "dim_cohort": pa.schema(
        [("cohort_code", pa.string()), ("programme_year", pa.string()), ("start_date", DATE), ("end_date", DATE)]
    ),
    "dim_participant": pa.schema(
        [
            ("participant_key", pa.string()),
            ("organisation_code", pa.string()),
            ("profession", pa.string()),
            ("service_area", pa.string()),
            *LINEAGE,
        ]
    ),
    "dim_project": pa.schema(
        [
            ("project_id", pa.string()),
            ("organisation_code", pa.string()),
            ("cohort_code", pa.string()),
            ("title", pa.string()),
            ("aim", pa.string()),
            ("service_area", pa.string()),
            ("measure_name", pa.string()),
            ("measure_type", pa.string()),
            ("unit", pa.string()),
            ("improvement_direction", pa.string()),
            ("target", pa.float64()),
            ("intervention_date", DATE),
            ("status", pa.string()),
            *LINEAGE,
            ("received_at", TS),
        ]
    ),
    "fct_enrolment": pa.schema(
        [
            ("participant_key", pa.string()),
            ("cohort_code", pa.string()),
            ("organisation_code", pa.string()),
            ("profession", pa.string()),
            ("enrolment_date", DATE),
            ("status", pa.string()),
            ("status_date", DATE),
            ("project_id", pa.string()),
            ("absent_from_latest_return", pa.bool_()),
            *LINEAGE,
            ("received_at", TS),
        ]
    ),
    "fct_measure": pa.schema(
        [
            ("project_id", pa.string()),
            ("measure_name", pa.string()),
            ("period", DATE),
            ("value", pa.float64()),
            ("numerator", pa.float64()),
            ("denominator", pa.float64()),
            ("revised", pa.bool_()),
            *LINEAGE,
            ("received_at", TS),
        ]
    ),
    "fct_measure_history": pa.schema(
        [
            ("project_id", pa.string()),
            ("measure_name", pa.string()),
            ("period", DATE),
            ("value", pa.float64()),
            ("numerator", pa.float64()),
            ("denominator", pa.float64()),
            ("received_at", TS),
            ("superseded", pa.bool_()),
            *LINEAGE,
        ]
    ),
    "mart_programme_summary": pa.schema(
        [
            ("reporting_period", pa.string()),
            ("organisation_code", pa.string()),
            ("cohort_code", pa.string()),
            ("programme_year", pa.string()),
            ("profession", pa.string()),
            ("headcount", pa.int64()),
            *[(s.lower(), pa.int64()) for s in ENROLMENT_STATUSES],
        ]
    ),
    "mart_project_outcomes": MART_PROJECT_OUTCOMES_SCHEMA,
    "mart_spc_points": MART_SPC_POINTS_SCHEMA,
    "mart_submission_status": pa.schema(
        [
            ("reporting_period", pa.string()),
            ("organisation_code", pa.string()),
            ("dataset", pa.string()),
            ("status", pa.string()),  # on_time | late | missing | rejected
            ("files", pa.int64()),
            ("rows_received", pa.int64()),
            ("rows_accepted", pa.int64()),
            ("rows_rejected", pa.int64()),
            ("first_received_at", TS),
        ]
    ),
    "data_quality_issues": pa.schema(
        [
            ("source_sha256", pa.string()),
            ("file_name", pa.string()),
            ("organisation_code", pa.string()),
            ("reporting_period", pa.string()),
            ("dataset", pa.string()),
            ("sheet", pa.string()),
            ("row", pa.int64()),
            ("column", pa.string()),
            ("source_column", pa.string()),
            ("rule", pa.string()),
            ("severity", pa.string()),
            ("value", pa.string()),
            ("message", pa.string()),
            ("fix", pa.string()),
        ]
    ),
}

ORDER_KEYS = ["received_at", "file_name", "source_sheet", "source_row"]
# Lineage text is the same on every row of a file: the measure history and fct_measure, a
# build's two biggest tables, keep it as categories (a small code a row, each value once).
# Memory: about 0.1 GiB at double the benchmark's size. Published, it is plain text.
LINEAGE_TEXT = ("source_sha256", "source_sheet")


def dim_organisation(organisations: pd.DataFrame) -> pd.DataFrame:
    """One row per organisation in the reference data."""
    return organisations.rename(columns={"code": "organisation_code"})[["organisation_code", "name", "type"]].sort_values(
        "organisation_code", ignore_index=True
    )


def dim_cohort(cohorts: pd.DataFrame) -> pd.DataFrame:
    """One row per cohort in the reference data."""
    return cohorts.rename(columns={"code": "cohort_code"})[
        ["cohort_code", "programme_year", "start_date", "end_date"]
    ].sort_values("cohort_code", ignore_index=True)


def _newest(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """The last row per ``key`` in received order (received_at, then path, then row)."""
    ordered = frame.sort_values(ORDER_KEYS, kind="stable")
    return ordered.drop_duplicates(subset=key, keep="last")


def fct_enrolment(accepted: pd.DataFrame, all_rows: pd.DataFrame) -> pd.DataFrame:
    """One row per participant x cohort: their last accepted status.

    ``all_rows`` (accepted and rejected rows of files not rejected whole) decides who is
    in each organisation's newest return: a participant whose row was rejected there is
    not absent.
    """
    latest = _newest(accepted, ["participant_key", "cohort_code"])
    newest_file = (
        all_rows.sort_values(ORDER_KEYS, kind="stable")
        .drop_duplicates(subset=["organisation_code"], keep="last")[["organisation_code", "source_sha256"]]
        .rename(columns={"source_sha256": "_newest_sha"})
    )
    in_newest = all_rows.merge(newest_file, on="organisation_code")
    in_newest = in_newest[in_newest["source_sha256"] == in_newest["_newest_sha"]]
    present = set(zip(in_newest["participant_key"], in_newest["cohort_code"], strict=True))
    latest = latest.assign(
        absent_from_latest_return=[
            (k, c) not in present for k, c in zip(latest["participant_key"], latest["cohort_code"], strict=True)
        ]
    )
    return latest.sort_values(["organisation_code", "cohort_code", "participant_key"], ignore_index=True)


def dim_participant(accepted: pd.DataFrame) -> pd.DataFrame:
    """One row per participant (keyed hash): organisation, profession and service area as last reported."""
    latest = _newest(accepted, ["participant_key"])
    return latest.sort_values(["organisation_code", "participant_key"], ignore_index=True)


def dim_project(accepted: pd.DataFrame) -> pd.DataFrame:
    """One row per project: its newest accepted register row."""
    return _newest(accepted, ["project_id"]).sort_values("project_id", ignore_index=True)


def fct_measure_history(accepted: pd.DataFrame, keep: np.ndarray | None = None) -> pd.DataFrame:
    """One row per value ever received for a registered project's measure and period, with
    the mart's columns; the lineage text (``LINEAGE_TEXT``) as categories.

    ``accepted``: the accepted rows of registered projects, or with ``keep`` the rows to
    take from ``accepted``."""
    key = ["project_id", "measure_name", "period"]
    # The rows in the order they arrived, which tells the value that counts (the last),
    # then by key. (Memory: taking rows copies every column taken, the text too, and the
    # rows carry the validation's columns besides: the orders come from the key columns
    # alone, then the mart's columns are taken once.)
    rows = np.flatnonzero(keep) if keep is not None else np.arange(len(accepted))
    arrived = rows[_stable_order(accepted, ORDER_KEYS, rows)]
    superseded = accepted[key].take(arrived).duplicated(keep="last").to_numpy()
    final = _stable_order(accepted, [*key, "received_at", "source_row"], arrived)
    taken = arrived[final]
    columns = [c for c in SCHEMAS["fct_measure_history"].names if c in accepted.columns]
    history = accepted[[c for c in columns if c not in LINEAGE_TEXT]].take(taken).reset_index(drop=True)
    for column in LINEAGE_TEXT:
        if column in columns:
            history[column] = accepted[column].astype("category").take(taken).array.remove_unused_categories()
    history = history[columns]
    history["superseded"] = superseded[final]
    return history


def _stable_order(frame: pd.DataFrame, by: list[str], rows: np.ndarray) -> np.ndarray:
    """Positions in ``rows`` that sort ``frame``'s rows ``rows`` by ``by`` (ties keep their order)."""
    return frame[by].take(rows).reset_index(drop=True).sort_values(by, kind="stable").index.to_numpy()


def fct_measure(history: pd.DataFrame) -> pd.DataFrame:
    """One row per project x measure x period: the newest value, flagged when it was revised."""
    key = ["project_id", "measure_name", "period"]
    # (memory: the rows are taken once, in the order worked out on the key columns alone)
    rows = np.flatnonzero(~history["superseded"].to_numpy(dtype=bool))
    current = history.take(rows[_stable_order(history, key, rows)]).reset_index(drop=True)
    distinct = history.groupby(key)["value"].nunique(dropna=False)
    current["revised"] = distinct.reindex(pd.MultiIndex.from_frame(current[key])).to_numpy() > 1
    return current


def mart_programme_summary(accepted: pd.DataFrame, cohorts: pd.DataFrame, periods: list[str]) -> pd.DataFrame:
    """One row per reporting_period x organisation x cohort x profession.

    Counts participants by their status at the end of the period, as reported in the
    returns of that period and before (``reporting_period`` of each row's file), plus
    ``headcount`` (all of them).
    """
    columns = ["reporting_period", "organisation_code", "cohort_code", "programme_year", "profession", "headcount"]
    status_cols = [s.lower() for s in ENROLMENT_STATUSES]
    if accepted.empty or not periods:
        return pd.DataFrame(columns=columns + status_cols)
    ordered = accepted.sort_values(ORDER_KEYS, kind="stable", ignore_index=True)
    # A participant's state at the end of a period is their last row (in order) among
    # those reported in that period or before. So each row is the state from its own
    # period up to (not including) the earliest period of any row after it: one pass
    # over the rows, not one per period.
    key = ordered.groupby(["participant_key", "cohort_code"], sort=False, dropna=False).ngroup().to_numpy()
    ordered = ordered.iloc[np.lexsort((np.arange(len(ordered)), key))].reset_index(drop=True)  # by key, in order
    key = np.sort(key, kind="stable")
    period_list = np.array(sorted(periods), dtype=object)
    reported = np.searchsorted(period_list, ordered["reporting_period"].to_numpy(dtype=object), side="left")
    # the earliest period of this row or any after it in the key (a cumulative minimum, backwards)
    later = pd.Series(reported[::-1]).groupby(key[::-1]).cummin().to_numpy()[::-1]
    same_key_next = np.r_[key[1:] == key[:-1], False]
    until = np.where(same_key_next, np.r_[later[1:], 0], len(period_list))
    # (searchsorted gives a row's first period on or after its own: one after the last period holds nowhere)
    span = np.clip(until - reported, 0, None)
    rows = np.repeat(np.arange(len(ordered)), span)
    held = np.arange(len(rows)) - np.repeat(np.cumsum(span) - span, span) + np.repeat(reported, span)
    state = ordered.iloc[rows][["organisation_code", "cohort_code", "profession", "status"]].reset_index(drop=True)
    state.insert(0, "reporting_period", period_list[held])
    if state.empty:
        return pd.DataFrame(columns=columns + status_cols)
    counts = (
        state.groupby(["reporting_period", "organisation_code", "cohort_code", "profession", "status"]).size()
        .unstack("status", fill_value=0)
        .reindex(columns=list(ENROLMENT_STATUSES), fill_value=0)
        .rename(columns=str.lower)
    )
    counts["headcount"] = counts.sum(axis=1)
    out = counts.reset_index()
    out["programme_year"] = out["cohort_code"].map(cohorts.set_index("code")["programme_year"])
    out.columns.name = None
    return out[columns + status_cols].sort_values(columns[:5], ignore_index=True)


def mart_submission_status(
    submissions: pd.DataFrame,
    rows: pd.DataFrame,
    enrolment: pd.DataFrame,
    projects: pd.DataFrame,
    cohorts: pd.DataFrame,
    periods: list[str],
    due: dict[str, pd.Timestamp],
) -> pd.DataFrame:
    """One row per reporting_period x organisation x dataset: did the return arrive, on time?

    ``submissions``: manifest rows (sha256, organisation_code, datasets, outcome,
    received_at, reporting_period) of every submission received, rejected ones too.
    ``rows``: sha256, dataset, rows_received, rows_rejected. A dataset is expected from an
    organisation with participants in a cohort running in the period (enrolment) or with
    active projects (register and measures); expected and not sent is ``missing``; sent
    only in files rejected whole is ``rejected``.
    """
    from transforms.datasets import DATASETS
    from transforms.periods import period_end, period_start

    columns = SCHEMAS["mart_submission_status"].names
    out: list[dict] = []
    active_projects = set(projects.loc[projects["status"].isin(["Active", "Sustaining"]), "organisation_code"])
    cohort_span = cohorts.set_index("code")[["start_date", "end_date"]]
    enrolled = enrolment[["organisation_code", "cohort_code"]].drop_duplicates()
    enrolled = enrolled.join(cohort_span, on="cohort_code")
    # Plain Python over the files, bucketed once by (period, organisation): pandas filtering
    # per period x organisation x dataset cost seconds for a few thousand small frames.
    resends = submissions["resend"] if "resend" in submissions.columns else pd.Series(False, index=submissions.index)
    by_org: dict[tuple[str, str], list[tuple]] = {}
    for record in zip(submissions["reporting_period"], submissions["organisation_code"], submissions["sha256"],
                      submissions["outcome"], submissions["received_at"],
                      submissions["datasets"].fillna("").str.split(","), resends, strict=True):
        by_org.setdefault((record[0], record[1]), []).append(record)
    senders: dict[str, set[str]] = {}
    for period, org in by_org:
        if not pd.isna(org):
            senders.setdefault(period, set()).add(org)
    per_file = {(sha, dataset): (int(received), int(rejected)) for sha, dataset, received, rejected in zip(
        rows["sha256"], rows["dataset"], rows["rows_received"], rows["rows_rejected"], strict=True)}
    for period in periods:
        start, end = pd.Timestamp(period_start(period)), pd.Timestamp(period_end(period))
        running = set(enrolled.loc[(enrolled["start_date"] <= end) & (enrolled["end_date"] >= start), "organisation_code"])
        orgs = sorted(senders.get(period, set()) | running | active_projects)
        for org in orgs:
            sent = by_org.get((period, org), [])
            rejected = [f for f in sent if f[3] == "rejected"]
            for dataset in DATASETS:
                files = [f for f in sent if dataset in f[5] and f[3] != "rejected"]
                expected = org in (running if dataset == "enrolment_return" else active_projects)
                if not files:
                    if rejected:
                        status = "rejected"
                    elif expected:
                        status = "missing"
                    else:
                        continue
                    first = min(f[4] for f in rejected) if rejected else pd.NaT
                    received = rejected_rows = 0
                else:
                    first = min(f[4] for f in files)
                    status = "on_time" if first <= due[period] else "late"
                    counts = [per_file[(f[2], dataset)] for f in files if not f[6] and (f[2], dataset) in per_file]
                    received = sum(c[0] for c in counts)
                    rejected_rows = sum(c[1] for c in counts)
                out.append({
                    "reporting_period": period, "organisation_code": org, "dataset": dataset, "status": status,
                    "files": len(files) if files else len(rejected), "rows_received": received,
                    "rows_accepted": received - rejected_rows, "rows_rejected": rejected_rows, "first_received_at": first,
                })
    frame = pd.DataFrame(out, columns=columns)
    frame["first_received_at"] = pd.to_datetime(frame["first_received_at"], utc=True)
    return frame
