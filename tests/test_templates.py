"""Submission templates and the data dictionary: read back with openpyxl, and a filled-in
template goes through staging and the suites with no issue (right first time)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from expectations.runner import SUITES, validate
from reports.templates import NOT_ASKED, TEMPLATE_FILES, example_row, template_columns, write_templates
from transforms import checks, datasets
from transforms.load import key_participants
from transforms.reference import load_reference, parse_reference
from transforms.staging import SKIP_NO_DATASET, stage_file

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
HEADER_ROW = 4  # Excel row of the header


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


@pytest.fixture(scope="module")
def written(tmp_path_factory, reference):
    out = tmp_path_factory.mktemp("templates")
    return out, write_templates(out, reference)


def load(path: Path) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # openpyxl warns about anything it does not understand
        return openpyxl.load_workbook(path)


def list_values(book: openpyxl.Workbook, name: str) -> list[str]:
    """The cells a defined name (a drop-down's source) covers."""
    defined = book.defined_names[name]
    (sheet, ref), = defined.destinations
    return [c.value for row in book[sheet][ref.replace("$", "")] for c in row]


def test_the_files(written):
    out, paths = written
    assert [p.name for p in paths] == [*TEMPLATE_FILES.values(), "data_dictionary.xlsx", "data_dictionary.csv"]
    assert all(p.is_file() and p.parent == out for p in paths)


@pytest.mark.parametrize("dataset", datasets.DATASETS)
def test_canonical_header_row_as_a_real_table(written, dataset):
    out, _ = written
    book = load(out / TEMPLATE_FILES[dataset])
    spec = datasets.BY_NAME[dataset]
    sheet = book.worksheets[0]
    assert sheet.title == spec.title and book.active.title == spec.title
    header = [c.value for c in sheet[HEADER_ROW]]
    assert header == [c.name for c in template_columns(spec)]
    assert set(spec.required) <= set(header) and not set(NOT_ASKED) & set(header)
    (table,) = sheet.tables.values()
    assert table.ref.startswith(f"A{HEADER_ROW}:") and table.headerRowCount in (None, 1)
    assert [c.name for c in table.tableColumns] == header
    assert sheet["A1"].value.startswith(spec.title)
    assert book.properties.title and book.properties.language == "en-GB"
    assert [s.sheet_state for s in book.worksheets] == ["visible"] * len(book.worksheets)


@pytest.mark.parametrize("dataset", datasets.DATASETS)
def test_drop_downs_and_checks_on_every_column(written, dataset, reference):
    out, _ = written
    book = load(out / TEMPLATE_FILES[dataset])
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[HEADER_ROW]]
    by_column = {}
    for dv in sheet.data_validations.dataValidation:
        for cell_range in dv.sqref.ranges:
            assert cell_range.min_row == HEADER_ROW + 1 and cell_range.max_row >= HEADER_ROW + 1000
            by_column[header[cell_range.min_col - 1]] = dv
    assert set(by_column) == set(header)  # every column has at least a prompt
    for name in header:
        column = datasets.BY_NAME[dataset].column(name)
        dv = by_column[name]
        assert dv.promptTitle == name and dv.prompt.startswith(("Required.", "Optional.", "Required in some rows."))
        category = datasets.CATEGORY_FIELD.get((dataset, name))
        if category or name in ("organisation_code", "cohort_code"):
            assert dv.type == "list"
            expected = (list(datasets.CATEGORIES[category]) if category else
                        sorted(reference.org_codes) if name == "organisation_code" else
                        list(reference.cohorts.sort_values("start_date")["code"]))
            assert list_values(book, dv.formula1) == expected
            assert dv.errorStyle in (None, "stop") if category else dv.errorStyle == "warning"
        elif column.kind == "date":
            assert dv.type == "date"
        elif column.kind == "number":
            assert dv.type == "decimal"
        elif name == "staff_id":
            assert (dv.type, dv.formula1, dv.formula2) == ("textLength", "3", "20")


@pytest.mark.parametrize("dataset", datasets.DATASETS)
def test_notes_give_each_columns_required_flag_and_rules(written, dataset, reference):
    out, _ = written
    book = load(out / TEMPLATE_FILES[dataset])
    notes = book["Notes"]
    (table,) = notes.tables.values()
    rows = [[c.value for c in row] for row in notes[table.ref]]
    head, body = rows[0], rows[1:]
    assert head == ["Column", "Required", "What to enter", "Checks when the file is loaded", "Other headers accepted",
                    "Example"]
    spec = datasets.BY_NAME[dataset]
    assert [r[0] for r in body] == [c.name for c in template_columns(spec)]
    suite = SUITES[dataset](reference)
    for name, required, _, checks_text, synonyms, _ in body:
        column = spec.column(name)
        assert (required == "Yes") == column.required
        for check in suite:
            if check.column == name:
                assert check.rule_text in checks_text
        for synonym in column.synonyms:
            assert synonym in synonyms
    assert {r[1] for r in body if r[0] in ("status_date", "withdrawal_reason")} <= {"Sometimes"}


@pytest.mark.parametrize("dataset", datasets.DATASETS)
def test_a_filled_in_template_loads_with_no_issue(written, dataset, reference, tmp_path):
    out, _ = written
    book = load(out / TEMPLATE_FILES[dataset])
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[HEADER_ROW]]
    row = example_row(dataset, reference)
    for c, name in enumerate(header, start=1):
        if row.get(name) is not None:
            sheet.cell(HEADER_ROW + 1, c, row[name])
    filled = tmp_path / f"filled_{dataset}.xlsx"
    book.save(filled)

    staged = stage_file(filled, sha256="f" * 64)
    assert staged.rejection is None and staged.issues == [] and staged.unknown_columns == []
    assert ("Notes", SKIP_NO_DATASET) in staged.skipped_sheets
    assert {s for s, _ in staged.skipped_sheets} <= {"Notes", "Lists"}
    frame = staged.tables[dataset]
    assert len(frame) == 1 and frame["source_row"].tolist() == [HEADER_ROW + 1]
    for name, value in row.items():
        if name in frame.columns:
            got = frame[name].iloc[0]
            assert (pd.Timestamp(got) == pd.Timestamp(value)) if hasattr(value, "year") else got == value, name

    # ...and through the suites, as load.validate_rows checks it.
    frame = frame.assign(_row_id=0, received_at=pd.Timestamp.now(tz="UTC"))
    register = example_row(datasets.PROJECT_REGISTER, reference)
    primary = pd.DataFrame([{k: register[k] for k in ("project_id", "measure_name", "measure_type")}])
    if dataset == datasets.ENROLMENT_RETURN:
        frame = checks.enrolment_checks(key_participants(frame, b"k"), reference.cohorts)
        frame = checks.project_registered_check(frame, [register["project_id"]])
    elif dataset == datasets.PROJECT_REGISTER:
        frame = checks.register_checks(frame)
    else:
        frame = checks.measure_checks(frame, primary)
    result = validate({dataset: frame}, reference, run_name="template")
    assert result.issues.empty and result.success == {dataset: True} and result.skipped == {}


def test_lists_follow_the_reference_data(tmp_path, reference):
    files = dict(reference.files)
    files["cohorts.csv"] = files["cohorts.csv"].rstrip(b"\n") + b"\nC27A,2027/28,2027-04-01,2027-12-31\n"
    newer = parse_reference(files)
    write_templates(tmp_path, newer)
    book = load(tmp_path / TEMPLATE_FILES[datasets.ENROLMENT_RETURN])
    assert list_values(book, "CohortCodes")[-1] == "C27A"
    assert example_row(datasets.ENROLMENT_RETURN, newer)["cohort_code"] == "C27A"


def test_data_dictionary(written, reference):
    out, _ = written
    with open(out / "data_dictionary.csv", encoding="utf-8-sig", newline="") as f:
        records = list(csv.DictReader(f))
    listed = {(r["dataset"], r["column"]) for r in records}
    assert listed == {(d.name, c.name) for d in datasets.BY_NAME.values() for c in d.columns}
    for r in records:
        column = datasets.BY_NAME[r["dataset"]].column(r["column"])
        assert r["type"] == column.kind
        assert r["personal"] == ("yes" if column.personal else "no")
        assert r["required"] in (("yes",) if column.required else ("no", "sometimes"))
        assert r["synonyms_accepted"] == "; ".join(column.synonyms)
        for check in SUITES[r["dataset"]](reference):
            if check.column == r["column"]:
                assert f"[{check.severity} {check.rule}]" in r["checks"]
    assert {r["column"] for r in records if r["personal"] == "yes"} == {"staff_id", "first_name", "surname", "email",
                                                                         "mentor"}

    book = load(out / "data_dictionary.xlsx")
    assert book.sheetnames == ["Columns", "Rules"]
    (columns,) = book["Columns"].tables.values()
    assert len(list(book["Columns"][columns.ref])) == len(records) + 1
    (rules,) = book["Rules"].tables.values()
    rule_rows = [[c.value for c in row] for row in book["Rules"][rules.ref]][1:]
    assert {(r[0], r[1]) for r in rule_rows} == {(n, c.rule) for n, b in SUITES.items() for c in b(reference)}
    assert all("{value}" not in r[5] for r in rule_rows)
