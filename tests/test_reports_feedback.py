"""The feedback workbook for senders (SPEC 8): what happened, where, how to fix; never personal data."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from reports.feedback import build_feedback_workbook, feedback_path
from tests import _libreoffice
from tests._libreoffice import libreoffice  # noqa: F401  (the session fixture)
from tests.test_reports_commissioner import sheet_xml, table_frame, xml_parts

RECEIVED = datetime(2025, 7, 4, 16, 20, tzinfo=UTC)
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHEETS = ["Cover", "Contents", "Notes", "Summary", "Issues", "Not read"]
PERSONAL = ["Alice", "Smith", "alice.smith@example.nhs.uk", "Dr Mentor Jones"]
PRODUCED_FILES: list[Path] = []


def _issues() -> pd.DataFrame:
    frame = pd.DataFrame([
        ("enrolment_return", "Staff list", 14, "profession", "Staff group", "profession_allowed", "error", "Nurse Practitioner",
         "'Nurse Practitioner' is not a profession we recognise.", "Use one of: Social Work, Nursing, ..."),
        ("enrolment_return", "Staff list", 9, "enrolment_date", "Start date", "date_valid", "error", "31/02/2025",
         "'31/02/2025' is not a real date.", "Enter the date as DD/MM/YYYY."),
        ("enrolment_return", "Staff list", 9, "email", "Email address", "email_format", "warning", PERSONAL[2],
         f"'{PERSONAL[2]}' does not look like an e-mail address.", "Check the e-mail address."),
        ("measure_data", "Measures", 30, "value", "Value", "percentage_range", "error", "=cmd|' /C calc'!A0",
         "The value must be between 0 and 100.", "Enter a percentage between 0 and 100."),
        ("measure_data", "Measures", 31, "value", "Value", "proportion", "warning", "0.85",
         "This looks like a proportion (0.85) rather than a percentage.", "Enter 85 for 85%."),
        ("project_register", "", 3, "title", "Project title", "title_required", "error", None,
         "The project title is blank.", "+ Add a title"),
    ], columns=["dataset", "sheet", "row", "column", "source_column", "rule", "severity", "value", "message", "fix"])
    # columns a careless caller might pass along: never written
    frame["first_name"], frame["surname"], frame["email"], frame["mentor"] = PERSONAL
    return frame


def _notes() -> pd.DataFrame:
    return pd.DataFrame([("skipped_sheet", "Instructions", "No recognisable return on this sheet: it was not read."),
                         ("skipped_sheet", "Hidden workings", "This sheet is hidden: it was not read."),
                         ("unknown_column", "Staff list", "Column 'Favourite colour' is not one we recognise: ignored.")],
                        columns=["kind", "sheet", "text"])


def _build(tmp: Path, outcome: str, *, name: str = "June return.xlsx", reason=None, issues=None, notes=None,
           org: str | None = "RPA") -> Path:
    counts = {"accepted": dict(rows_received=120, rows_accepted=120, rows_rejected=0, warnings=0),
              "accepted_with_errors": dict(rows_received=120, rows_accepted=117, rows_rejected=3, warnings=2),
              "rejected": dict(rows_received=0, rows_accepted=0, rows_rejected=0, warnings=0)}[outcome]
    path = feedback_path(tmp, "2025-06", org, name, SHA)
    build_feedback_workbook(path, file_name=name, organisation_code=org, received_at=RECEIVED, outcome=outcome,
                            reason=reason, counts=counts, issues=_issues() if issues is None else issues,
                            notes=_notes() if notes is None else notes)
    PRODUCED_FILES.append(path)
    return path


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("reports")
    empty = pd.DataFrame(columns=["dataset", "sheet", "row", "column", "source_column", "rule", "severity", "value",
                                  "message", "fix"])
    return {
        "with_errors": _build(tmp, "accepted_with_errors"),
        "clean": _build(tmp, "accepted", name="clean.csv", issues=empty, notes=pd.DataFrame(columns=["kind", "sheet", "text"])),
        "rejected": _build(tmp, "rejected", name="=evil+name.xlsx", org=None, issues=empty,
                           reason="The file is encrypted: save it without a password and send it again."),
    }


def test_feedback_path_convention(tmp_path):
    path = feedback_path(tmp_path / "reports", "2025-06", "RPA", "returns/June return (final).xlsx", SHA)
    assert path == tmp_path / "reports" / "2025-06" / "feedback" / "RPA_June_return_final_9f86d081_feedback.xlsx"
    odd = feedback_path(tmp_path, "2025-06", None, "../../=evil name.CSV", SHA)
    assert odd.parent == tmp_path / "2025-06" / "feedback"
    assert odd.name == "UNKNOWN_evil_name_9f86d081_feedback.xlsx"


@pytest.mark.parametrize("kind", ["with_errors", "clean", "rejected"])
def test_feedback_follows_the_house_style(books, kind):
    book = openpyxl.load_workbook(books[kind])
    assert book.sheetnames == SHEETS
    for ws in book.worksheets:
        assert ws.sheet_state == "visible" and not ws.merged_cells.ranges
        assert isinstance(ws["A1"].value, str) and ws["A1"].font.b
        if ws.title == "Cover":
            assert not ws.tables
            continue
        (table,) = ws.tables.values()
        assert table.ref.startswith("A")
        frame = table_frame(ws)
        assert len(frame) >= 1 and not frame.isna().all(axis=1).any()
    assert book.properties.language == "en-GB"
    assert {c.hyperlink.location for c in book["Contents"]["A"] if c.hyperlink} == {f"'{s}'!A1" for s in SHEETS[2:]}


def test_feedback_says_what_happened_for_a_non_technical_reader(books):
    cover = lambda path: " ".join(str(c.value) for c in openpyxl.load_workbook(path)["Cover"]["A"] if c.value)  # noqa: E731
    assert "3 of its 120 rows were not" in cover(books["with_errors"])
    assert "117 rows were loaded. 2 warnings are listed" in cover(books["with_errors"])
    assert "Received: 4 July 2025 16:20 UTC" in cover(books["with_errors"])
    assert "loaded in full (120 rows)" in cover(books["clean"]) and "nothing to fix" in cover(books["clean"])
    assert "could not be used" in cover(books["rejected"]) and "encrypted" in cover(books["rejected"])
    summary = table_frame(openpyxl.load_workbook(books["rejected"])["Summary"]).set_index("Item")["Value"]
    assert summary["Outcome"] == "Rejected: nothing loaded"
    assert summary["Reason the file was rejected"].startswith("The file is encrypted")


def test_each_issue_has_sheet_row_column_value_rule_and_fix(books):
    issues = table_frame(openpyxl.load_workbook(books["with_errors"])["Issues"])
    assert list(issues.columns) == ["Sheet", "Row", "Column (as you wrote it)", "Value", "Problem", "Severity",
                                    "How to fix", "Return", "Rule"]
    assert issues[["Sheet", "Row"]].values.tolist() == [
        ["(CSV file: no sheets)", 3], ["Measures", 30], ["Measures", 31], ["Staff list", 9], ["Staff list", 9],
        ["Staff list", 14]]
    row = issues[issues["Row"] == 14].iloc[0]
    assert row["Column (as you wrote it)"] == "Staff group"  # the sender's own header
    assert row["Value"] == "Nurse Practitioner"  # quoted back: the sender holds it
    assert row["Severity"] == "Error: row not loaded" and row["Rule"] == "profession_allowed"
    assert row["How to fix"].startswith("Use one of")
    assert issues[issues["Row"] == 3].iloc[0]["Value"] == "(blank)"
    assert set(issues["Return"]) == {"Enrolment return", "Measure data", "Project register"}
    clean = table_frame(openpyxl.load_workbook(books["clean"])["Issues"])
    assert clean["Problem"].tolist() == ["No problems found"]
    not_read = table_frame(openpyxl.load_workbook(books["with_errors"])["Not read"])
    assert not_read["What"].tolist() == ["Sheet not read", "Sheet not read", "Column ignored"]


def test_names_emails_and_mentors_never_appear(books):
    text = "\n".join(xml_parts(books["with_errors"]).values())
    for value in PERSONAL:
        assert value not in text, value
    headers = {h.lower() for h in re.findall(r'<tableColumn id="\d+" name="([^"]+)"', text)}
    assert headers and not headers & {"first_name", "surname", "email", "mentor", "first name", "e-mail"}
    issues = table_frame(openpyxl.load_workbook(books["with_errors"])["Issues"])
    email = issues[issues["Column (as you wrote it)"] == "Email address"].iloc[0]
    assert email["Value"] == "[not shown: personal data]" and "[not shown]" in email["Problem"]


def test_sender_text_is_never_a_formula(books):
    for path in books.values():
        for sheet, xml in sheet_xml(path).items():
            assert "<f>" not in xml and "<f " not in xml, sheet
    issues = table_frame(openpyxl.load_workbook(books["with_errors"])["Issues"])
    assert "=cmd|' /C calc'!A0" in issues["Value"].tolist()
    assert "+ Add a title" in issues["How to fix"].tolist()
    styles = xml_parts(books["with_errors"])["xl/styles.xml"]
    assert 'quotePrefix="1"' in styles
    title = openpyxl.load_workbook(books["rejected"])["Summary"]["A1"].value
    assert title == "Summary of your file =evil+name.xlsx"


def test_feedback_is_deterministic(tmp_path, books):
    again = _build(tmp_path, "accepted_with_errors")
    assert again.read_bytes() == books["with_errors"].read_bytes()


def test_feedback_workbooks_open_in_libreoffice(tmp_path, books, libreoffice):  # noqa: F811
    flat = _libreoffice.flat_copies(PRODUCED_FILES, tmp_path / "in")
    assert len(flat) >= 4
    for source, result in _libreoffice.convert(flat, tmp_path / "out", executable=libreoffice).items():
        assert _libreoffice.sheet_names(result) == SHEETS, source.name


def test_libreoffice_is_installed_when_missing(monkeypatch):
    calls = []
    found = iter([None, None, "/usr/bin/soffice"])  # soffice, libreoffice, then soffice after the install
    monkeypatch.setattr(_libreoffice.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else next(found))
    monkeypatch.setattr(_libreoffice.os, "geteuid", lambda: 0)
    monkeypatch.setattr(_libreoffice.subprocess, "run",
                        lambda command, **kw: calls.append(command) or _libreoffice.subprocess.CompletedProcess(command, 0))
    assert _libreoffice._find_or_install.__wrapped__() == ("/usr/bin/soffice", "installed")
    assert calls == _libreoffice.install_command()
    assert calls[1][-1] == "libreoffice-calc"


def test_without_libreoffice_the_check_fails_loudly(monkeypatch):
    monkeypatch.setattr(_libreoffice, "_find_or_install", lambda: (None, "no apt-get here"))
    monkeypatch.delenv("QI_SKIP_LIBREOFFICE", raising=False)
    with pytest.raises(pytest.fail.Exception, match="LibreOffice is needed.*no apt-get here"):
        _libreoffice.soffice()
    monkeypatch.setenv("QI_SKIP_LIBREOFFICE", "1")
    with pytest.raises(pytest.skip.Exception, match="SKIPPED ON PURPOSE"):
        _libreoffice.soffice()


def test_an_email_in_a_sender_header_never_goes_back_in_the_feedback(tmp_path):
    import zipfile
    from datetime import UTC, datetime

    from reports.feedback import build_feedback_workbook

    notes = pd.DataFrame({"kind": ["unknown_column"], "sheet": ["Staff"],
                          "text": ["enrolment_return: Completed by jane.doe@example.nhs.uk"]})
    path = build_feedback_workbook(
        tmp_path / "fb.xlsx", file_name="RPA return.xlsx", organisation_code="RPA",
        received_at=datetime(2026, 11, 3, tzinfo=UTC), outcome="accepted", reason=None,
        counts={"rows_received": 1, "rows_accepted": 1, "rows_rejected": 0, "warnings": 0},
        issues=pd.DataFrame(columns=["dataset", "sheet", "row", "column", "source_column", "rule", "severity",
                                     "value", "message", "fix"]),
        notes=notes)
    with zipfile.ZipFile(path) as book:
        text = " ".join(book.read(n).decode("utf-8", "replace") for n in book.namelist())
    assert "jane.doe" not in text
    assert "Completed by [e-mail address removed]" in text
