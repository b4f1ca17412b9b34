"""The commissioner workbook (SPEC 8), one per commissioner per reporting period.

Sheets: Cover, Contents, Notes, Summary (headline figures and the growth chart), Growth
(participants by programme year and type of organisation: the chart's data),
Participation (by organisation, cohort and profession), Projects (status, variation and
assurance in words, latest value against target, a link to each run chart), Run charts
(a native line chart per project, in a grid), Chart data (the run charts' figures) and
Data quality (who sent what, on time or late or missing, rows rejected).

Scope: only the commissioner's organisations appear anywhere in the file (cells, chart
data, names, properties); with a profession filter, participation figures count only that
profession and a project is in scope when any participant linked to it has it.

Disclosure control is applied here, at the report layer (``transforms.disclosure``): the
people counts of Summary, Growth and Participation form one linked system, suppressed
together; the enrolment-return row counts on Data quality form another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_rowcol_to_cell

from reports.layout import (
    BLANK,
    NOT_APPLICABLE,
    NOT_AVAILABLE,
    PROVISIONAL,
    REVISED,
    SUPPRESSED,
    Book,
    Link,
    contents_sheet,
    counts_for_chart,
    counts_for_display,
    cover_sheet,
    long_date,
    new_book,
    notes_sheet,
    number_or_blank,
    sheet_header,
    write_link,
    write_table,
)
from transforms.datasets import ENROLMENT_STATUSES
from transforms.disclosure import CountTable, Suppression, suppress_counts, suppress_rate
from transforms.marts import SCHEMAS
from transforms.reference import ORG_TYPES, commissioner_scope
from transforms.storage import empty_frame

STATUSES = tuple(s.lower() for s in ENROLMENT_STATUSES)
ROW_KEY = ("organisation_code", "cohort_code", "profession")

# The people counts published on Summary, Growth and Participation: one linked system.
PARTICIPATION_TABLES = (
    CountTable("participation", (*ROW_KEY, "status"), 1.0),
    CountTable("headcount", ROW_KEY, 2.0),
    CountTable("growth", ("programme_year", "organisation_type"), 5.0),
    CountTable("growth_year", ("programme_year",), 10.0),
    CountTable("headline_status", ("status",), 100.0),
    CountTable("headline_total", (), 1000.0),
)
# Rows of enrolment returns are people: received = accepted + rejected, per organisation.
RETURN_ROW_TABLES = (
    CountTable("rows_by_outcome", ("organisation_code", "outcome"), 1.0),
    CountTable("rows_received", ("organisation_code",), 1.0),
)

VARIATION_WORDS = {
    "common_cause": "Common cause: no significant change",
    "improvement_high": "Improvement: special cause, higher values",
    "improvement_low": "Improvement: special cause, lower values",
    "concern_high": "Concern: special cause, higher values",
    "concern_low": "Concern: special cause, lower values",
    "neutral_high": "Special cause, higher values (neither better nor worse)",
    "neutral_low": "Special cause, lower values (neither better nor worse)",
    "insufficient_data": "Not enough data yet: fewer than 12 points",
}
ASSURANCE_WORDS = {
    "consistent_pass": "Consistently meets the target",
    "consistent_fail": "Consistently misses the target: it will not be met without a change to the process",
    "inconsistent": "Hit and miss: the target lies within the process limits",
}
RULE_WORDS = {
    "outside_limits": "A point outside the process limits",
    "trend": "Trend: 7 points in a row all rising or all falling",
    "two_in_three": "2 of 3 points close to a process limit, on the same side",
    "shift": "Shift: 7 points in a row on one side of the average",
}
POINT_WORDS = {
    "common_cause": "Common cause",
    "special_cause_improvement": "Special cause: improvement",
    "special_cause_concern": "Special cause: concern",
    "special_cause_neutral_high": "Special cause: unusually high",
    "special_cause_neutral_low": "Special cause: unusually low",
}
DIRECTION_WORDS = {"increase": "Higher", "decrease": "Lower", "neutral": "Neither"}
DATASET_WORDS = {"enrolment_return": "Enrolment return", "project_register": "Project register",
                 "measure_data": "Measure data"}
SUBMISSION_WORDS = {"on_time": "On time", "late": "Late", "missing": "Missing: nothing received",
                    "rejected": "Rejected: no file could be used"}
TYPE_WORDS = {"lead trust": "Lead trust", "partner trust": "Partner trust", "voluntary": "Voluntary",
              "independent": "Independent"}

SERIES_COLOURS = ["#003087", "#005EB8", "#ED8B00", "#768692"]
GROWTH_PATTERNS = ["solid", "wide_upward_diagonal", "small_grid", "percent_50"]
GREY_LINE = "#768692"

CHARTS_PER_ROW = 2
CHART_COLS = 8  # columns of the grid a chart spans (default width, 64 px each)
CHART_ROWS = 16  # rows a chart spans (20 px each)
BAND = CHART_ROWS + 2  # heading row, chart, one spare row


@dataclass(frozen=True)
class WorkbookContext:
    period: str
    produced_at: datetime
    data_as_of: datetime
    provisional: bool
    contact: str = "qi-programme@northlakes.example.org"
    due_day: int = 10
    suppression_memo: Path | None = None  # solved suppression problems (transforms.disclosure)


def workbook_path(reports: Path, commissioner_code: str, period: str) -> Path:
    return reports / period / f"{commissioner_code}_qi_programme_{period}.xlsx"


def _table(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """A mart, or its empty frame when this publish does not have it (shown as [x])."""
    frame = tables.get(name)
    return empty_frame(SCHEMAS[name]) if frame is None else frame


def _month_after(period: str) -> pd.Timestamp:
    return pd.Timestamp(f"{period}-01") + pd.DateOffset(months=1)


def _period_words(period: str) -> str:
    return pd.Timestamp(f"{period}-01").strftime("%B %Y")


# --- Scope -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one commissioner's report may show."""

    organisations: tuple[str, ...]
    profession: str | None
    names: dict[str, str]
    types: dict[str, str]

    @classmethod
    def of(cls, commissioner: pd.Series, organisations: pd.DataFrame) -> Scope:
        orgs = tuple(commissioner_scope(commissioner, organisations))
        ref = organisations[organisations["code"].isin(orgs)].set_index("code")
        profession = commissioner.get("profession_filter") or None
        if profession is not None and pd.isna(profession):
            profession = None
        return cls(orgs, profession, ref["name"].to_dict(), ref["type"].to_dict())


def scoped_summary(summary: pd.DataFrame, orgs: list[str] | tuple[str, ...], profession: str | None,
                   period: str) -> pd.DataFrame:
    """The programme summary rows for one period within a commissioner's scope."""
    rows = summary[(summary["reporting_period"] == period) & summary["organisation_code"].isin(orgs)]
    if profession:
        rows = rows[rows["profession"] == profession]
    return rows


def scoped_projects(dim_project: pd.DataFrame, fct_enrolment: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """Projects of the commissioner's organisations; with a profession filter, only those
    with a linked participant of that profession."""
    projects = dim_project[dim_project["organisation_code"].isin(scope.organisations)]
    if scope.profession:
        linked = fct_enrolment.loc[(fct_enrolment["profession"] == scope.profession)
                                   & fct_enrolment["project_id"].notna(), "project_id"]
        projects = projects[projects["project_id"].isin(set(linked))]
    return projects.sort_values("project_id", kind="stable").reset_index(drop=True)


# --- Participation: atoms, suppression, display --------------------------------------------------


def participation_atoms(summary: pd.DataFrame, scope: Scope, period: str) -> pd.DataFrame:
    """One row per organisation x cohort x profession x status in scope: the true count."""
    rows = scoped_summary(summary, scope.organisations, scope.profession, period)
    keys = [*ROW_KEY, "programme_year"]
    rows = rows.assign(programme_year=rows["programme_year"].fillna(NOT_AVAILABLE))
    rows = rows.groupby(keys, as_index=False, dropna=False)[list(STATUSES)].sum()
    rows = rows[rows[list(STATUSES)].sum(axis=1) > 0]  # a listed row has at least one person
    atoms = rows.melt(id_vars=keys, value_vars=list(STATUSES), var_name="status", value_name="count")
    atoms["organisation_type"] = atoms["organisation_code"].map(scope.types).fillna("")
    atoms["count"] = atoms["count"].astype("int64")
    return atoms.sort_values([*ROW_KEY, "status"], kind="stable", ignore_index=True)


def suppress_participation(atoms: pd.DataFrame, memo: Path | None = None) -> Suppression:
    return suppress_counts(atoms, PARTICIPATION_TABLES, row=ROW_KEY, column="status", present_by=ROW_KEY, memo=memo)


@dataclass
class Participation:
    """The suppressed people counts, ready for the sheets."""

    suppression: Suppression
    table: pd.DataFrame  # Participation sheet
    headline: pd.DataFrame  # Measure, Value (people rows of the Summary)
    growth: pd.DataFrame  # Growth sheet: numbers, BLANK where suppressed
    growth_types: list[str] = field(default_factory=list)


def participation(atoms: pd.DataFrame, scope: Scope, memo: Path | None = None) -> Participation:
    result = suppress_participation(atoms, memo)
    cells = result.tables

    head = cells["headcount"].set_index(list(ROW_KEY))
    wide = cells["participation"].pivot(index=list(ROW_KEY), columns="status", values=["count", "suppressed"])
    wide = wide.reindex(head.index)
    years = atoms.drop_duplicates(list(ROW_KEY)).set_index(list(ROW_KEY))["programme_year"]
    table = pd.DataFrame(index=head.index)
    table["Organisation"] = [scope.names.get(o, o) for o in head.index.get_level_values(0)]
    table["Organisation code"] = head.index.get_level_values(0)
    table["Cohort"] = head.index.get_level_values(1)
    table["Programme year"] = years.reindex(head.index).to_numpy()
    table["Profession"] = head.index.get_level_values(2)
    table["Headcount"] = counts_for_display(head["count"], head["suppressed"])
    for status in STATUSES:
        if len(wide):
            table[status.capitalize()] = counts_for_display(wide[("count", status)], wide[("suppressed", status)])
        else:
            table[status.capitalize()] = []
    if len(wide):
        hidden = wide[("suppressed", "completed")].to_numpy() | head["suppressed"].to_numpy()
        rates = suppress_rate(wide[("count", "completed")], head["count"], hidden)
        table["Completed (% of headcount)"] = [SUPPRESSED if h else (NOT_AVAILABLE if np.isnan(r) else round(r, 1))
                                               for r, h in zip(rates["rate"], rates["suppressed"], strict=True)]
    else:
        table["Completed (% of headcount)"] = []
    table = table.reset_index(drop=True)

    status_cells = cells["headline_status"].set_index("status") if len(cells["headline_status"]) else None
    total = cells["headline_total"].iloc[0]
    rows: list[tuple[str, Any, str]] = [
        ("Participants (headcount) [note 1] [note 2]", SUPPRESSED if total["suppressed"] else int(total["count"]),
         "integer")
    ]
    for status in STATUSES:
        if status_cells is not None and status in status_cells.index:
            cell = status_cells.loc[status]
            value: Any = SUPPRESSED if cell["suppressed"] else int(cell["count"])
        else:
            value = 0
        rows.append((f"{status.capitalize()} at the end of the period", value, "integer"))
    if status_cells is not None and "completed" in status_cells.index and total["count"] > 0:
        cell = status_cells.loc["completed"]
        rate = suppress_rate(pd.Series([cell["count"]]), pd.Series([total["count"]]),
                             [bool(cell["suppressed"] or total["suppressed"])])
        rows.append(("Completed, as a percentage of headcount",
                     SUPPRESSED if rate["suppressed"].iloc[0] else round(float(rate["rate"].iloc[0]), 1), "decimal"))
    else:
        rows.append(("Completed, as a percentage of headcount", NOT_AVAILABLE, "decimal"))
    headline = pd.DataFrame(rows, columns=["Measure", "Value", "kind"])

    growth_cells = cells["growth"]
    types = [t for t in ORG_TYPES if t in set(growth_cells["organisation_type"])]
    years_cells = cells["growth_year"].set_index("programme_year")
    growth = pd.DataFrame({"Programme year": list(years_cells.index)})
    hidden_words: list[list[str]] = [[] for _ in range(len(growth))]
    for t in types:
        part = growth_cells[growth_cells["organisation_type"] == t].set_index("programme_year")
        part = part.reindex(years_cells.index)
        part = part.assign(count=part["count"].fillna(0).astype("int64"),
                           suppressed=part["suppressed"].astype("boolean").fillna(False).astype(bool))
        growth[TYPE_WORDS.get(t, t)] = counts_for_chart(part["count"], part["suppressed"])
        for i, hidden in enumerate(part["suppressed"]):
            if hidden:
                hidden_words[i].append(TYPE_WORDS.get(t, t))
    growth["All organisations"] = counts_for_chart(years_cells["count"], years_cells["suppressed"])
    for i, hidden in enumerate(years_cells["suppressed"]):
        if hidden:
            hidden_words[i].append("All organisations")
    growth["Suppressed [c]"] = [f"{SUPPRESSED} " + ", ".join(words) if words else "None" for words in hidden_words]
    return Participation(result, table, headline, growth, [TYPE_WORDS.get(t, t) for t in types])


# --- Projects and run charts --------------------------------------------------------------------


@dataclass
class RunChart:
    project_id: str
    first_row: int  # rows of its points in the Chart data table (0-based, in the sheet)
    last_row: int
    series: list[str]  # Chart data columns with at least one value


CHART_DATA_COLUMNS = ["Project ID", "Period", "Value", "Centre (mean)", "Lower process limit", "Upper process limit",
                      "Target", "Special cause improvement", "Special cause concern", "Point type", "Rule",
                      "Value revised"]
LINE_SERIES = CHART_DATA_COLUMNS[2:9]
OPTIONAL_SERIES = ("Target", "Special cause improvement", "Special cause concern")


def chart_points(points: pd.DataFrame, projects: pd.DataFrame, period: str) -> pd.DataFrame:
    """The run charts' rows: each project's primary measure up to the end of ``period``.

    The lines come from mart_spc_points. When that mart holds later points than the
    period (a report for an earlier period), the series is re-analysed on the points known
    then, so the chart agrees with the verdict on the Projects sheet.
    """
    from transforms.outcomes import analyse_series

    end = _month_after(period)
    keys = ["project_id", "measure_name"]
    order = projects[keys].assign(_project=range(len(projects))).drop_duplicates(keys)
    mine = points.assign(_at=range(len(points))).merge(order, on=keys, how="inner")
    # each project's points in period order (ties as they came), projects in the order given
    mine = mine.sort_values(["_project", "period", "_at"], kind="stable", ignore_index=True)
    known = mine[mine["period"] < end].reset_index(drop=True)
    if known.empty:
        return pd.DataFrame(columns=[*points.columns, "target"])
    rows = projects.reset_index(drop=True)
    project_of = known["_project"].to_numpy()
    seen = known.groupby("_project").size()
    later = seen.index[(mine.groupby("_project").size().reindex(seen.index) > seen).to_numpy()].to_numpy()
    if len(later):
        # A series with points after the period is re-analysed on the points known then.
        # (Each project's rows are one run of ``known``; the columns are set as arrays, once.)
        starts, ends = np.searchsorted(project_of, later, "left"), np.searchsorted(project_of, later, "right")
        periods, values = known["period"].to_numpy(), known["value"].to_numpy(dtype="float64", na_value=np.nan)
        columns = {name: known[name].array.copy() for name in ("centre", "lower_limit", "upper_limit", "point_type",
                                                                 "rule")}
        settings = rows[["improvement_direction", "target", "intervention_date"]].iloc[later]
        for project, lo, hi in zip(settings.itertuples(index=False), starts.tolist(), ends.tolist(), strict=True):
            direction = str(project.improvement_direction or "").strip().lower()
            chart = analyse_series(
                [pd.Timestamp(p) for p in periods[lo:hi]],
                [None if np.isnan(v) else float(v) for v in values[lo:hi]],
                improvement_direction=direction if direction in ("increase", "decrease", "neutral") else "neutral",
                target=None if pd.isna(project.target) else float(project.target),
                intervention_date=(None if pd.isna(project.intervention_date)
                                   else pd.Timestamp(project.intervention_date)),
            ).xmr
            for name, series in (("centre", chart.mean), ("lower_limit", chart.lower_limit),
                                 ("upper_limit", chart.upper_limit), ("point_type", chart.point_type),
                                 ("rule", chart.rule)):
                columns[name][lo:hi] = pd.array(series, dtype=columns[name].dtype)
        known = known.assign(**columns)
    known["target"] = rows["target"].to_numpy()[project_of]
    return known.drop(columns=["_project", "_at"])


def chart_data_frame(points: pd.DataFrame) -> pd.DataFrame:
    point_type = points["point_type"].astype(object).where(points["point_type"].notna(), None)
    value = points["value"]
    return pd.DataFrame({
        "Project ID": points["project_id"].astype(object),
        "Period": [pd.Timestamp(p) for p in points["period"]],
        "Value": [number_or_blank(v) for v in value],
        "Centre (mean)": [number_or_blank(v) for v in points["centre"]],
        "Lower process limit": [number_or_blank(v) for v in points["lower_limit"]],
        "Upper process limit": [number_or_blank(v) for v in points["upper_limit"]],
        "Target": [number_or_blank(v) for v in points["target"]],
        "Special cause improvement": [number_or_blank(v) if t == "special_cause_improvement" else BLANK
                                      for v, t in zip(value, point_type, strict=True)],
        "Special cause concern": [number_or_blank(v) if t == "special_cause_concern" else BLANK
                                  for v, t in zip(value, point_type, strict=True)],
        "Point type": [POINT_WORDS.get(t, NOT_AVAILABLE) if t else NOT_AVAILABLE for t in point_type],
        "Rule": [RULE_WORDS.get(r, "None") if isinstance(r, str) and r else "None" for r in points["rule"]],
        "Value revised": [f"Yes {REVISED}" if bool(r) else "No" for r in points["revised"].fillna(False)],
    })


def _limits_words(row: Any) -> str:
    if pd.isna(row.n_points):
        return NOT_AVAILABLE
    if row.baseline == "before_intervention":
        words = f"Fixed from the {int(row.baseline_points)} points before the change began"
    else:
        words = "From all the points so far"
    if bool(row.provisional_limits):
        words += "; provisional: fewer than 12 points"
    return words


def _assurance_words(row: Any) -> str:
    if isinstance(row.assurance, str) and row.assurance:
        return ASSURANCE_WORDS.get(row.assurance, row.assurance)
    if pd.isna(row.target):
        return f"No target set {NOT_APPLICABLE}"
    if row.variation == "insufficient_data" or pd.isna(row.variation):
        return f"Not enough data yet {NOT_AVAILABLE}"
    return NOT_APPLICABLE


def _date_or_x(text: Any) -> Any:
    return NOT_AVAILABLE if text is None or pd.isna(text) or text == "" else pd.Timestamp(text)


def projects_frame(projects: pd.DataFrame, outcomes: pd.DataFrame, points: pd.DataFrame, scope: Scope,
                   chart_cells: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """The Projects table and a fill kind per row ('good', 'bad' or 'neutral')."""
    latest_revised = points.groupby("project_id")["revised"].last().to_dict() if len(points) else {}
    merged = projects.merge(outcomes.drop(columns=["measure_name", "target", "improvement_direction"], errors="ignore"),
                            on="project_id", how="left")
    rows, kinds = [], []
    for row in merged.itertuples(index=False):
        variation = row.variation if isinstance(row.variation, str) else None
        rows.append({
            "Project ID": row.project_id,
            "Organisation": scope.names.get(row.organisation_code, row.organisation_code),
            "Cohort": row.cohort_code,
            "Project title": row.title,
            "Measure": row.measure_name,
            "Measure type": row.measure_type,
            "Unit": row.unit if isinstance(row.unit, str) and row.unit else NOT_AVAILABLE,
            "Better is": DIRECTION_WORDS.get(str(row.improvement_direction).lower(), NOT_AVAILABLE),
            "Project status": row.status,
            "Points": NOT_AVAILABLE if pd.isna(row.n_points) else int(row.n_points),
            "Latest period": _date_or_x(row.latest_period),
            "Latest value": row.latest_value,
            "Latest value revised": (f"Yes {REVISED}" if latest_revised.get(row.project_id) else "No")
            if not pd.isna(row.n_points) else NOT_AVAILABLE,
            "Target": NOT_APPLICABLE if pd.isna(row.target) else float(row.target),
            "Variation": (VARIATION_WORDS.get(variation, variation) if variation
                          else f"No measure data yet {NOT_AVAILABLE}"),
            "Assurance": _assurance_words(row) if variation else NOT_AVAILABLE,
            "What the chart shows": row.explanation if isinstance(row.explanation, str) else NOT_AVAILABLE,
            "Rule": RULE_WORDS.get(row.rule, "None") if isinstance(row.rule, str) and row.rule else "None",
            "Signal from": _date_or_x(row.signal_period),
            "Process limits": _limits_words(row),
            "Run chart": Link(chart_cells[row.project_id], f"Run chart: {row.project_id}")
            if row.project_id in chart_cells else f"No chart {NOT_AVAILABLE}",
        })
        kinds.append("good" if variation and variation.startswith("improvement")
                     else "bad" if variation and variation.startswith("concern") else "neutral")
    columns = ["Project ID", "Organisation", "Cohort", "Project title", "Measure", "Measure type", "Unit", "Better is",
               "Project status", "Points", "Latest period", "Latest value", "Latest value revised", "Target",
               "Variation", "Assurance", "What the chart shows", "Rule", "Signal from", "Process limits", "Run chart"]
    return pd.DataFrame(rows, columns=columns), kinds


# --- Data quality ----------------------------------------------------------------------------


def data_quality_frame(status: pd.DataFrame, scope: Scope, period: str) -> tuple[pd.DataFrame, list[str]]:
    """Who sent what for the period; enrolment-return row counts suppressed (rows are people)."""
    rows = status[(status["reporting_period"] == period) & status["organisation_code"].isin(scope.organisations)]
    order = {d: i for i, d in enumerate(DATASET_WORDS)}
    rows = rows.assign(_order=rows["dataset"].map(order).fillna(len(order)))
    rows = rows.sort_values(["organisation_code", "_order"], kind="stable").reset_index(drop=True)
    display = {c: rows[c].astype("int64").tolist() for c in ("rows_received", "rows_accepted", "rows_rejected")}
    if scope.profession:
        # Row counts cover every profession: not shown in a report for one profession.
        for c in display:
            display[c] = [NOT_APPLICABLE] * len(rows)
    else:
        enrol = rows[rows["dataset"] == "enrolment_return"]
        if len(enrol):
            atoms = pd.concat([
                pd.DataFrame({"organisation_code": enrol["organisation_code"], "outcome": "accepted",
                              "count": enrol["rows_accepted"].astype("int64")}),
                pd.DataFrame({"organisation_code": enrol["organisation_code"], "outcome": "rejected",
                              "count": enrol["rows_rejected"].astype("int64")}),
            ], ignore_index=True)
            atoms["count"] = atoms["count"].clip(lower=0)
            result = suppress_counts(atoms, RETURN_ROW_TABLES, row=("organisation_code",), column="outcome")
            by_outcome = result.tables["rows_by_outcome"].set_index(["organisation_code", "outcome"])["suppressed"]
            received = result.tables["rows_received"].set_index("organisation_code")["suppressed"]
            for i, org in zip(enrol.index, enrol["organisation_code"], strict=True):
                if received.get(org, False):
                    display["rows_received"][i] = SUPPRESSED
                if by_outcome.get((org, "accepted"), False):
                    display["rows_accepted"][i] = SUPPRESSED
                if by_outcome.get((org, "rejected"), False):
                    display["rows_rejected"][i] = SUPPRESSED
    frame = pd.DataFrame({
        "Organisation": [scope.names.get(o, o) for o in rows["organisation_code"]],
        "Organisation code": rows["organisation_code"].tolist(),
        "Return": [DATASET_WORDS.get(d, d) for d in rows["dataset"]],
        "Status [note 8]": [SUBMISSION_WORDS.get(s, s) for s in rows["status"]],
        "Files": rows["files"].astype("int64").tolist(),
        "Rows received": display["rows_received"],
        "Rows accepted": display["rows_accepted"],
        "Rows rejected": display["rows_rejected"],
        "First received (UTC)": [NOT_AVAILABLE if pd.isna(t) else pd.Timestamp(t) for t in rows["first_received_at"]],
    })
    kinds = ["good" if s == "on_time" else "bad" for s in rows["status"]]
    return frame, kinds


# --- The workbook ------------------------------------------------------------------------------


def _notes(scope: Scope, ctx: WorkbookContext) -> list[str]:
    orgs = ", ".join(f"{scope.names.get(o, o)} ({o})" for o in scope.organisations) or "none"
    profession = (f" Participation figures count only participants whose profession is {scope.profession}; a "
                  f"project is included when any participant linked to it has that profession."
                  if scope.profession else "")
    return [
        # 1
        "Participants are counted by their status at the end of the reporting period, as reported in the returns "
        "received for that period and before. Headcount is everyone enrolled in a cohort, whatever their status now. "
        "A programme year runs from April to March and is the year of the participant's cohort.",
        # 2
        f"To protect confidentiality, counts of 1 to 4 people are shown as {SUPPRESSED}. Other figures are also "
        f"shown as {SUPPRESSED} where, with the totals in this or any other table of this workbook, they would let a "
        "hidden count be worked out (secondary suppression). Percentages are worked out from the true counts and "
        "hidden whenever a count they use is hidden. Zero is shown as 0.",
        # 3
        f"This workbook covers only these organisations: {orgs}.{profession}",
        # 4
        "Statistical process control (NHS England's Making Data Count): an XmR chart of each project's primary "
        "measure. The centre line is the mean; the process limits are the mean plus or minus 2.66 times the mean "
        "moving range. "
        "When a project has at least 12 points before its intervention date, the limits are fixed from those points "
        "(the baseline); otherwise they come from all the points. Limits from fewer than 12 points are provisional.",
        # 5
        "Variation: special cause means a signal that something has changed, found by one of these rules, in this "
        "order: a point outside the process limits; 7 points in a row all rising or all falling; 2 of 3 points close "
        "to a process limit on the same side; 7 points in a row on one side of the mean. Improvement or concern "
        "depends on whether higher or lower is better for the measure. A series with fewer than 12 points is not "
        "judged.",
        # 6
        "Assurance compares the target with the process limits: consistently meets (every value the process is "
        "expected to produce meets the target), consistently misses, or hit and miss (the target lies between the "
        "limits).",
        # 7
        f"Chart data: a blank cell means there is nothing to draw at that point (no target, no limit yet, or not a "
        f"special cause point); charts leave blank points out, where they would draw text as zero. A value marked "
        f"{REVISED} has been revised since it was first received.",
        # 8
        f"Data quality: returns for a period are due by the end of day {ctx.due_day} of the following month (UK time). "
        "On time: the first file arrived by then; late: after; missing: expected (participants in a running cohort, or "
        "active projects) but nothing received; rejected: files were sent but none could be used. Row counts of "
        "enrolment returns are counts of people and are suppressed like any other."
        + (f" In a report for one profession they are not shown ({NOT_APPLICABLE}), as returns cover every profession."
           if scope.profession else ""),
    ]


@dataclass
class Report:
    """Everything one commissioner's workbook shows, scoped and suppressed (no Excel yet)."""

    commissioner: pd.Series
    scope: Scope
    ctx: WorkbookContext
    people: Participation
    projects: pd.DataFrame  # dim_project rows in scope
    outcomes: pd.DataFrame  # mart_project_outcomes rows of the period, in scope
    points: pd.DataFrame  # what the run charts draw, by project and period
    quality: pd.DataFrame
    quality_kinds: list[str]

    @property
    def period_words(self) -> str:
        return _period_words(self.ctx.period)

    @property
    def mark(self) -> str:
        """Added to every title of a provisional report."""
        return f" (provisional) {PROVISIONAL}" if self.ctx.provisional else ""

    @property
    def title(self) -> str:
        return f"Quality improvement programme report for {self.commissioner['name']}, {self.period_words}{self.mark}"

    @property
    def status(self) -> str:
        if self.ctx.provisional:
            return (f"Provisional {PROVISIONAL}: returns for {self.period_words} are still arriving, so these figures "
                    "may change.")
        return (f"Final: returns for {self.period_words} were due by day {self.ctx.due_day} of the following month; "
                "later changes show in later reports.")


def prepare_report(commissioner: pd.Series, tables: dict[str, pd.DataFrame], organisations: pd.DataFrame,
                   ctx: WorkbookContext) -> Report:
    """Scope and suppress the marts for one commissioner and period (pure pandas)."""
    scope = Scope.of(commissioner, organisations)
    people = participation(participation_atoms(_table(tables, "mart_programme_summary"), scope, ctx.period), scope,
                           ctx.suppression_memo)
    projects = scoped_projects(_table(tables, "dim_project"), _table(tables, "fct_enrolment"), scope)
    outcomes = _table(tables, "mart_project_outcomes")
    outcomes = outcomes[(outcomes["reporting_period"] == ctx.period)
                        & outcomes["project_id"].isin(projects["project_id"])]
    spc = _table(tables, "mart_spc_points")
    points = chart_points(spc[spc["project_id"].isin(projects["project_id"])], projects, ctx.period)
    points = points.sort_values(["project_id", "period"], kind="stable", ignore_index=True)
    quality, kinds = data_quality_frame(_table(tables, "mart_submission_status"), scope, ctx.period)
    return Report(commissioner, scope, ctx, people, projects, outcomes, points, quality, kinds)


def build_commissioner_workbook(path: Path, commissioner: pd.Series, tables: dict[str, pd.DataFrame],
                                organisations: pd.DataFrame, ctx: WorkbookContext) -> Path:
    """Write one commissioner's workbook for ``ctx.period`` from the marts in ``tables``."""
    report = prepare_report(commissioner, tables, organisations, ctx)
    book = new_book(title=report.title, subject=f"Quality improvement programme, {ctx.period}", created=ctx.produced_at,
                    keywords="quality improvement, QI programme, statistical process control",
                    comments="Produced automatically from the programme's published data.")
    write_cover(book, report)
    contents_sheet(book, [
        ("Notes", "Definitions, methods, suppression and shorthand"),
        ("Summary", "Headline figures for the period, and a chart of participants by programme year"),
        ("Growth", "Participants by programme year and type of organisation (the chart's figures)"),
        ("Participation", "Participants by organisation, cohort and profession, by status"),
        ("Projects", "Each improvement project: status, variation and assurance in words, latest value against target"),
        ("Run charts", "A run chart (XmR) of each project's measure, linked from the Projects sheet"),
        ("Chart data", "The figures the run charts draw"),
        ("Data quality", "Who sent their returns for the period: on time, late or missing, and rows rejected"),
    ])
    notes_sheet(book, _notes(report.scope, ctx))
    write_summary_and_growth(book, report)
    write_participation(book, report)
    write_projects_and_run_charts(book, report)
    write_data_quality(book, report)
    book.workbook.worksheets()[0].activate()
    return book.save(path)


def write_cover(book: Book, report: Report) -> None:
    ctx, scope = report.ctx, report.scope
    orgs = [f"{scope.names.get(o, o)} ({o})" for o in scope.organisations] or ["None"]
    cover_sheet(book, report.title, [
        ("About this workbook", [
            f"Commissioner: {report.commissioner['name']} ({report.commissioner['code']})",
            f"Reporting period: {report.period_words} ({ctx.period})",
            f"Status: {report.status}",
            f"Produced at: {long_date(ctx.produced_at, time=True)}",
            f"Data as of: {long_date(ctx.data_as_of)}",
            Link("'Contents'!A1", "Go to the contents"),
        ]),
        ("What it covers", [
            "Participation in the quality improvement training programme and whether each improvement project's "
            "measure shows a significant change (statistical process control).",
            "Organisations: " + "; ".join(orgs),
            f"Profession: {scope.profession} only" if scope.profession else "Professions: all",
        ]),
        ("Shorthand", [
            f"{SUPPRESSED} suppressed to protect confidentiality; {NOT_AVAILABLE} not available; {NOT_APPLICABLE} not "
            f"applicable; {PROVISIONAL} provisional; {REVISED} revised. See the Notes sheet.",
        ]),
        ("Accessibility", [
            "Each sheet has one table (the Run charts sheet has charts only, with their figures on the Chart data "
            "sheet). Colour is never the only signal: every status is also in words.",
        ]),
        ("Contact", [f"Questions about this report: {ctx.contact}"]),
    ])


def write_summary_and_growth(book: Book, report: Report) -> None:
    """Summary: headline figures, and the growth chart whose figures are the Growth table."""
    fmt, people, outcomes = book.fmt, report.people, report.outcomes
    judged = outcomes[outcomes["variation"].notna() & (outcomes["variation"] != "insufficient_data")]
    project_rows = [
        ("Organisations covered", len(report.scope.organisations), "integer"),
        ("Improvement projects", len(report.projects), "integer"),
        ("Projects with enough data to judge (12 or more points) [note 4]", len(judged), "integer"),
        ("Projects showing special cause improvement [note 5]",
         int(judged["variation"].str.startswith("improvement").sum()), "integer"),
        ("Projects showing special cause concern [note 5]", int(judged["variation"].str.startswith("concern").sum()),
         "integer"),
        ("Projects consistently meeting their target [note 6]", int((judged["assurance"] == "consistent_pass").sum()),
         "integer"),
    ]
    headline = pd.concat([people.headline, pd.DataFrame(project_rows, columns=["Measure", "Value", "kind"])],
                         ignore_index=True)
    summary = book.add_sheet("Summary")
    start = sheet_header(summary, fmt, f"Summary, {report.period_words}{report.mark}", [
        "This worksheet contains one table and one chart (participants by programme year; its figures are on the "
        "Growth sheet).",
        report.status,
        f"Counts of 1 to 4 people, and figures that would reveal them, are shown as {SUPPRESSED} [note 2].",
    ])
    write_table(summary, fmt, start, headline[["Measure", "Value"]], name="headline_figures",
                widths={"Measure": 62, "Value": 14}, description="Headline figures",
                formats={"Value": [fmt.decimal if k == "decimal" else fmt.integer for k in headline["kind"]]})

    growth = book.add_sheet("Growth")
    g_start = sheet_header(growth, fmt, f"Participants by programme year and type of organisation, "
                                        f"{report.period_words}{report.mark}", [
        "This worksheet contains one table: the figures of the chart on the Summary sheet [note 1] [note 3].",
        f"A suppressed figure [note 2] is left blank so the chart leaves it out; the last column names the "
        f"suppressed ones ({SUPPRESSED}).",
    ])
    numbers = [c for c in people.growth.columns if c not in ("Programme year", "Suppressed [c]")]
    first, last = write_table(growth, fmt, g_start, people.growth, name="participants_by_year",
                              widths={"Programme year": 16, "Suppressed [c]": 40},
                              formats={c: fmt.integer for c in numbers},
                              description="Participants by programme year and type of organisation")
    if not len(people.growth) or not people.growth_types:
        return
    chart = book.workbook.add_chart({"type": "column", "subtype": "stacked"})
    for i, label in enumerate(people.growth_types):
        col = list(people.growth.columns).index(label)
        colour, pattern = SERIES_COLOURS[i % len(SERIES_COLOURS)], GROWTH_PATTERNS[i % len(GROWTH_PATTERNS)]
        chart.add_series({
            "name": ["Growth", g_start, col],
            "categories": ["Growth", first, 0, last, 0],
            "values": ["Growth", first, col, last, col],
            "border": {"color": "#404040"},
            # patterns as well as colours: colour is never the only signal
            **({"fill": {"color": colour}} if pattern == "solid"
               else {"pattern": {"pattern": pattern, "fg_color": colour, "bg_color": "#FFFFFF"}}),
        })
    chart.set_title({"name": "Participants by programme year", "name_font": {"size": 12}})
    chart.set_x_axis({"name": "Programme year"})
    chart.set_y_axis({"name": "Participants", "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom"})
    chart.show_blanks_as("gap")
    summary.insert_chart(start, 3, chart, {
        "x_scale": 1.3, "y_scale": 1.2, "object_position": 1,
        "description": "Stacked column chart of participants by programme year, by type of organisation. "
                       "The figures are in the table on the Growth sheet.",
    })


def write_participation(book: Book, report: Report) -> None:
    sheet = book.add_sheet("Participation")
    start = sheet_header(sheet, book.fmt, f"Participants by organisation, cohort and profession, "
                                          f"{report.period_words}{report.mark}", [
        "This worksheet contains one table: participants by their status at the end of the period [note 1] [note 3].",
        f"Counts of 1 to 4 people, and figures that would reveal them, are shown as {SUPPRESSED} [note 2].",
    ])
    counts = ["Headcount", *[s.capitalize() for s in STATUSES]]
    write_table(sheet, book.fmt, start, report.people.table, name="participation",
                widths={"Organisation": 45, "Organisation code": 13, "Profession": 26},
                formats={**{c: book.fmt.integer for c in counts}, "Completed (% of headcount)": book.fmt.decimal},
                description="Participants by organisation, cohort and profession")


def _grid_cell(i: int) -> tuple[int, int]:
    """Where the i-th run chart's heading goes: two charts to a row band."""
    band, slot = divmod(i, CHARTS_PER_ROW)
    return 3 + band * BAND, slot * (CHART_COLS + 1)


def write_projects_and_run_charts(book: Book, report: Report) -> None:
    """Projects (each row linking to its chart), Run charts (a grid) and Chart data (what they draw)."""
    fmt = book.fmt
    chart_frame = chart_data_frame(report.points)
    # an optional column with nothing in it would be a blank column inside the table
    chart_frame = chart_frame.drop(columns=[c for c in OPTIONAL_SERIES if all(v is BLANK for v in chart_frame[c])])
    data_lines = ["This worksheet contains one table: every point the run charts draw, by project and period "
                  "[note 4] [note 7]."]
    data_header = len(data_lines) + 1  # the Chart data table's header row, below the title and lines

    charts: list[RunChart] = []
    chart_cells: dict[str, str] = {}
    lines = {c: chart_frame[c].tolist() for c in LINE_SERIES if c in chart_frame.columns}  # (lists: sliced per chart)
    offset = data_header + 1
    for i, (project_id, size) in enumerate(report.points.groupby("project_id", sort=True).size().items()):
        chart_cells[project_id] = f"'Run charts'!{xl_rowcol_to_cell(*_grid_cell(i))}"
        first = offset - data_header - 1
        present = [c for c, values in lines.items() if any(v is not BLANK for v in values[first:first + size])]
        charts.append(RunChart(project_id, offset, offset + size - 1, present))
        offset += size

    projects_table, kinds = projects_frame(report.projects, report.outcomes, report.points, report.scope, chart_cells)
    sheet = book.add_sheet("Projects")
    start = sheet_header(sheet, fmt, f"Improvement projects, {report.period_words}{report.mark}", [
        "This worksheet contains one table: each project's primary measure as of the end of the period [note 4] "
        "[note 5] [note 6]. Select a Run chart link to see the chart.",
        "Variation and assurance are in words; the fill colour only repeats them (blue improvement, orange concern).",
    ])
    fills = [getattr(fmt, k) for k in kinds]
    write_table(sheet, fmt, start, projects_table, name="projects",
                widths={"Project ID": 15, "Organisation": 32, "Project title": 40, "Measure": 32, "Variation": 34,
                        "Assurance": 34, "What the chart shows": 70, "Rule": 34, "Process limits": 40, "Run chart": 26},
                formats={"Points": fmt.integer, "Latest period": fmt.month, "Latest value": fmt.decimal,
                         "Target": fmt.decimal, "Signal from": fmt.month, "Variation": fills, "Assurance": fills,
                         "What the chart shows": fmt.wrap, "Project title": fmt.wrap},
                description="Improvement projects")
    project_row = {pid: start + 1 + i for i, pid in enumerate(projects_table["Project ID"])}
    titles = report.projects.set_index("project_id")["title"].to_dict()
    types = report.projects.set_index("project_id")["measure_type"].to_dict()

    sheet = book.add_sheet("Run charts")
    sheet_header(sheet, fmt, f"Run charts, {report.period_words}{report.mark}", [
        f"{len(charts)} XmR run charts, two to a row, in the order of the Projects sheet; each heading links back to "
        "its project. The figures are on the Chart data sheet [note 4] [note 7].",
    ])
    columns = list(chart_frame.columns)
    for i, run in enumerate(charts):
        row, col = _grid_cell(i)
        heading = f"{run.project_id}: {titles.get(run.project_id, '')}"
        heading = heading if len(heading) <= 120 else heading[:119] + "…"
        write_link(sheet, fmt, row, col, Link(f"'Projects'!A{project_row[run.project_id] + 1}", heading))
        rows = slice(run.first_row - data_header - 1, run.last_row - data_header)
        drawn = [v for c in run.series for v in lines[c][rows] if v is not BLANK]
        bounds = axis_bounds(drawn, percentage=types.get(run.project_id) == "percentage",
                             nonnegative=all(v >= 0 for v in lines["Value"][rows] if v is not BLANK))
        chart = _run_chart(book, run, columns, data_header, project_row[run.project_id], row, col, bounds)
        sheet.insert_chart(row + 1, col, chart, {
            "object_position": 1,
            "description": f"Run chart of {run.project_id}: values by period with the centre line and process "
                           f"limits{' and the target' if 'Target' in run.series else ''}. Figures on the Chart data "
                           "sheet.",
        })

    sheet = book.add_sheet("Chart data")
    sheet_header(sheet, fmt, f"Run chart data, {report.period_words}{report.mark}", data_lines)
    write_table(sheet, fmt, data_header, chart_frame, name="run_chart_data",
                widths={"Project ID": 15, "Period": 12, "Point type": 28, "Rule": 48, "Value revised": 14},
                formats={"Period": fmt.date, **{c: fmt.decimal for c in LINE_SERIES}},
                description="Run chart data")


def write_data_quality(book: Book, report: Report) -> None:
    fmt = book.fmt
    sheet = book.add_sheet("Data quality")
    start = sheet_header(sheet, fmt, f"Data quality: returns received for {report.period_words}{report.mark}", [
        "This worksheet contains one table: each organisation's returns for the period, on time, late or missing "
        "[note 8].",
        "The status is in words; the fill colour only repeats it.",
    ])
    write_table(sheet, fmt, start, report.quality, name="data_quality",
                widths={"Organisation": 45, "Organisation code": 13, "Return": 18, "Status [note 8]": 30,
                        "First received (UTC)": 20},
                formats={"Status [note 8]": [getattr(fmt, k) for k in report.quality_kinds], "Files": fmt.integer,
                         "Rows received": fmt.integer, "Rows accepted": fmt.integer, "Rows rejected": fmt.integer,
                         "First received (UTC)": fmt.datetime},
                description="Returns received for the period")


def axis_bounds(values: list[float], *, percentage: bool, nonnegative: bool = True) -> dict[str, float]:
    """A y axis that fits the drawn lines with a little room, on round numbers.

    Measure values are never negative (SPEC 3.3), so the axis stops at 0 even when a lower
    process limit falls below it, and a percentage axis stops at 100.
    """
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return {}
    low, high = min(values), max(values)
    span = high - low or max(abs(high), 1.0)
    raw = span * 1.2 / 5
    magnitude = 10 ** np.floor(np.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    lo = float(np.floor((low - span * 0.1) / step) * step)
    hi = float(np.ceil((high + span * 0.1) / step) * step)
    if low >= 0 or nonnegative:
        lo = max(lo, 0.0)
        hi = max(hi, step)
    if percentage and high <= 100:
        hi = min(hi, 100.0)
    return {"min": round(lo, 10), "max": round(hi, 10), "major_unit": float(step)}


def _run_chart(book: Book, run: RunChart, columns: list[str], header_row: int, project_row: int | None,
               heading_row: int, heading_col: int, bounds: dict[str, float]):
    """A line chart of one project's points: values, centre, process limits, target, signals."""
    chart = book.workbook.add_chart({"type": "line"})
    sheet = "Chart data"
    cats = [sheet, run.first_row, 1, run.last_row, 1]
    style = {
        "Value": {"line": {"color": "#231F20", "width": 1.5},
                  "marker": {"type": "circle", "size": 5, "fill": {"color": "#231F20"},
                             "border": {"color": "#231F20"}}},
        "Centre (mean)": {"line": {"color": GREY_LINE, "width": 1.25}, "marker": {"type": "none"}},
        "Lower process limit": {"line": {"color": GREY_LINE, "width": 1, "dash_type": "dash"},
                                "marker": {"type": "none"}},
        "Upper process limit": {"line": {"color": GREY_LINE, "width": 1, "dash_type": "dash"},
                                "marker": {"type": "none"}},
        "Target": {"line": {"color": "#DA291C", "width": 1.25, "dash_type": "long_dash_dot"},
                   "marker": {"type": "none"}},
        "Special cause improvement": {"line": {"none": True},
                                      "marker": {"type": "triangle", "size": 8, "fill": {"color": "#41B6E6"},
                                                 "border": {"color": "#003087"}}},
        "Special cause concern": {"line": {"none": True},
                                  "marker": {"type": "square", "size": 7, "fill": {"color": "#ED8B00"},
                                             "border": {"color": "#8A5300"}}},
    }
    for name in run.series:
        col = columns.index(name)
        chart.add_series({"name": [sheet, header_row, col], "categories": cats,
                          "values": [sheet, run.first_row, col, run.last_row, col], **style[name]})
    # Title and axis name from cells (text from submissions never becomes a chart formula).
    chart.set_title({"name": ["Run charts", heading_row, heading_col], "name_font": {"size": 10, "bold": True}})
    axis: dict[str, Any] = {"major_gridlines": {"visible": True, "line": {"color": "#E8E8E8"}}, **bounds}
    if project_row is not None:
        axis["name"] = ["Projects", project_row, 4]
        axis["name_font"] = {"size": 9, "bold": False}
    chart.set_y_axis(axis)
    chart.set_x_axis({"date_axis": True, "num_format": "mmm yy", "num_font": {"rotation": -45, "size": 8}})
    chart.set_legend({"position": "bottom", "font": {"size": 8}})
    chart.show_blanks_as("gap")
    chart.set_size({"width": CHART_COLS * 64, "height": CHART_ROWS * 20})
    return chart


__all__ = ["SUPPRESSED", "Report", "Scope", "WorkbookContext", "build_commissioner_workbook", "participation",
           "participation_atoms", "prepare_report", "scoped_projects", "scoped_summary", "workbook_path"]
