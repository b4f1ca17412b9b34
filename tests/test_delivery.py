"""Delivery by e-mail: a real SMTP server on loopback (aiosmtpd) checks what arrives."""

import email
import hashlib
import socket
from datetime import UTC, datetime, timedelta
from email import policy

import pandas as pd
import pytest
import xlsxwriter
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from transforms.delivery import (
    XLSX_TYPE,
    DeliveryLedger,
    Incident,
    alert_message,
    changes_since,
    check_alerts,
    commissioner_message,
    deliver,
    feedback_message,
    headline_from_workbook,
)
from transforms.reference import load_reference
from transforms.settings import DataRoot, Settings

PERIOD = "2025-03"
SHA = "ab" * 32
# What a participant row might carry: none of it may reach a message.
PARTICIPANT = {"first_name": "Aoife", "surname": "Okonkwo-Price", "email": "aoife.op@ashby.example.org",
               "staff_id": "ASH00417", "mentor": "Dr Ravindra Llewellyn"}
HEADLINE = {"Participants (headcount)": 182, "Enrolled or active": 140, "Completed": "[c]", "Improvement projects": 37}


# ---------------------------------------------------------------- fixtures


class Recorder:
    """Stores every envelope; can refuse the first DATA (451) or every DATA (550)."""

    def __init__(self, *, refuse_first: bool = False, refuse_all: bool = False):
        self.refuse_first, self.refuse_all = refuse_first, refuse_all
        self.data_calls = 0
        self.received = []  # (mail_from, rcpt_tos, parsed message, authenticated login)

    async def handle_DATA(self, server, session, envelope):
        self.data_calls += 1
        if self.refuse_all:
            return "550 5.1.1 mailbox unavailable"
        if self.refuse_first and self.data_calls == 1:
            return "451 4.3.0 try again"
        login = session.auth_data.login.decode() if session.authenticated else None
        parsed = email.message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed, login))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    started = []

    def start(handler, **kwargs) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), **kwargs)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def _settings(port: int | None, **kwargs) -> Settings:
    values = {"smtp_host": "127.0.0.1", "smtp_port": port} if port else {"smtp_host": None}
    values |= {"smtp_tls": "none", "smtp_from": "qi-reports@northlakes.example.org", "smtp_user": None,
               "smtp_password": None, "alert_to": None}
    return Settings(**(values | kwargs))


class Recorded:
    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)


@pytest.fixture
def root(tmp_path):
    return DataRoot(tmp_path / "data")


@pytest.fixture
def ledger(root):
    return DeliveryLedger.for_root(root)


@pytest.fixture
def reference(tmp_path):
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "organisations.csv").write_text(
        "code,name,type,contacts\n"
        "RNL,North Lakes Health and Care NHS Foundation Trust,lead trust,qi-data@northlakes.example.org\n"
        "RPA,Ashby Community Healthcare NHS Trust,partner trust,data.returns@ashby.example.org;qi@ashby.example.org\n"
        "RPB,Brindle Mental Health NHS Trust,partner trust,\n"
    )
    (folder / "commissioners.csv").write_text(
        "code,name,scope,profession_filter,recipients\n"
        "NLICB,North Lakes Integrated Care Board,ALL,,qi.commissioning@icb.example.org;analytics@icb.example.org\n"
        "ACPP,Ashby and Castlegate Place Partnership,RPA,,place.partnership@ashby.example.org\n"
    )
    (folder / "cohorts.csv").write_text("code,programme_year,start_date,end_date\nC24A,2024/25,2024-04-01,2024-12-31\n")
    return load_reference(folder)


def _workbook(path, label: str, headline: dict | None = None):
    """A small real .xlsx; with ``headline``, a Summary sheet holding the ``headline`` table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Cover")
    sheet.write_string(0, 0, f"QI programme report for {label}")
    if headline:
        summary = book.add_worksheet("Summary")
        rows = [[k, v] for k, v in headline.items()]
        summary.add_table(2, 0, 2 + len(rows), 1, {"name": "headline", "data": rows,
                                                   "columns": [{"header": "Measure"}, {"header": "Value"}]})
    book.close()
    return path


def _commissioner(reference, code):
    return reference.commissioners.set_index("code", drop=False).loc[code]


def _org(reference, code):
    return reference.organisations.set_index("code", drop=False).loc[code]


def _report_messages(root, reference):
    messages = {}
    for code in ("NLICB", "ACPP"):
        path = _workbook(root.reports / PERIOD / f"{code}_qi_programme_{PERIOD}.xlsx", code)
        messages[code] = commissioner_message(_commissioner(reference, code), PERIOD, path, HEADLINE,
                                              ["Participants (headcount): 182 (was 175, +7)"])
    return messages


def _attachment(parsed):
    [part] = list(parsed.iter_attachments())
    return part


# ---------------------------------------------------------------- commissioner reports


def test_each_commissioner_gets_only_their_own_workbook_once(smtp, root, ledger, reference):
    server = Recorder()
    controller = smtp(server)
    messages = _report_messages(root, reference)

    report = deliver(messages.values(), settings=_settings(controller.port), root=root, ledger=ledger)

    assert [r.key for r in report.sent] == [f"report:{PERIOD}:NLICB", f"report:{PERIOD}:ACPP"] and report.ok
    by_subject = {parsed["Subject"]: (rcpts, parsed, sender) for sender, rcpts, parsed, _ in server.received}
    assert len(by_subject) == 2
    for code, expected_to in (("NLICB", ["qi.commissioning@icb.example.org", "analytics@icb.example.org"]),
                              ("ACPP", ["place.partnership@ashby.example.org"])):
        name = _commissioner(reference, code)["name"]
        rcpts, parsed, sender = by_subject[f"QI programme report {PERIOD}: {name}"]
        assert rcpts == expected_to
        assert sender == "qi-reports@northlakes.example.org"
        body = parsed.get_body(("plain",)).get_content()
        assert "March 2025 (2025-03)" in body and name in body
        assert "Participants (headcount): 182" in body and "Completed: [c]" in body
        assert "Participants (headcount): 182 (was 175, +7)" in body and "[c]: a count of 1 to 4 people" in body
        part = _attachment(parsed)
        assert part.get_content_type() == XLSX_TYPE
        assert part.get_filename() == f"{code}_qi_programme_{PERIOD}.xlsx"
        assert part.get_content() == messages[code].attachment.read_bytes()
    # Neither commissioner's recipients see the other's message.
    nlicb_rcpts = by_subject[f"QI programme report {PERIOD}: North Lakes Integrated Care Board"][0]
    acpp_rcpts = by_subject[f"QI programme report {PERIOD}: Ashby and Castlegate Place Partnership"][0]
    assert not set(nlicb_rcpts) & set(acpp_rcpts)

    history = ledger.history()
    assert list(history["status"]) == ["sent", "sent"]
    assert list(history["attachment_sha256"]) == [
        hashlib.sha256(messages[c].attachment.read_bytes()).hexdigest() for c in ("NLICB", "ACPP")]
    assert history.loc[0, "to"] == "qi.commissioning@icb.example.org; analytics@icb.example.org"
    assert history.loc[0, "attachment"] == f"reports/{PERIOD}/NLICB_qi_programme_{PERIOD}.xlsx"
    assert ledger.already_delivered(f"report:{PERIOD}:ACPP")


def test_a_second_run_sends_nothing_and_resend_sends_again(smtp, root, ledger, reference):
    server = Recorder()
    settings = _settings(smtp(server).port)
    messages = list(_report_messages(root, reference).values())
    deliver(messages, settings=settings, root=root, ledger=ledger)

    again = deliver(messages, settings=settings, root=root, ledger=ledger)
    assert len(server.received) == 2 and not again.sent and len(again.skipped) == 2
    assert again.summary()["already_delivered"] == 2

    acpp = [m for m in messages if m.key.endswith(":ACPP")]
    resent = deliver(acpp, settings=settings, root=root, ledger=ledger, resend=True)
    assert [r.key for r in resent.sent] == [f"report:{PERIOD}:ACPP"]
    assert len(server.received) == 3 and server.received[-1][1] == ["place.partnership@ashby.example.org"]
    assert list(ledger.history()["status"]) == ["sent"] * 3


def test_a_refused_first_attempt_is_retried_after_a_wait(smtp, root, ledger, reference):
    server = Recorder(refuse_first=True)
    waits = Recorded()
    message = _report_messages(root, reference)["ACPP"]
    report = deliver([message], settings=_settings(smtp(server).port), root=root, ledger=ledger, sleep=waits)

    assert [(r.key, r.attempts) for r in report.sent] == [(message.key, 2)]
    assert len(server.received) == 1 and server.data_calls == 2
    assert _attachment(server.received[0][2]).get_content() == message.attachment.read_bytes()
    history = ledger.history()
    assert list(zip(history["attempt"], history["status"], strict=True)) == [(1, "failed"), (2, "sent")]
    assert history.loc[0, "error"].startswith("451")
    assert waits.waits == [1]


def test_a_permanent_refusal_is_not_retried_and_is_reported(smtp, root, ledger, reference):
    server = Recorder(refuse_all=True)
    waits = Recorded()
    message = _report_messages(root, reference)["ACPP"]
    before = message.attachment.read_bytes()
    report = deliver([message], settings=_settings(smtp(server).port), root=root, ledger=ledger, sleep=waits)

    assert not report.ok and [(r.key, r.attempts) for r in report.failed] == [(message.key, 1)]
    assert report.failed[0].error.startswith("550") and "mailbox unavailable" in report.failed[0].error
    assert report.summary()["failed"][0]["to"] == ["place.partnership@ashby.example.org"]
    assert server.data_calls == 1 and waits.waits == []
    assert list(ledger.history()["status"]) == ["failed"]
    assert message.attachment.read_bytes() == before
    assert not ledger.already_delivered(message.key)


def test_an_unreachable_server_is_retried_with_back_off_and_the_next_run_sends_what_is_owed(smtp, root, ledger,
                                                                                           reference):
    waits = Recorded()
    messages = _report_messages(root, reference)
    before = {code: m.attachment.read_bytes() for code, m in messages.items()}
    down = _settings(_free_port())  # nothing listens there: connection refused
    report = deliver(messages.values(), settings=down, root=root, ledger=ledger, sleep=waits)

    assert len(report.failed) == 2 and all(r.attempts == 3 for r in report.failed)
    assert "ConnectionRefusedError" in report.failed[0].error
    assert waits.waits == [1, 4, 1, 4]
    assert len(ledger.history()) == 6
    assert any(line.startswith("FAILED report:2025-03:NLICB") for line in report.lines())
    latest = ledger.latest()
    assert list(latest["status"]) == ["failed", "failed"] and latest["delivered_at"].isna().all()

    owed = ledger.owed()
    assert sorted(m.key for m in owed) == sorted(m.key for m in messages.values())
    assert {m.key: (m.to, m.subject, m.body, m.attachment) for m in owed} == {
        m.key: (m.to, m.subject, m.body, m.attachment) for m in messages.values()}
    server = Recorder()
    later = deliver(owed, settings=_settings(smtp(server).port), root=root, ledger=ledger, sleep=waits)
    assert len(later.sent) == 2 and ledger.owed() == []
    for _, rcpts, parsed, _ in server.received:
        code = "ACPP" if rcpts == ["place.partnership@ashby.example.org"] else "NLICB"
        assert _attachment(parsed).get_content() == before[code] == messages[code].attachment.read_bytes()
    assert ledger.latest()["delivered_at"].notna().all()


def test_login_over_plain_smtp(smtp, root, ledger, reference):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"qi-bot", b"s3cret")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    server = Recorder()
    controller = smtp(server, authenticator=authenticator, auth_require_tls=False)
    settings = _settings(controller.port, smtp_user="qi-bot", smtp_password="s3cret")
    report = deliver([_report_messages(root, reference)["ACPP"]], settings=settings, root=root, ledger=ledger)
    assert len(report.sent) == 1 and server.received[0][3] == "qi-bot"

    wrong = _settings(controller.port, smtp_user="qi-bot", smtp_password="wrong")
    report = deliver([_report_messages(root, reference)["NLICB"]], settings=wrong, root=root, ledger=ledger,
                     sleep=Recorded())
    assert report.failed[0].attempts == 1 and report.failed[0].error.startswith("535")
    assert "wrong" not in ledger.path.read_text()


def test_starttls_against_a_server_without_it_is_a_configuration_error_not_retried(smtp, root, ledger, reference):
    waits = Recorded()
    settings = _settings(smtp(Recorder()).port, smtp_tls="starttls")
    report = deliver([_report_messages(root, reference)["ACPP"]], settings=settings, root=root, ledger=ledger,
                     sleep=waits)
    assert report.failed[0].attempts == 1 and "STARTTLS" in report.failed[0].error and waits.waits == []


def test_without_an_smtp_host_messages_are_written_to_the_outbox(root, ledger, reference):
    messages = _report_messages(root, reference)
    report = deliver(messages.values(), settings=_settings(None), root=root, ledger=ledger,
                     clock=lambda: datetime(2025, 4, 12, 2, 5, 9, tzinfo=UTC))

    assert [r.status for r in report.results] == ["written_to_outbox"] * 2 and report.ok
    files = sorted(p.name for p in root.outbox.iterdir())
    assert files == ["20250412T020509Z_commissioner_report_report_2025-03_ACPP.eml",
                     "20250412T020509Z_commissioner_report_report_2025-03_NLICB.eml"]
    parsed = email.message_from_bytes((root.outbox / files[0]).read_bytes(), policy=policy.default)
    assert parsed["To"] == "place.partnership@ashby.example.org"
    assert parsed["Subject"] == f"QI programme report {PERIOD}: Ashby and Castlegate Place Partnership"
    assert parsed["X-QI-Delivery-Key"] == f"report:{PERIOD}:ACPP"
    assert "Participants (headcount): 182" in parsed.get_body(("plain",)).get_content()
    part = _attachment(parsed)
    assert part.get_content_type() == XLSX_TYPE
    assert part.get_content() == messages["ACPP"].attachment.read_bytes()
    assert list(ledger.history()["outbox"]) == [f"outbox/{n}" for n in reversed(files)]

    again = deliver(messages.values(), settings=_settings(None), root=root, ledger=ledger)
    assert not again.written and len(list(root.outbox.iterdir())) == 2


# ---------------------------------------------------------------- feedback to senders


def test_feedback_goes_to_its_senders_contacts_only_when_something_was_wrong(reference, root):
    workbook = _workbook(root.reports / PERIOD / "feedback" / "feedback.xlsx", "feedback")
    rpa, rpb = _org(reference, "RPA"), _org(reference, "RPB")
    clean = {"rows_read": 40, "rows_rejected": 0, "errors": 0, "warnings": 2}

    assert feedback_message(rpa, "RPA/enrolment.xlsx", SHA, "accepted", clean, workbook) is None
    assert feedback_message(rpb, "RPB/enrolment.xlsx", SHA, "rejected", {"rows_read": 0}, workbook) is None  # no contacts
    always = feedback_message(rpa, "RPA/enrolment.xlsx", SHA, "accepted", clean, workbook, always=True)
    assert always is not None and "Nothing needs doing" in always.body

    message = feedback_message(rpa, "RPA/March/enrolment.xlsx", SHA, "accepted_with_errors",
                               {"rows_read": 40, "rows_rejected": 3, "errors": 4, "warnings": 2}, workbook,
                               period=PERIOD)
    assert message.key == f"feedback:{SHA}" and message.kind == "feedback"
    assert message.to == ["data.returns@ashby.example.org", "qi@ashby.example.org"]
    assert message.subject == "QI programme: feedback on enrolment.xlsx (accepted, with rows rejected)"
    assert "Rows rejected: 3" in message.body and "Errors: 4" in message.body and "RPA/March" not in message.body
    with pytest.raises(ValueError, match="whole numbers"):
        feedback_message(rpa, "x.xlsx", SHA, "rejected", {"rows_read": PARTICIPANT["surname"]}, workbook)


def test_each_sender_receives_only_their_own_feedback(smtp, root, ledger, reference):
    server = Recorder()
    messages = []
    for code, sha in (("RNL", "01" * 32), ("RPA", "02" * 32)):
        path = _workbook(root.reports / PERIOD / "feedback" / f"{code}_{sha[:8]}_feedback.xlsx", code)
        messages.append(feedback_message(_org(reference, code), f"{code}/return.xlsx", sha, "rejected",
                                         {"rows_read": 0}, path))
    deliver(messages, settings=_settings(smtp(server).port), root=root, ledger=ledger)

    got = {tuple(rcpts): _attachment(parsed).get_content() for _, rcpts, parsed, _ in server.received}
    assert got == {("qi-data@northlakes.example.org",): messages[0].attachment.read_bytes(),
                   ("data.returns@ashby.example.org", "qi@ashby.example.org"): messages[1].attachment.read_bytes()}


# ---------------------------------------------------------------- no personal data


def test_a_body_never_carries_participant_data(root, reference):
    path = _workbook(root.reports / PERIOD / "ACPP.xlsx", "ACPP")
    acpp = _commissioner(reference, "ACPP")
    for bad in ({"Lead participant": PARTICIPANT["first_name"]}, {"Participants": PARTICIPANT["staff_id"]},
                {"Participants": 3.5}, {"Participants": PARTICIPANT["email"]}):
        with pytest.raises(ValueError):
            commissioner_message(acpp, PERIOD, path, bad, [])
    with pytest.raises(ValueError, match="e-mail address"):
        commissioner_message(acpp, PERIOD, path, HEADLINE, [f"New mentor {PARTICIPANT['mentor']} <{PARTICIPANT['email']}>"])

    message = commissioner_message(acpp, PERIOD, path, HEADLINE, ["Completed: [c] (was 6)"])
    feedback = feedback_message(_org(reference, "RPA"), "RPA/enrolment.xlsx", SHA, "accepted_with_errors",
                                {"rows_read": 40, "rows_rejected": 1}, path)
    for text in (message.body, message.subject, feedback.body, feedback.subject):
        for value in PARTICIPANT.values():
            assert value not in text


# ---------------------------------------------------------------- alerts


NOW = datetime(2025, 4, 12, 2, 30, tzinfo=UTC)


def _run(run_id, hours_ago, outcome, **extra):
    return {"run_id": run_id, "finished_at": (NOW - timedelta(hours=hours_ago)).isoformat(), "outcome": outcome, **extra}


@pytest.mark.parametrize(("runs", "expected"), [
    ([], []),
    ([_run("r1", 24, "succeeded"), _run("r2", 1, "needs_attention")], []),
    ([_run("r1", 24, "succeeded"), _run("r2", 1, "failed")], ["r2"]),
    ([_run("r1", 40, "succeeded")], ["stale:" + (NOW - timedelta(hours=40)).isoformat()]),
    ([_run("r1", 60, "succeeded"), _run("r2", 30, "failed"), _run("r3", 2, "failed")],
     ["r3", "stale:" + (NOW - timedelta(hours=60)).isoformat()]),
    ([_run("r1", 40, "failed")], ["r1", "stale:never"]),
    ([_run("r1", 10, "failed"), _run("r2", 2, "succeeded")], []),
])
def test_check_alerts(runs, expected):
    assert [i.id for i in check_alerts(runs, NOW)] == expected


def test_a_failing_run_sends_one_alert(smtp, root, ledger):
    server = Recorder()
    settings = _settings(smtp(server).port, alert_to="ops@northlakes.example.org")
    runs = [_run("r1", 24, "succeeded"), _run("r2", 0, "failed", error="OSError: disk full")]

    for _ in range(2):  # the failing run, then `status` an hour later: still one alert
        alerts = [alert_message(settings.alert_to, incident) for incident in check_alerts(runs, NOW)]
        deliver(alerts, settings=settings, root=root, ledger=ledger)

    [(_, rcpts, parsed, _)] = server.received
    assert rcpts == ["ops@northlakes.example.org"]
    assert parsed["Subject"] == "[QI pipeline] ALERT: nightly run failed"
    body = parsed.get_body(("plain",)).get_content()
    assert "r2" in body and "OSError: disk full" in body
    assert list(ledger.history()["key"]) == ["alert:r2"]

    assert alert_message(None, Incident("r3", "failed_run", "x")) is None


# ---------------------------------------------------------------- headline and ledger details


def test_headline_and_changes_come_from_the_published_workbooks(tmp_path):
    current = _workbook(tmp_path / "now.xlsx", "now", {"Participants (headcount)": 182, "Enrolled or active": 140,
                                                       "Completed": "[c]", "Withdrawn": 6, "Improvement projects": 37})
    previous = _workbook(tmp_path / "before.xlsx", "before", {"Participants (headcount)": 175, "Enrolled or active": 140,
                                                              "Completed": 6, "Improvement projects": 37})
    figures = headline_from_workbook(current, measures=list(HEADLINE))
    assert figures == HEADLINE
    assert list(headline_from_workbook(current)) == ["Participants (headcount)", "Enrolled or active", "Completed",
                                                      "Withdrawn"]
    assert changes_since(headline_from_workbook(previous, measures=list(HEADLINE)), figures, PERIOD) == [
        "Participants (headcount): 182 (was 175, +7)", "Completed: [c] (was 6)"]
    assert changes_since(figures, figures, PERIOD) == ["No change in the headline figures since 2025-02."]
    assert changes_since(None, figures, PERIOD) == ["No 2025-02 report to compare with."]
    assert headline_from_workbook(_workbook(tmp_path / "plain.xlsx", "plain")) == {}


def test_bad_recipients_or_a_missing_workbook_fail_the_message_not_the_run(root, ledger, reference, tmp_path):
    acpp = _commissioner(reference, "ACPP").copy()
    path = _workbook(root.reports / PERIOD / "ACPP.xlsx", "ACPP")
    acpp["recipients"] = "place.partnership at ashby"
    bad_address = commissioner_message(acpp, PERIOD, path, HEADLINE, [])
    acpp["recipients"] = ""
    nobody = commissioner_message(acpp, "2025-02", path, HEADLINE, [])
    missing = commissioner_message(_commissioner(reference, "NLICB"), PERIOD, tmp_path / "gone.xlsx", HEADLINE, [])

    report = deliver([bad_address, nobody, missing], settings=_settings(None), root=root, ledger=ledger)
    assert [r.error.split(":")[0] for r in report.failed] == ["not an e-mail address", "no recipients",
                                                              "attachment not readable"]
    assert not root.outbox.exists() or not list(root.outbox.iterdir())


def test_the_ledger_survives_a_torn_last_line(root, ledger, reference):
    message = _report_messages(root, reference)["ACPP"]
    ledger.path.parent.mkdir(parents=True)
    ledger.path.write_text('{"key": "report:2025-02:ACPP", "status": "se')  # a killed process's half line
    deliver([message], settings=_settings(None), root=root, ledger=ledger)
    assert ledger.already_delivered(message.key) and not ledger.already_delivered("report:2025-02:ACPP")
    assert isinstance(ledger.history(), pd.DataFrame) and len(ledger.history()) == 1
    assert DeliveryLedger.for_root(DataRoot(root.root / "elsewhere")).history().empty
