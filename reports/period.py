"""Write every commissioner's workbook for the reporting periods due.

One job per commissioner and period. With more than one worker (``QI_WORKERS``) the
jobs run in worker processes, each reading the published marts itself (Parquet, a few
tens of milliseconds) rather than receiving them pickled; the biggest scopes start first,
so the last job to finish is a small one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from reports.commissioner import WorkbookContext, build_commissioner_workbook, workbook_path
from transforms.marts import SCHEMAS
from transforms.parallel import run_jobs, worker_cache
from transforms.reference import Reference, commissioner_scope
from transforms.storage import read_table

# The marts the commissioner workbooks read (a missing one is shown as [x], never an error).
TABLES = (
    "mart_programme_summary",
    "dim_project",
    "fct_enrolment",
    "mart_project_outcomes",
    "mart_spc_points",
    "mart_submission_status",
)


@dataclass(frozen=True)
class ReportJob:
    """One commissioner's workbook for one period."""

    path: Path
    commissioner: pd.Series
    organisations: pd.DataFrame
    ctx: WorkbookContext
    marts: Path | None  # a publish folder to read the marts from (in a worker process)


def read_report_tables(publish_dir: Path) -> dict[str, pd.DataFrame]:
    """The marts a commissioner workbook reads, from one publish folder (a missing one is left out)."""
    return {name: read_table(publish_dir / f"{name}.parquet", SCHEMAS[name])
            for name in TABLES if (publish_dir / f"{name}.parquet").exists()}


@worker_cache
def _tables_in_worker(publish_dir: Path) -> dict[str, pd.DataFrame]:
    # A publish folder never changes once written, so a worker reads it once for all its jobs.
    return read_report_tables(publish_dir)


def _profession_filter(commissioner: pd.Series) -> bool:
    value = commissioner.get("profession_filter")
    return value is not None and not pd.isna(value) and bool(str(value).strip())


def _write_job(job: ReportJob) -> Path:
    assert job.marts is not None
    return build_commissioner_workbook(job.path, job.commissioner, _tables_in_worker(job.marts), job.organisations,
                                       job.ctx)


def write_reports(reports_dir: Path, reference: Reference, due: list[tuple[str, bool]], *, produced_at: datetime,
                  data_as_of: datetime, marts: Path | None = None, tables: dict[str, pd.DataFrame] | None = None,
                  workers: int = 1, due_day: int = 10,
                  suppression_memo: Path | None = None) -> dict[tuple[str, bool], list[Path]]:
    """Every commissioner's workbook for each (period, provisional) in ``due``; their paths by period.

    The marts come from the publish folder ``marts`` or, in this process only, from
    ``tables``. Paths are in commissioner code order within a period. ``suppression_memo``:
    a folder where solved suppression problems are kept (a period whose counts did not
    change is not solved again).
    """
    if marts is None and tables is None:
        raise ValueError("write_reports needs the marts: a publish folder or the tables")
    commissioners = reference.commissioners.sort_values("code", kind="stable")
    jobs = [ReportJob(workbook_path(reports_dir, commissioner["code"], period), commissioner,
                      reference.organisations,
                      WorkbookContext(period=period, produced_at=produced_at, data_as_of=data_as_of,
                                      provisional=provisional, due_day=due_day, suppression_memo=suppression_memo),
                      marts.resolve() if marts is not None else None)
            for period, provisional in due for _, commissioner in commissioners.iterrows()]
    if marts is not None and workers > 1 and len(jobs) > 1:
        # The biggest first (a commissioner of more organisations, then one of every
        # profession), so that the last job to finish is a small one.
        size = [(len(commissioner_scope(job.commissioner, job.organisations)), not _profession_filter(job.commissioner))
                for job in jobs]
        order = sorted(range(len(jobs)), key=lambda i: size[i], reverse=True)
        done = run_jobs(_write_job, [jobs[i] for i in order], workers=workers)
        paths: list[Path] = [Path()] * len(jobs)
        for i, path in zip(order, done, strict=True):
            paths[i] = path
    else:
        data = tables if tables is not None else read_report_tables(marts.resolve())  # type: ignore[union-attr]
        paths = [build_commissioner_workbook(job.path, job.commissioner, data, job.organisations, job.ctx)
                 for job in jobs]
    out: dict[tuple[str, bool], list[Path]] = {key: [] for key in due}
    for job, path in zip(jobs, paths, strict=True):
        out[(job.ctx.period, job.ctx.provisional)].append(path)
    return out


def write_period_reports(reports_dir: Path, tables: dict[str, pd.DataFrame], reference: Reference, *, period: str,
                         provisional: bool, produced_at: datetime, data_as_of: datetime,
                         due_day: int = 10) -> list[Path]:
    """One workbook per commissioner for ``period``, in this process; return their paths."""
    return write_reports(reports_dir, reference, [(period, provisional)], produced_at=produced_at,
                         data_as_of=data_as_of, tables=tables, due_day=due_day)[(period, provisional)]
