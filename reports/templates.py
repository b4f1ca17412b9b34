"""Submission templates and the data dictionary (``qi-pipeline templates``), so senders get it right first time.

Generated from the same definitions the pipeline checks against: the columns, synonyms
and categories of ``transforms.datasets``, the reference lists (organisations, cohorts)
and the rules of the validation suites in ``expectations/``. Change a rule there and the
templates say so the next time they are written.

Each template: the dataset's sheet (title, two short lines, then the canonical header
row as a real Excel table, with drop-down lists for categorical and code columns, date,
number and length checks, and a prompt per column), a Notes sheet (each column's required
flag, what to enter, the checks made when the file is loaded, headers also accepted, an
example) and a Lists sheet (the allowed values). Staging skips the Notes and Lists sheets,
so a filled-in template is read as it is. The optional personal columns that staging drops
(first_name, surname, email, mentor) are left out: nobody should send what is not used.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from xlsxwriter.utility import xl_col_to_name

from expectations.checks import Check
from expectations.runner import SUITES
from reports.layout import Book, new_book, safe_text, sheet_header, write_table, write_text
from transforms import datasets
from transforms.datasets import CATEGORIES, CATEGORY_FIELD, Column, Dataset
from transforms.reference import Reference
from transforms.storage import atomic_write_bytes

TEMPLATE_FILES = {
    datasets.ENROLMENT_RETURN: "enrolment_return_template.xlsx",
    datasets.PROJECT_REGISTER: "project_register_template.xlsx",
    datasets.MEASURE_DATA: "measure_data_template.xlsx",
}
DICTIONARY_XLSX = "data_dictionary.xlsx"
DICTIONARY_CSV = "data_dictionary.csv"

# Personal columns the pipeline drops on reading: not asked for in the templates.
NOT_ASKED = ("first_name", "surname", "email", "mentor")
HEADER_ROW = 3  # 0-based: title, two lines, then the header row (Excel row 4)
VALIDATED_ROWS = 5000  # rows below the header that carry the drop-downs and checks
DATE_FORMAT = "dd/mm/yyyy"
KIND_WORDS = {
    "code": "code (text)", "text": "text", "date": "date", "number": "number",
    "category": "one of a list", "personal": "personal data (text)",
}


@dataclass(frozen=True)
class ListSource:
    """A named range on the Lists sheet that a drop-down draws from."""

    name: str  # the defined name, e.g. Professions
    header: str
    values: tuple[str, ...]
    labels: tuple[str, ...] = ()  # e.g. organisation names beside their codes


def write_templates(out_dir: Path, reference: Reference) -> list[Path]:
    """Write the three submission templates and the data dictionary (.xlsx and .csv) to ``out_dir``.

    Returns the paths written, templates first. Files are replaced atomically.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    paths = [
        _template(datasets.BY_NAME[name], reference, created).save(out_dir / file)
        for name, file in TEMPLATE_FILES.items()
    ]
    dictionary = data_dictionary(reference)
    paths.append(_dictionary_book(dictionary, reference, created).save(out_dir / DICTIONARY_XLSX))
    buffer = io.StringIO()
    dictionary.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    atomic_write_bytes(out_dir / DICTIONARY_CSV, buffer.getvalue().encode("utf-8-sig"))
    paths.append(out_dir / DICTIONARY_CSV)
    return paths


# --- What each column means, from datasets.py and the suites ---------------------------------------


def column_checks(dataset: str, reference: Reference) -> dict[str, list[Check]]:
    """The suite's checks by the canonical column a sender fixes."""
    out: dict[str, list[Check]] = {}
    for check in SUITES[dataset](reference):
        out.setdefault(check.column, []).append(check)
    return out


def checks_text(checks: list[Check]) -> str:
    """The checks on one column, as a sender reads them: 'Error: ...; Warning: ...'."""
    return " ".join(f"{c.severity.capitalize()}: {c.rule_text}" for c in checks)


def allowed_values(dataset: str, column: str, reference: Reference) -> tuple[str, ...]:
    """The values a drop-down offers for ``column`` (empty when the column is free)."""
    if (dataset, column) in CATEGORY_FIELD:
        return CATEGORIES[CATEGORY_FIELD[(dataset, column)]]
    if column == "organisation_code":
        return tuple(sorted(reference.org_codes))
    if column == "cohort_code":
        return tuple(reference.cohorts.sort_values(["start_date", "code"])["code"])
    return ()


def template_columns(dataset: Dataset) -> list[Column]:
    return [c for c in dataset.columns if c.name not in NOT_ASKED]


def example_row(dataset: str, reference: Reference) -> dict[str, Any]:
    """One good row for ``dataset`` (blank columns left out), valid against ``reference``.

    Shown as the example on the Notes sheet; the tests fill a template with it.
    """
    org = _lead_organisation(reference)
    cohort = reference.cohorts.sort_values(["start_date", "code"]).iloc[-1]
    start = pd.Timestamp(cohort["start_date"]).to_pydatetime()
    rows: dict[str, dict[str, Any]] = {
        datasets.ENROLMENT_RETURN: {
            "organisation_code": org, "staff_id": "A1234567", "profession": "Nursing",
            "service_area": "Acute medicine", "team": "Ward 4", "job_title": "Staff nurse", "band": "Band 5",
            "cohort_code": cohort["code"], "enrolment_date": start, "status": "Active",
            "project_id": "SET-2025-014",
        },
        datasets.PROJECT_REGISTER: {
            "project_id": "SET-2025-014", "organisation_code": org, "cohort_code": cohort["code"],
            "title": "Wristbands for every inpatient", "aim": "95% of inpatients wear a wristband by March",
            "team": "Ward 4", "service_area": "Acute medicine", "measure_name": "Inpatients wearing a wristband",
            "measure_type": "percentage", "unit": "%", "improvement_direction": "increase", "target": 95,
            "intervention_date": datetime(2025, 6, 1), "status": "Active",
        },
        datasets.MEASURE_DATA: {
            "project_id": "SET-2025-014", "measure_name": "Inpatients wearing a wristband",
            "period": datetime(2025, 4, 1), "numerator": 42, "denominator": 50, "value": 84,
        },
    }
    return rows[dataset]


def _lead_organisation(reference: Reference) -> str:
    orgs = reference.organisations.sort_values("code")
    lead = orgs[orgs["type"] == "lead trust"]
    return str((lead if len(lead) else orgs)["code"].iloc[0])


def _example_text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.strftime("%d/%m/%Y")
    return "" if value is None else str(value)


# --- A template -----------------------------------------------------------------------------------


def _template(dataset: Dataset, reference: Reference, created: datetime) -> Book:
    book = new_book(
        title=f"QI programme: {dataset.title.lower()} submission template",
        subject=f"{dataset.title}: {dataset.grain}",
        created=created,
        keywords="QI programme, submission template",
    )
    columns = template_columns(dataset)
    checks = column_checks(dataset.name, reference)
    lists = _list_sources(dataset, columns, reference)
    data_sheet = book.add_sheet(dataset.title)
    notes = book.add_sheet("Notes")
    if lists:
        _lists_sheet(book, book.add_sheet("Lists"), dataset, lists)
    _data_sheet(book, data_sheet, dataset, columns, checks, lists)
    _notes_sheet(book, notes, dataset, columns, checks, reference)
    data_sheet.activate()
    return book


def _list_sources(dataset: Dataset, columns: list[Column], reference: Reference) -> dict[str, ListSource]:
    out: dict[str, ListSource] = {}
    for column in columns:
        values = allowed_values(dataset.name, column.name, reference)
        if not values:
            continue
        if column.name == "organisation_code":
            names = reference.organisations.set_index("code")["name"]
            out[column.name] = ListSource("OrganisationCodes", "Organisation codes", values,
                                          tuple(str(names.get(v, "")) for v in values))
        elif column.name == "cohort_code":
            years = reference.cohorts.set_index("code")["programme_year"]
            out[column.name] = ListSource("CohortCodes", "Cohort codes", values,
                                          tuple(f"{years.get(v, '')}" for v in values))
        else:
            label = column.name.replace("_", " ")
            name = "".join(w.capitalize() for w in label.split()) + "Values"
            out[column.name] = ListSource(name, f"Allowed {label} values", values)
    return out


def _lists_sheet(book: Book, sheet, dataset: Dataset, lists: dict[str, ListSource]) -> None:
    """One table: a column per list (and the names beside the codes); each list a defined name."""
    fmt = book.fmt
    start = sheet_header(sheet, fmt, "Lists", [
        f"The values the drop-down lists of the {dataset.title.lower()} sheet offer. This worksheet contains one table.",
        "Cells below the end of a shorter list are left blank.",
    ])
    headers: list[tuple[str, tuple[str, ...]]] = []
    for source in lists.values():
        headers.append((source.header, source.values))
        if source.labels:
            label = "Organisation name" if source.name == "OrganisationCodes" else "Programme year"
            headers.append((label, source.labels))
    length = max(len(values) for _, values in headers)
    for c, (header, values) in enumerate(headers):
        for r, value in enumerate(values):
            write_text(sheet, fmt, start + 1 + r, c, value)
        sheet.set_column(c, c, max(16, min(60, max(len(header), *(len(v) for v in values)) + 2)))
    sheet.add_table(start, 0, start + length, len(headers) - 1, {
        "name": "Lists", "style": "Table Style Light 1",
        "columns": [{"header": safe_text(h)} for h, _ in headers],
    })
    for source in lists.values():
        c = next(i for i, (h, _) in enumerate(headers) if h == source.header)
        letter = xl_col_to_name(c)
        book.workbook.define_name(
            source.name, f"=Lists!${letter}${start + 2}:${letter}${start + 1 + len(source.values)}"
        )


def _data_sheet(book: Book, sheet, dataset: Dataset, columns: list[Column], checks: dict[str, list[Check]],
                lists: dict[str, ListSource]) -> None:
    fmt = book.fmt
    sheet_header(sheet, fmt, f"{dataset.title}: submission template", [
        f"{dataset.grain.capitalize()}, starting in row {HEADER_ROW + 2}. Keep the header row as it is; "
        "leave optional columns blank if you have nothing to enter.",
        "The Notes sheet says what to enter in each column and what is checked when the file is loaded"
        + ("; drop-down lists come from the Lists sheet." if lists else "."),
    ])
    text = book.workbook.add_format({"num_format": "@"})
    day = book.workbook.add_format({"num_format": DATE_FORMAT, "align": "left"})
    first, last = HEADER_ROW + 1, HEADER_ROW + VALIDATED_ROWS
    for c, column in enumerate(columns):
        cell_format = day if column.kind == "date" else (None if column.kind == "number" else text)
        sheet.set_column(c, c, max(14, len(column.name) + 4), cell_format)
        validation = _validation(dataset, column, checks.get(column.name, []), lists.get(column.name))
        sheet.data_validation(first, c, last, c, validation)
    sheet.add_table(HEADER_ROW, 0, HEADER_ROW + 1, len(columns) - 1, {
        "name": dataset.name, "style": "Table Style Light 9",
        "columns": [{"header": c.name} for c in columns],
    })
    sheet.freeze_panes(HEADER_ROW + 1, 0)


def _validation(dataset: Dataset, column: Column, checks: list[Check], source: ListSource | None) -> dict[str, Any]:
    """The Excel data validation for one column: a drop-down, a date, number or length check, or a prompt."""
    # The column's rule, then the rules that involve other columns or rows (the chk_* ones).
    words = ["Required." if column.required else
             "Required in some rows." if _conditional(column, {column.name: checks}) == "Sometimes" else "Optional."]
    words += [column.rule.rstrip(".") + "."] if column.rule else []
    words += [c.rule_text for c in checks if c.checked_column.startswith("chk_") and c.rule_text not in words]
    prompt = {"input_title": column.name[:32], "input_message": _cut(" ".join(words), 255)}
    if source is not None:
        # Categories are fixed by the programme; reference codes may lag a new organisation or cohort.
        stop = column.kind == "category"
        return {
            "validate": "list", "source": f"={source.name}", **prompt,
            "error_type": "stop" if stop else "warning",
            "error_title": "Not in the list",
            "error_message": _cut(f"Choose a value from the list ({source.header} on the Lists sheet)."
                                  + ("" if stop else " A value not in the list will be rejected when loaded."), 255),
        }
    if column.kind == "date":
        return {
            "validate": "date", "criteria": "between", "minimum": date(2000, 1, 1), "maximum": date(2099, 12, 31),
            **prompt, "error_type": "warning", "error_title": "Not a date",
            "error_message": "Enter a date such as 03/04/2025.",
        }
    if column.kind == "number":
        positive = column.name == "denominator"
        return {
            "validate": "decimal", "criteria": ">" if positive else ">=", "value": 0, **prompt,
            "error_type": "stop", "error_title": "Not a number",
            "error_message": "Enter a number greater than 0." if positive else "Enter a number, 0 or more.",
        }
    if column.name == "staff_id":
        return {
            "validate": "length", "criteria": "between", "minimum": 3, "maximum": 20, **prompt,
            "error_type": "stop", "error_title": "Staff ID",
            "error_message": "A staff ID is 3 to 20 letters or digits, with no spaces or punctuation.",
        }
    return {"validate": "any", **prompt}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _notes_sheet(book: Book, sheet, dataset: Dataset, columns: list[Column], checks: dict[str, list[Check]],
                 reference: Reference) -> None:
    fmt = book.fmt
    lines = [
        f"{dataset.title}: {dataset.grain}. This worksheet contains one table: a row per column of the template.",
        "Headers are matched whatever their case, spacing or punctuation, and through the other names listed; "
        "columns not listed are ignored.",
        "Errors: the row is not loaded and the feedback says why. Warnings: the row is loaded and the feedback "
        "lists it. A file is rejected as a whole only when it cannot be read or a required column is missing.",
    ]
    if dataset.name == datasets.ENROLMENT_RETURN:
        lines.append("First name, surname, e-mail and mentor are not needed: please leave them out "
                     "(they are dropped when the file is read).")
    if dataset.name == datasets.MEASURE_DATA:
        lines.append("Wide form is accepted too: project_id, measure_name, then one column per period "
                     "headed by its date or month (e.g. Apr-25); the value goes in the period's column.")
    start = sheet_header(sheet, fmt, "Notes", lines)
    example = example_row(dataset.name, reference)
    frame = pd.DataFrame({
        "Column": [c.name for c in columns],
        "Required": ["Yes" if c.required else _conditional(c, checks) for c in columns],
        "What to enter": [c.rule or KIND_WORDS[c.kind].capitalize() for c in columns],
        "Checks when the file is loaded": [checks_text(checks.get(c.name, [])) or "None" for c in columns],
        "Other headers accepted": [", ".join(c.synonyms) or "None" for c in columns],
        "Example": [_example_text(example.get(c.name)) or "(blank)" for c in columns],
    })
    write_table(sheet, fmt, start, frame, name=f"{dataset.name}_notes",
                widths={"Column": 24, "Required": 16, "What to enter": 50, "Checks when the file is loaded": 70,
                        "Other headers accepted": 40, "Example": 24},
                formats={k: fmt.wrap for k in frame.columns}, description=f"{dataset.title}: columns and rules")


def _conditional(column: Column, checks: dict[str, list[Check]]) -> str:
    """'Sometimes' for a column a rule requires in some rows (status_date, withdrawal_reason), else 'No'."""
    return "Sometimes" if any(c.rule.endswith("_required") for c in checks.get(column.name, [])) else "No"


# --- The data dictionary --------------------------------------------------------------------------


def data_dictionary(reference: Reference) -> pd.DataFrame:
    """One row per column of every dataset: type, required, personal, synonyms accepted, rule, checks."""
    rows = []
    for dataset in datasets.BY_NAME.values():
        checks = column_checks(dataset.name, reference)
        for column in dataset.columns:
            values = allowed_values(dataset.name, column.name, reference)
            rows.append({
                "dataset": dataset.name,
                "dataset_grain": dataset.grain,
                "column": column.name,
                "type": column.kind,
                "required": "yes" if column.required else ("sometimes" if _conditional(column, checks) == "Sometimes" else "no"),
                "personal": "yes" if column.personal else "no",
                "kept": "no (dropped when read)" if column.name in NOT_ASKED
                        else ("keyed (participant_key)" if column.name == "staff_id" else "yes"),
                "synonyms_accepted": "; ".join(column.synonyms),
                "rule": column.rule,
                "allowed_values": "; ".join(values),
                "checks": " ".join(f"[{c.severity} {c.rule}] {c.rule_text}" for c in checks.get(column.name, [])),
            })
    return pd.DataFrame(rows)


def rules_table(reference: Reference) -> pd.DataFrame:
    """Every rule of every suite: the codes in data_quality_issues.rule, explained."""
    rows = [
        {"dataset": name, "rule": c.rule, "column": c.column, "severity": c.severity, "rule_text": c.rule_text,
         "message": c.message.replace("{value} ", "").replace(" {value}", ""), "fix": c.fix}
        for name, build in SUITES.items() for c in build(reference)
    ]
    return pd.DataFrame(rows)


def _dictionary_book(dictionary: pd.DataFrame, reference: Reference, created: datetime) -> Book:
    book = new_book(title="QI programme: data dictionary", subject="Submission datasets, columns and rules",
                    created=created, keywords="QI programme, data dictionary")
    fmt = book.fmt
    sheet = book.add_sheet("Columns")
    start = sheet_header(sheet, fmt, "Data dictionary: columns", [
        "Every column of the three submission datasets. This worksheet contains one table.",
        "Personal columns never reach the marts or reports; staff_id is replaced by a keyed participant_key.",
    ])
    shown = dictionary.rename(columns=lambda c: c.replace("_", " ").capitalize())
    write_table(sheet, fmt, start, shown, name="columns",
                widths={"Dataset": 18, "Dataset grain": 30, "Column": 22, "Type": 10, "Required": 10, "Personal": 10,
                        "Kept": 22, "Synonyms accepted": 40, "Rule": 50, "Allowed values": 40, "Checks": 80},
                formats={k: fmt.wrap for k in shown.columns}, description="Columns of the submission datasets")
    rules = book.add_sheet("Rules")
    start = sheet_header(rules, fmt, "Data dictionary: rules", [
        "Every check made when a file is loaded: the rule codes used in the feedback and in data_quality_issues. "
        "This worksheet contains one table.",
        "Errors keep the row out of the marts; warnings load it and list it in the feedback.",
    ])
    table = rules_table(reference).rename(columns=lambda c: c.replace("_", " ").capitalize())
    write_table(rules, fmt, start, table, name="rules",
                widths={"Dataset": 18, "Rule": 32, "Column": 20, "Severity": 10, "Rule text": 60, "Message": 60,
                        "Fix": 60},
                formats={k: fmt.wrap for k in table.columns}, description="Validation rules")
    return book


__all__ = ["write_templates", "data_dictionary", "rules_table", "example_row", "column_checks", "TEMPLATE_FILES"]
