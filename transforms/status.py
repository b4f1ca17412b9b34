"""What ``qi-pipeline status`` shows: what arrived, what is late or missing, the last runs.

Pure reads of the data root: the manifest, the runs ledger, the current publish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from transforms.archive import MANIFEST_SCHEMA
from transforms.periods import due_at, reporting_period_of
from transforms.publish import current_build, current_dir, read_mart
from transforms.settings import DataRoot
from transforms.storage import read_table_or_empty


@dataclass
class Status:
    period: str
    due: datetime
    submissions: pd.DataFrame  # organisation x dataset for the period
    arrived: pd.DataFrame  # files received in the last N days
    runs: list[dict]
    publish: dict | None
    retractions: pd.DataFrame
    backfills: list[dict]
    deliveries: pd.DataFrame  # latest attempt per message
    alerts: list[str]  # incidents alerted on by this status check


def _manifest(root: DataRoot) -> pd.DataFrame:
    return read_table_or_empty(root.raw / "manifest.parquet", MANIFEST_SCHEMA)


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def collect(root: DataRoot, *, now: datetime, due_day: int, days: int = 7, settings=None) -> Status:
    """The state of the data root as of ``now``; with ``settings``, alerts on open incidents too."""
    from transforms.delivery import DeliveryLedger, deliver

    ledger = DeliveryLedger.for_root(root)
    alerts: list[str] = []
    if settings is not None and root.state.exists():
        from transforms.run import alert_messages

        messages = [m for m in alert_messages(root, settings, now) if m is not None]
        if messages:
            report = deliver(messages, settings=settings, root=root, ledger=ledger)
            alerts = [r.key for r in (*report.sent, *report.written)]

    period = reporting_period_of(now)
    manifest = _manifest(root)
    subs = manifest[manifest["kind"] == "submission"]
    if current_dir(root.marts):
        status = read_mart(root.marts, "mart_submission_status")
        status = status[status["reporting_period"] == period]
    else:
        status = pd.DataFrame(columns=["organisation_code", "dataset", "status", "files", "rows_rejected"])
    arrived = subs[subs["received_at"] >= pd.Timestamp(now - timedelta(days=days))]
    arrived = arrived[["received_at", "organisation_code", "file_name", "outcome", "rows_received", "rows_rejected",
                       "sha256", "reason"]].sort_values("received_at", ascending=False)
    retractions = subs[subs["retracted"].fillna(False)][["sha256", "file_name", "received_at", "retracted_reason"]]
    return Status(
        period=period,
        due=due_at(period, due_day),
        submissions=status.reset_index(drop=True),
        arrived=arrived.reset_index(drop=True),
        runs=_jsonl(root.state / "runs.jsonl")[-5:],
        publish=current_build(root.marts),
        retractions=retractions.reset_index(drop=True),
        backfills=_jsonl(root.state / "backfills.jsonl")[-12:],
        deliveries=ledger.latest(),
        alerts=alerts,
    )
