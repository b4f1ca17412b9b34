"""The backfill ledger: each period's result of each backfill (SPEC 9).

Prefect has no notion of partitions or backfills (STACK.md): a backfill is a flow over a
list of periods, and this ledger (``state/backfills.jsonl``) is its memory. One line per
period attempt: succeeded, failed with its reason, or skipped.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from transforms.periods import parse_period, periods_between
from transforms.settings import UsageError


@dataclass(frozen=True)
class BackfillPlan:
    backfill_id: str
    periods: list[str]
    as_known_at: date | None

    @property
    def label(self) -> str:
        return f"as known at {self.as_known_at}" if self.as_known_at else "restated"


def ledger_path(state: Path) -> Path:
    return state / "backfills.jsonl"


def read_ledger(state: Path) -> list[dict]:
    path = ledger_path(state)
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a crash
            continue
    return entries


def record(state: Path, plan: BackfillPlan, period: str, status: str, reason: str | None = None,
           outputs: list[str] | None = None) -> dict:
    entry = {
        "backfill_id": plan.backfill_id, "period": period, "status": status, "reason": reason,
        "as_known_at": plan.as_known_at.isoformat() if plan.as_known_at else None,
        "outputs": outputs or [], "at": datetime.now(UTC).isoformat(),
    }
    with open(ledger_path(state), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def plan(state: Path, *, first: str | None, last: str | None, as_known_at: date | None, only_failed: bool,
         latest_period: str) -> BackfillPlan:
    """The periods to (re)build; ``only_failed`` repeats just the failed periods of the last backfill."""
    if only_failed:
        entries = read_ledger(state)
        if not entries:
            raise UsageError("--only-failed: there is no earlier backfill to repeat")
        last_id = entries[-1]["backfill_id"]
        mine = [e for e in entries if e["backfill_id"] == last_id]
        final = {e["period"]: e for e in mine}  # the last word on each period
        failed = sorted(p for p, e in final.items() if e["status"] == "failed")
        known_at = mine[-1]["as_known_at"]
        return BackfillPlan(last_id, failed, date.fromisoformat(known_at) if known_at else None)
    if not first or not last:
        raise UsageError("backfill needs --from YYYY-MM and --to YYYY-MM (or --only-failed)")
    for text in (first, last):
        try:
            parse_period(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    if last > latest_period:
        raise UsageError(f"--to {last} is after the latest reporting period with data ({latest_period})")
    return BackfillPlan(f"bf-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}", periods_between(first, last),
                        as_known_at)
