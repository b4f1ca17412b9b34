"""The nightly flow delivers over real SMTP (aiosmtpd on loopback): finals once, feedback, one alert per failure."""

import email
import os
import shutil
import socket
import time

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import new_root
from transforms.demo import generate


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"

    def of_kind(self, prefix: str) -> list[tuple[list[str], email.message.Message]]:
        return [(to, m) for to, m in self.messages if m["Subject"].startswith(prefix)]


@pytest.fixture
def smtp(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    for name, value in {"QI_SMTP_HOST": "127.0.0.1", "QI_SMTP_PORT": str(port), "QI_SMTP_TLS": "none",
                        "QI_SMTP_FROM": "qi-pipeline@example.org", "QI_ALERT_TO": "oncall@example.org"}.items():
        monkeypatch.setenv(name, value)
    yield inbox
    controller.stop()


def test_nightly_sends_finals_once_and_alerts_once_when_a_run_fails(tmp_path, smtp, prefect_harness):
    from flows.nightly import nightly

    root = new_root(tmp_path / "root")
    generate(root / "landing", root / "reference", months=4, end_period="2026-10")
    nightly(data_dir=str(root), demo=True)

    reports = [(to, m) for to, m in smtp.messages if "_qi_programme_" in str([p.get_filename() for p in m.walk()])]
    assert len(reports) == 3
    recipients = {"RSWP": ["sw.programme@region.example.org"],
                  "NLICB": ["qi.commissioning@icb.example.org", "analytics@icb.example.org"],
                  "ACPP": ["place.partnership@ashby.example.org"]}
    for to, message in reports:
        [attachment] = [p for p in message.walk() if p.get_filename()]
        code = attachment.get_filename().split("_qi_programme_")[0]
        assert sorted(to) == sorted(recipients[code])  # nobody sees another commissioner's workbook
        workbook = root / "reports" / "2026-10" / attachment.get_filename()
        assert attachment.get_payload(decode=True) == workbook.read_bytes()
        assert attachment.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    feedback = [m for _, m in smtp.messages if m not in [r for _, r in reports]]
    assert feedback and all("feedback" in p.get_filename() for m in feedback for p in m.walk() if p.get_filename())
    count = len(smtp.messages)

    nightly(data_dir=str(root), demo=True)  # nothing new: nothing sent again
    assert len(smtp.messages) == count

    # A failing run (publishing is impossible) sends exactly one alert.
    extra = root / "landing" / "RPA" / "late.csv"
    source = next((root / "landing" / "RPB").rglob("qi_measures_*.csv"))
    extra.write_bytes(source.read_bytes() + b"\n")  # new bytes, so a new file
    os.utime(extra, (time.time() - 3600, time.time() - 3600))
    publishes = root / "marts" / "publishes"
    shutil.move(publishes, root / "publishes.bak")
    publishes.write_text("in the way")
    with pytest.raises(OSError):
        nightly(data_dir=str(root), demo=True)
    alerts = [(to, m) for to, m in smtp.messages[count:]]
    assert len(alerts) == 1
    assert alerts[0][0] == ["oncall@example.org"]
    assert "FileExistsError" in alerts[0][1].get_payload() or "failed" in alerts[0][1]["Subject"].lower()
