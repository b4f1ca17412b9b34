"""Write every commissioner's workbook for one reporting period."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from reports.commissioner import WorkbookContext, build_commissioner_workbook, workbook_path
from transforms.reference import Reference

# The marts the commissioner workbooks read (a missing one is shown as [x], never an error).
TABLES = (
    "mart_programme_summary",
    "dim_project",
    "fct_enrolment",
    "mart_project_outcomes",
    "mart_spc_points",
    "mart_submission_status",
)


def write_period_reports(reports_dir: Path, tables: dict[str, pd.DataFrame], reference: Reference, *, period: str,
                         provisional: bool, produced_at: datetime, data_as_of: datetime,
                         due_day: int = 10) -> list[Path]:
    """One workbook per commissioner for ``period``; return their paths."""
    written = []
    ctx = WorkbookContext(period=period, produced_at=produced_at, data_as_of=data_as_of, provisional=provisional,
                          due_day=due_day)
    for _, commissioner in reference.commissioners.sort_values("code", kind="stable").iterrows():
        path = workbook_path(reports_dir, commissioner["code"], period)
        written.append(build_commissioner_workbook(path, commissioner, tables, reference.organisations, ctx))
    return written
