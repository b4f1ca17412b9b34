"""Delivery by e-mail, once, with a ledger (SPEC 2, 9).

Commissioners get their final workbooks, senders their feedback workbooks, and the
operator an alert when the nightly job fails or goes quiet. Builders turn what the run
knows into ``Message`` objects; ``deliver`` sends each message not yet delivered over
SMTP (or, with no SMTP host configured, writes it as an .eml file to ``data/outbox/``)
and records every attempt in ``data/state/deliveries.jsonl``.

Guarantees:
- one message per commissioner or per submission, its envelope addressed only to that
  commissioner's recipients or that organisation's contacts (never Cc, never shared);
- a body holds only figures and short lines the caller passes in, checked to look like
  figures, never participants' data;
- a message is delivered once per idempotency key: a second run sends nothing, and
  ``resend=True`` sends again; the ledger is append-only, one line per attempt;
- workbooks are only read, never written: a failed send cannot lose or damage one, and
  the next run sends what is still owed (``DeliveryLedger.owed``).

A send that succeeds just before the process is killed, before its ledger line is
written, is sent again by the next run: delivery is at least once, never zero times.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from transforms.periods import parse_period, shift
from transforms.settings import DataRoot, Settings
from transforms.storage import atomic_write_bytes, fsync_dir

log = logging.getLogger("qi.delivery")

Kind = Literal["commissioner_report", "feedback", "alert"]
Status = Literal["sent", "written_to_outbox", "failed"]
DELIVERED: tuple[str, ...] = ("sent", "written_to_outbox")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STALE_AFTER = timedelta(hours=36)
SUCCESSFUL_OUTCOMES = ("succeeded", "needs_attention")
# Shorthand a disclosure-controlled figure may be instead of a number (SPEC 8).
SHORTHAND = ("[c]", "[x]", "[z]")
_FIGURE_RE = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?%?( \[[pr]\])?$|^\[[cxz]\]$")
_EMAIL_RE = re.compile(r"[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+")
_ADDRESS_RE = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_OUTCOME_WORDS = {
    "accepted": "accepted",
    "accepted_with_errors": "accepted, with rows rejected",
    "rejected": "rejected (the file was not loaded)",
}
_COUNT_LABELS = {
    "rows_read": "Rows read",
    "rows_loaded": "Rows loaded",
    "rows_rejected": "Rows rejected",
    "rows_held": "Rows held (project not yet registered)",
    "errors": "Errors",
    "warnings": "Warnings",
}
LEDGER_COLUMNS = ["at", "key", "kind", "period", "to", "subject", "attachment", "attachment_sha256",
                  "status", "error", "attempt", "outbox"]


@dataclass(frozen=True)
class Message:
    """One e-mail to send, identified by an idempotency ``key`` (delivered once per key)."""

    kind: Kind
    key: str
    to: list[str]
    subject: str
    body: str
    attachment: Path | None = None
    period: str | None = None


# ---------------------------------------------------------------- builders


def commissioner_message(commissioner_row: Mapping[str, Any] | pd.Series, period: str, workbook_path: Path,
                         headline: Mapping[str, int | str], changes: Sequence[str]) -> Message:
    """The final report for one commissioner and period, addressed to its recipients only.

    ``headline``: three or four figures (label -> value) as the workbook shows them, so
    already disclosure-controlled (a value may be ``[c]``). ``changes``: short lines on
    what changed since last month. Both are checked: a headline value must look like a
    figure and no line may hold an e-mail address, so no participant's data reaches a body.
    """
    period = parse_period(period)
    code, name = _field(commissioner_row, "code"), _field(commissioner_row, "name") or _field(commissioner_row, "code")
    figures = _checked_headline(headline)
    lines = [_checked_line(line, "changes") for line in changes]
    body = [
        f"Quality improvement programme: report for {name}, {_month_name(period)} ({period}).",
        "",
        f"Attached: {workbook_path.name}, the final report for {period}. It covers only the organisations "
        "you commission and holds no personal data.",
        "",
        f"Headline figures for {period}:",
    ]
    body += [f"  {label}: {value}" for label, value in figures.items()] or ["  (see the Summary sheet of the workbook)"]
    body += ["", "What changed since last month:"]
    body += [f"  - {line}" for line in lines] or ["  - Nothing to report."]
    body.append("")
    if any(value == "[c]" for value in figures.values()):
        body.append("[c]: a count of 1 to 4 people, not shown to protect confidentiality.")
    body += [
        "Definitions and methods are in the Notes sheet; who to contact is on the Cover sheet.",
        "This message was sent automatically by the QI programme reporting pipeline.",
    ]
    return Message(kind="commissioner_report", key=f"report:{period}:{code}", to=parse_addresses(
        _field(commissioner_row, "recipients")), subject=_one_line(f"QI programme report {period}: {name}"),
        body="\n".join(body) + "\n", attachment=workbook_path, period=period)


def feedback_message(org_row: Mapping[str, Any] | pd.Series, file_name: str, sha256: str, outcome: str,
                     counts: Mapping[str, int], workbook_path: Path, *, period: str | None = None,
                     always: bool = False) -> Message | None:
    """Feedback on one processed submission, to its organisation's ``contacts`` only.

    None when the organisation has no contacts, or when the submission was accepted
    without errors and ``always`` is false. ``counts``: whole numbers only (rows read,
    rows rejected, errors, warnings...); the issues themselves are in the workbook.
    """
    to = parse_addresses(_field(org_row, "contacts"))
    checked = {str(k): _checked_count(k, v) for k, v in counts.items()}
    had_errors = outcome in ("rejected", "accepted_with_errors") or checked.get("errors", 0) > 0 \
        or checked.get("rows_rejected", 0) > 0
    if not to or not (had_errors or always):
        return None
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"{sha256!r} is not a SHA-256")
    code, org_name = _field(org_row, "code"), _field(org_row, "name") or _field(org_row, "code")
    shown_name = _one_line(Path(file_name).name)
    words = _OUTCOME_WORDS.get(outcome, outcome.replace("_", " "))
    body = [
        "Feedback on a submission to the QI programme.",
        "",
        f"File: {shown_name}",
        f"Organisation: {org_name} ({code})",
        f"File fingerprint (SHA-256): {sha256}",
        f"Outcome: {words}",
    ]
    body += [f"{_COUNT_LABELS.get(k, k.replace('_', ' ').capitalize())}: {v}" for k, v in checked.items()]
    body += ["", f"The attached workbook, {workbook_path.name}, lists every issue with its sheet, row and column, "
             "the rule it broke and how to fix it."]
    if outcome == "rejected":
        body.append("Nothing from this file was loaded: please correct it and send it again.")
    elif had_errors:
        body.append("The rest of the file was loaded; the rows listed as errors were not. "
                    "Please correct them in your next return.")
    else:
        body.append("Nothing needs doing: this copy is for your records.")
    body += ["", "This message was sent automatically by the QI programme reporting pipeline."]
    return Message(kind="feedback", key=f"feedback:{sha256}", to=to,
                   subject=_one_line(f"QI programme: feedback on {shown_name} ({words.split(' (')[0]})"),
                   body="\n".join(body) + "\n", attachment=workbook_path, period=period)


@dataclass(frozen=True)
class Incident:
    """Something the operator must hear about once: a failed run, or no success for 36 hours."""

    id: str
    kind: Literal["failed_run", "stale"]
    text: str


def alert_message(alert_to: str | None, incident: Incident, text: str = "") -> Message | None:
    """The alert for one incident, to ``QI_ALERT_TO``; None when no alert address is set.

    ``text``: extra lines for the operator (the error, where to look); never data values.
    """
    to = parse_addresses(alert_to)
    if not to:
        return None
    title = "nightly run failed" if incident.kind == "failed_run" else "no successful run for 36 hours"
    body = [incident.text]
    if text.strip():
        body += ["", text.strip()]
    body += ["", f"Incident: {incident.id}",
             "Run `qi-pipeline status` on the pipeline host for the last runs and what is owed.",
             "You get one message per incident."]
    return Message(kind="alert", key=f"alert:{incident.id}", to=to,
                   subject=_one_line(f"[QI pipeline] ALERT: {title}"), body="\n".join(body) + "\n")


def check_alerts(runs: Sequence[Mapping[str, Any]], now: datetime, *,
                 stale_after: timedelta = STALE_AFTER) -> list[Incident]:
    """Incidents shown by the runs ledger as of ``now``.

    ``runs``: runs ledger entries (``run_id``, ``finished_at`` ISO, ``outcome`` one of
    succeeded, needs_attention, failed; optional ``error``). A failed last run is an
    incident named by its run id; no successful run for ``stale_after`` is one named
    ``stale:<the last success's finished_at>`` (``stale:never`` when none ever succeeded),
    so each incident alerts once thanks to the ledger key. No runs at all: nothing to say.
    """
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    timed = [(at, run) for run in runs if (at := _parse_time(run.get("finished_at"))) is not None]
    if not timed:
        return []
    timed.sort(key=lambda pair: pair[0])
    incidents = []
    last_at, last = timed[-1]
    if last.get("outcome") == "failed":
        error = f" Error: {_one_line(str(last['error']))}" if last.get("error") else ""
        incidents.append(Incident(id=str(last.get("run_id") or f"run:{last['finished_at']}"), kind="failed_run",
                                  text=f"The nightly run {last.get('run_id', '')} failed at "
                                       f"{last_at:%Y-%m-%d %H:%M} UTC.{error}"))
    successes = [(at, run) for at, run in timed if run.get("outcome") in SUCCESSFUL_OUTCOMES]
    if successes:
        success_at, success = successes[-1]
        if now - success_at > stale_after:
            hours = int((now - success_at).total_seconds() // 3600)
            incidents.append(Incident(id=f"stale:{success['finished_at']}", kind="stale",
                                      text=f"No successful run for {hours} hours: the last one finished at "
                                           f"{success_at:%Y-%m-%d %H:%M} UTC."))
    elif now - timed[0][0] > stale_after:
        incidents.append(Incident(id="stale:never", kind="stale",
                                  text=f"No run has succeeded since the first one, at {timed[0][0]:%Y-%m-%d %H:%M} UTC."))
    return incidents


def headline_from_workbook(path: Path, *, measures: Sequence[str] | None = None, limit: int = 4) -> dict[str, int | str]:
    """The figures of a commissioner workbook's ``headline`` table, as published (so ``[c]`` stays ``[c]``).

    Reading the frozen final workbook lets a later run, or ``deliver --period``, rebuild
    the same body. ``measures`` picks rows by label; else the first ``limit`` rows.
    Empty when the workbook has no headline table.
    """
    rows = _table_values(path, "headline")
    if rows is None:
        return {}
    figures: dict[str, int | str] = {}
    for label, value, *_ in rows[1:]:
        if value is None:
            value = "[x]"
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        figures[str(label)] = value if isinstance(value, int) else str(value)
    if measures is not None:
        return {m: figures[m] for m in measures if m in figures}
    return dict(list(figures.items())[:limit])


def _table_values(path: Path, name: str) -> list[list[object]] | None:
    """The cells of the Excel table ``name`` (header row first; blank cells None), or None.

    Its sheet and range come from the table parts; its cached values from python-calamine,
    which reads that one sheet: loading the whole workbook (a run chart per project) with
    openpyxl took seconds.
    """
    import posixpath
    import zipfile
    from xml.etree import ElementTree

    import python_calamine

    from transforms.read import _column_index, _sheet_paths

    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        found = None
        for sheet, member in _sheet_paths(zf, names).items():
            folder, base = posixpath.split(member)
            rels = posixpath.join(folder, "_rels", base + ".rels")
            if rels not in names:
                continue
            for rel in ElementTree.fromstring(zf.read(rels)):
                target = rel.get("Target", "")
                if not rel.get("Type", "").endswith("/table"):
                    continue
                part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
                if part in names:
                    table = ElementTree.fromstring(zf.read(part))
                    if name in (table.get("name"), table.get("displayName")):
                        found = (sheet, table.get("ref", ""))
                        break
            if found:
                break
    if found is None:
        return None
    sheet, ref = found
    match = re.fullmatch(r"([A-Z]{1,3})([0-9]+):([A-Z]{1,3})([0-9]+)", ref)
    if match is None:
        return None
    first_col, last_col = _column_index(match[1].encode()), _column_index(match[3].encode())
    first_row, last_row = int(match[2]) - 1, int(match[4]) - 1
    with python_calamine.CalamineWorkbook.from_path(str(path)) as book:
        grid = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    out = []
    for r in range(first_row, last_row + 1):
        cells = grid[r] if r < len(grid) else []
        out.append([None if c >= len(cells) or cells[c] == "" else cells[c] for c in range(first_col, last_col + 1)])
    return out


def changes_since(previous: Mapping[str, int | str] | None, current: Mapping[str, int | str],
                  period: str) -> list[str]:
    """Short lines comparing this period's headline figures with last month's (``None``: no report then)."""
    before = shift(parse_period(period), -1)
    if previous is None:
        return [f"No {before} report to compare with."]
    lines = []
    for label, value in current.items():
        old = previous.get(label)
        if old is None or old == value:
            continue
        if isinstance(value, int) and isinstance(old, int):
            lines.append(f"{label}: {value} (was {old}, {value - old:+d})")
        else:
            lines.append(f"{label}: {value} (was {old})")
    return lines or [f"No change in the headline figures since {before}."]


# ---------------------------------------------------------------- the ledger


class DeliveryLedger:
    """Every delivery attempt, one JSON line each, append-only: ``data/state/deliveries.jsonl``.

    Grain: one row per attempt to deliver one message (key). A key is delivered when
    any of its lines says ``sent`` or ``written_to_outbox``.
    """

    def __init__(self, path: Path, *, base: Path | None = None) -> None:
        self.path = path
        self.base = base  # attachments under it are recorded relative to it

    @classmethod
    def for_root(cls, root: DataRoot) -> DeliveryLedger:
        return cls(root.state / "deliveries.jsonl", base=root.root)

    def entries(self) -> list[dict]:
        """Every readable line, oldest first (a line torn by a crash is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s line %d is not readable and is ignored", self.path, number)
        return out

    def delivered_keys(self) -> set[str]:
        return {e["key"] for e in self.entries() if e.get("status") in DELIVERED}

    def already_delivered(self, key: str) -> bool:
        return key in self.delivered_keys()

    def record(self, message: Message, *, status: Status, attempt: int, at: datetime, error: str | None = None,
               attachment_sha256: str | None = None, outbox: Path | None = None) -> dict:
        """Append one attempt and fsync it before returning."""
        entry = {
            "at": at.astimezone(UTC).isoformat(),
            "key": message.key,
            "kind": message.kind,
            "period": message.period,
            "to": list(message.to),
            "subject": message.subject,
            "attachment": self._relative(message.attachment),
            "attachment_sha256": attachment_sha256,
            "status": status,
            "error": error,
            "attempt": attempt,
            "outbox": self._relative(outbox),
            "body": message.body,  # figures and short lines only (see the builders); lets a later run resend
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # A line torn by a killed process must not swallow the next one.
            prefix = b"" if created or _ends_with_newline(self.path) else b"\n"
            os.write(fd, prefix + json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
        return entry

    def history(self) -> pd.DataFrame:
        """Every attempt (one row each), oldest first, for ``status``: what went to whom and when."""
        rows = [{c: (("; ".join(e.get(c) or []) if c == "to" else e.get(c))) for c in LEDGER_COLUMNS}
                for e in self.entries()]
        frame = pd.DataFrame(rows, columns=LEDGER_COLUMNS)
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
        frame["attempt"] = frame["attempt"].astype("int64")
        return frame

    def latest(self) -> pd.DataFrame:
        """One row per message (key): its last attempt, and when it was first delivered (NaT if never)."""
        history = self.history()
        if history.empty:
            return history.assign(delivered_at=pd.Series(dtype="datetime64[ns, UTC]"))
        delivered = history[history["status"].isin(DELIVERED)].groupby("key")["at"].min().rename("delivered_at")
        last = history.groupby("key", sort=False).tail(1).set_index("key")
        return last.join(delivered).reset_index()[["key", *[c for c in LEDGER_COLUMNS if c != "key"], "delivered_at"]]

    def owed(self) -> list[Message]:
        """Messages attempted but never delivered, as last attempted: the next run sends these."""
        delivered = self.delivered_keys()
        last: dict[str, dict] = {}
        for entry in self.entries():
            if entry["key"] not in delivered:
                last[entry["key"]] = entry
        return [Message(kind=e["kind"], key=e["key"], to=list(e["to"]), subject=e["subject"], body=e.get("body") or "",
                        attachment=self._absolute(e.get("attachment")), period=e.get("period"))
                for e in last.values()]

    def _relative(self, path: Path | None) -> str | None:
        if path is None:
            return None
        path = Path(path)
        if self.base is not None:
            try:
                return path.resolve().relative_to(self.base.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    def _absolute(self, text: str | None) -> Path | None:
        if not text:
            return None
        path = Path(text)
        return path if path.is_absolute() or self.base is None else self.base / path


# ---------------------------------------------------------------- sending


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one message in one ``deliver`` call."""

    key: str
    kind: str
    to: list[str]
    status: Literal["sent", "written_to_outbox", "failed", "skipped"]
    attempts: int = 0
    error: str | None = None
    outbox: Path | None = None


@dataclass
class DeliveryReport:
    """The outcome of one ``deliver`` call, for the run summary."""

    results: list[DeliveryResult] = field(default_factory=list)

    def _with(self, status: str) -> list[DeliveryResult]:
        return [r for r in self.results if r.status == status]

    @property
    def sent(self) -> list[DeliveryResult]:
        return self._with("sent")

    @property
    def written(self) -> list[DeliveryResult]:
        return self._with("written_to_outbox")

    @property
    def failed(self) -> list[DeliveryResult]:
        return self._with("failed")

    @property
    def skipped(self) -> list[DeliveryResult]:
        return self._with("skipped")

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> dict:
        """JSON-ready counts and failure reasons (the runs ledger, the flow's artifact)."""
        return {
            "sent": [r.key for r in self.sent],
            "written_to_outbox": [r.key for r in self.written],
            "failed": [{"key": r.key, "to": r.to, "attempts": r.attempts, "error": r.error} for r in self.failed],
            "already_delivered": len(self.skipped),
        }

    def lines(self) -> list[str]:
        """One plain line per message that was acted on, for people."""
        out = [f"sent {r.key} to {', '.join(r.to)}" + (f" ({r.error})" if r.error else "") for r in self.sent]
        out += [f"wrote {r.key} to {r.outbox}" for r in self.written]
        out += [f"FAILED {r.key} to {', '.join(r.to)} after {r.attempts} attempt(s): {r.error}" for r in self.failed]
        return out


class _SendError(Exception):
    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def deliver(messages: Iterable[Message | None], *, settings: Settings, root: DataRoot, ledger: DeliveryLedger,
            resend: bool = False, attempts: int = 3, backoff: Sequence[float] = (1, 4),
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], datetime] | None = None,
            timeout: float = 30.0) -> DeliveryReport:
    """Send each message not yet delivered (all of them with ``resend``), recording every attempt.

    With ``settings.smtp_host`` set: SMTP with STARTTLS, implicit TLS or none per
    ``settings.smtp_tls``, logging in when ``smtp_user`` is set; a transient failure
    (connection refused or dropped, a 4xx reply) is retried up to ``attempts`` times,
    waiting ``backoff[i]`` seconds before retry i+1 (beyond the tuple the last wait
    grows fourfold); a permanent one (5xx) is not. Without it: each message is written
    atomically as ``<outbox>/<UTC timestamp>_<kind>_<safe key>.eml``. Messages are
    taken in order and a key given twice is delivered once (the first wins), so pass
    fresh messages before ``ledger.owed()``; a None (a builder with nothing to send) is
    skipped. A failure is reported, never raised.
    """
    clock = clock or (lambda: datetime.now(UTC))
    delivered = set() if resend else ledger.delivered_keys()
    report = DeliveryReport()
    seen: set[str] = set()
    for message in messages:
        if message is None or message.key in seen:
            continue
        seen.add(message.key)
        if message.key in delivered:
            report.results.append(DeliveryResult(message.key, message.kind, list(message.to), "skipped"))
            continue
        report.results.append(_deliver_one(message, settings=settings, root=root, ledger=ledger, attempts=attempts,
                                           backoff=backoff, sleep=sleep, clock=clock, timeout=timeout))
    for line in report.lines():
        (log.warning if line.startswith("FAILED") else log.debug)(line)
    if report.sent or report.written:
        log.info("delivered %d message(s) by e-mail and wrote %d to the outbox", len(report.sent), len(report.written))
    return report


def _deliver_one(message: Message, *, settings: Settings, root: DataRoot, ledger: DeliveryLedger, attempts: int,
                 backoff: Sequence[float], sleep: Callable[[float], None], clock: Callable[[], datetime],
                 timeout: float) -> DeliveryResult:
    def failed(reason: str, attempt: int, digest: str | None = None) -> DeliveryResult:
        ledger.record(message, status="failed", attempt=attempt, at=clock(), error=reason, attachment_sha256=digest)
        return DeliveryResult(message.key, message.kind, list(message.to), "failed", attempt, reason)

    bad = [a for a in message.to if not _ADDRESS_RE.match(a)]
    if not message.to or bad:
        return failed("no recipients" if not message.to else f"not an e-mail address: {', '.join(bad)}", 1)
    data = digest = None
    if message.attachment is not None:
        try:
            data = Path(message.attachment).read_bytes()  # read once: what is hashed is what is sent
        except OSError as exc:
            return failed(f"attachment not readable: {message.attachment} ({exc.strerror or exc})", 1)
        digest = hashlib.sha256(data).hexdigest()
    sender = _sender(settings)
    email = _email(message, sender, data, clock())

    if not settings.smtp_host:
        path = _outbox_path(root.outbox, message, clock())
        try:
            atomic_write_bytes(path, email.as_bytes())
        except OSError as exc:
            return failed(f"outbox not writable: {path} ({exc.strerror or exc})", 1, digest)
        ledger.record(message, status="written_to_outbox", attempt=1, at=clock(), attachment_sha256=digest,
                      outbox=path)
        return DeliveryResult(message.key, message.kind, list(message.to), "written_to_outbox", 1, outbox=path)

    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            refused = _smtp_send(email, sender, list(message.to), settings, timeout)
        except _SendError as exc:
            if not exc.transient or attempt == attempts:
                return failed(exc.reason, attempt, digest)
            ledger.record(message, status="failed", attempt=attempt, at=clock(), error=exc.reason,
                          attachment_sha256=digest)
            wait = _backoff(backoff, attempt - 1)
            log.info("%s: %s; trying again in %.0f s", message.key, exc.reason, wait)
            sleep(wait)
            continue
        note = ("recipients refused: " + "; ".join(f"{a} ({c} {_text(m)})" for a, (c, m) in refused.items())
                if refused else None)
        ledger.record(message, status="sent", attempt=attempt, at=clock(), error=note, attachment_sha256=digest)
        return DeliveryResult(message.key, message.kind, list(message.to), "sent", attempt, note)
    raise AssertionError("unreachable")


def _smtp_send(email: EmailMessage, sender: str, to: list[str], settings: Settings, timeout: float) -> dict:
    """One SMTP session for one message; returns refused recipients (when some were accepted)."""
    mode = settings.smtp_tls
    port = settings.smtp_port or {"ssl": 465, "starttls": 587, "none": 25}[mode]
    server: smtplib.SMTP | None = None
    try:
        if mode == "ssl":
            server = smtplib.SMTP_SSL(settings.smtp_host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(settings.smtp_host, port, timeout=timeout)
        server.ehlo()
        if mode == "starttls":
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
        if settings.smtp_user:
            if mode == "none" and settings.smtp_host not in ("localhost", "127.0.0.1", "::1"):
                log.warning("logging in to %s without TLS (QI_SMTP_TLS=none): the password crosses the network "
                            "in clear", settings.smtp_host)
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            server.login(settings.smtp_user, password)
        return server.send_message(email, from_addr=sender, to_addrs=to)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        reason = "all recipients refused: " + "; ".join(f"{a} ({c} {_text(m)})" for a, (c, m) in exc.recipients.items())
        raise _SendError(reason, transient=all(400 <= c < 500 for c in codes)) from None
    except smtplib.SMTPResponseException as exc:
        raise _SendError(f"{exc.smtp_code} {_text(exc.smtp_error)}",
                         transient=400 <= exc.smtp_code < 500) from None
    except (smtplib.SMTPServerDisconnected, socket.timeout, ConnectionError) as exc:
        raise _SendError(f"{type(exc).__name__}: {exc}", transient=True) from None
    except smtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not offered: configuration
        raise _SendError(f"{type(exc).__name__}: {exc}", transient=False) from None
    except ssl.SSLError as exc:  # a certificate or protocol problem will not go away by itself
        raise _SendError(f"TLS: {exc}", transient=False) from None
    except OSError as exc:  # DNS failures, unreachable networks: worth another try
        raise _SendError(f"{type(exc).__name__}: {exc}", transient=True) from None
    finally:
        if server is not None:
            try:
                server.quit()
            except (smtplib.SMTPException, OSError):
                server.close()


def _email(message: Message, sender: str, attachment: bytes | None, now: datetime) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(message.to)
    email["Subject"] = message.subject
    email["Date"] = format_datetime(now.astimezone(UTC))
    email["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office loops
    email["X-QI-Delivery-Key"] = message.key
    email.set_content(message.body)
    if attachment is not None and message.attachment is not None:
        maintype, subtype = content_type(message.attachment).split("/", 1)
        email.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=Path(message.attachment).name)
    return email


def content_type(path: Path) -> str:
    """The MIME type an attachment is sent with."""
    if path.suffix.lower() == ".xlsx":
        return XLSX_TYPE
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _sender(settings: Settings) -> str:
    if settings.smtp_from:
        return settings.smtp_from
    if settings.smtp_user and "@" in settings.smtp_user:
        return settings.smtp_user
    return "qi-pipeline@" + ("localhost" if not settings.smtp_host else socket.getfqdn())


def _outbox_path(outbox: Path, message: Message, now: datetime) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", message.key).strip("._") or "message"
    stem = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}_{message.kind}_{safe}"
    path, n = outbox / f"{stem}.eml", 1
    while path.exists():  # a resend within the same second keeps both copies
        n += 1
        path = outbox / f"{stem}_{n}.eml"
    return path


def _backoff(delays: Sequence[float], retry: int) -> float:
    if not delays:
        return 0.0
    if retry < len(delays):
        return float(delays[retry])
    return float(delays[-1]) * 4 ** (retry - len(delays) + 1)


# ---------------------------------------------------------------- small helpers


def parse_addresses(text: str | None) -> list[str]:
    """``a@x;b@y`` (or comma-separated) as a list, trimmed, without duplicates, in order."""
    if text is None or (isinstance(text, float) and text != text):  # NaN from an empty CSV cell
        return []
    out: list[str] = []
    for part in re.split(r"[;,]", str(text)):
        part = part.strip()
        if part and part.lower() not in {a.lower() for a in out}:
            out.append(part)
    return out


def _field(row: Mapping[str, Any] | pd.Series | Any, name: str) -> Any:
    try:
        value = row[name]
    except (KeyError, TypeError, IndexError):
        value = getattr(row, name, None)
    return "" if value is None or (isinstance(value, float) and value != value) else value


def _checked_headline(headline: Mapping[str, int | str]) -> dict[str, int | str]:
    if len(headline) > 6:
        raise ValueError(f"a message carries three or four headline figures, not {len(headline)}")
    out: dict[str, int | str] = {}
    for label, value in headline.items():
        label = _checked_line(label, "headline label")
        if isinstance(value, np.integer):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"headline figure {label!r} is {type(value).__name__}, not a count or a figure")
        if isinstance(value, str) and not _FIGURE_RE.match(value.strip()):
            raise ValueError(f"headline figure {label!r} is {value!r}: a figure must be a number or {', '.join(SHORTHAND)}")
        out[label] = value.strip() if isinstance(value, str) else value
    return out


def _checked_line(text: str, what: str) -> str:
    line = _one_line(str(text))
    if _EMAIL_RE.search(line):
        raise ValueError(f"{what} {line!r} holds an e-mail address: a message body carries no personal data")
    if len(line) > 200:
        raise ValueError(f"{what} is {len(line)} characters long: keep it under 200")
    return line


def _checked_count(name: object, value: object) -> int:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"feedback count {name!r} is {value!r}: counts are whole numbers")
    return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _text(value: bytes | str) -> str:
    return _one_line(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))


def _month_name(period: str) -> str:
    return datetime(int(period[:4]), int(period[5:7]), 1).strftime("%B %Y")


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
