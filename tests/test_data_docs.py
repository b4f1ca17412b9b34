"""Data Docs: one browsable site per run under data/docs/, the last N kept, no personal data."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expectations.docs import REDACTED, run_folder_name, write_data_docs
from expectations.runner import validate
from transforms import checks
from transforms.datasets import ENROLMENT_RETURN, PROJECT_REGISTER
from transforms.load import key_participants
from transforms.reference import load_reference

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
STAFF_ID = "ZX987654"
BAD_STAFF_ID = "ZX-98765"
NAME = "Marjoribanks"
EMAIL = "e.marjoribanks@example.org"
MENTOR = "Dr Featherstonehaugh"


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


def enrolment(reference) -> pd.DataFrame:
    """Three rows as staging gives them, with personal columns, keyed and checked as load.py does."""
    n = 3
    frame = pd.DataFrame({
        "organisation_code": ["RNL", "RZZ", "RNL"],
        "staff_id": [STAFF_ID, "AB12345", BAD_STAFF_ID],
        "first_name": [NAME] * n, "surname": [NAME] * n, "email": [EMAIL] * n, "mentor": [MENTOR] * n,
        "profession": ["Nursing", "Social Work", "Medical"],
        "service_area": ["Acute medicine"] * n, "team": [None] * n, "job_title": [None] * n, "band": [None] * n,
        "cohort_code": ["C25A", "C25A", "C99Z"],
        "enrolment_date": pd.to_datetime(["2025-04-01"] * n).astype("datetime64[ms]"),
        "status": ["Active"] * n,
        "status_date": pd.to_datetime([None] * n).astype("datetime64[ms]"),
        "withdrawal_reason": [None] * n, "project_id": [None] * n,
        "source_sha256": ["a" * 64] * n, "source_sheet": ["Return"] * n, "source_row": np.arange(2, 2 + n),
        "file_name": ["RNL/enrolment_2025-05.xlsx"] * n,
        "received_at": pd.Timestamp("2025-06-05 10:00", tz="UTC"), "_row_id": np.arange(n),
    })
    personal = frame[["staff_id", "first_name", "surname", "email", "mentor"]]
    keyed = checks.enrolment_checks(key_participants(frame, b"k"), reference.cohorts)
    keyed = checks.project_registered_check(keyed, [])
    # A careless caller hands the personal columns over too: the runner must drop them.
    return pd.concat([keyed, personal], axis=1)


def register() -> pd.DataFrame:
    frame = pd.DataFrame({
        "project_id": ["SET-2025-001", "SET-2025-001"], "organisation_code": ["RNL", "RNL"],
        "cohort_code": ["C25A", "C25A"], "title": ["Wristbands", "Wristbands"], "aim": [None, None],
        "team": [None, None], "service_area": ["Acute", "Acute"], "measure_name": ["Wristband %"] * 2,
        "measure_type": ["percentage"] * 2, "unit": [None, None], "improvement_direction": ["increase"] * 2,
        "target": [95.0, 95.0], "intervention_date": pd.to_datetime([None, None]).astype("datetime64[ms]"),
        "status": ["Active", "Active"], "source_sha256": ["b" * 64] * 2, "source_sheet": ["Register"] * 2,
        "source_row": [2, 3], "file_name": ["RNL/projects.xlsx"] * 2, "_row_id": [0, 1],
    })
    return checks.register_checks(frame)


@pytest.fixture(scope="module")
def results(reference):
    # As load.validate_rows does it: the register first, then the rows; all results go to one site.
    first = validate({PROJECT_REGISTER: register()}, reference, run_name="register")
    second = validate({ENROLMENT_RETURN: enrolment(reference)}, reference, run_name="rows")
    assert not first.success[PROJECT_REGISTER] and not second.success[ENROLMENT_RETURN]
    return first.results + second.results


def all_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file()
                     and p.suffix in (".html", ".json", ".tsv", ".css", ".js", ""))


def test_a_browsable_site_per_run(tmp_path, results, capfd, caplog):
    caplog.set_level(logging.WARNING)
    start = time.perf_counter()
    index = write_data_docs(results, tmp_path / "docs", "20250606T020000Z-abc123")
    elapsed = time.perf_counter() - start
    assert index == tmp_path / "docs" / "20250606T020000Z-abc123" / "index.html" and index.is_file()
    site = index.parent
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "expectations/enrolment_return.html" in pages and "expectations/project_register.html" in pages
    validations = [p for p in pages if p.startswith("validations/")]
    assert len(validations) == 2
    home = index.read_text(encoding="utf-8")
    for page in validations:
        assert page in home  # the run's index links each validation
    enrolment_page = next(site.glob("validations/enrolment_return/**/*.html")).read_text(encoding="utf-8")
    # What failed, in words, with the unexpected value and where it is.
    assert "organisation_known" in enrolment_page and "RZZ" in enrolment_page
    assert "RNL/enrolment_2025-05.xlsx" in enrolment_page
    assert "ERROR staff_id_format (staff_id)" in enrolment_page
    assert "WARNING" not in enrolment_page or "project_not_registered" in enrolment_page
    # The list of runs.
    runs = (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")
    assert 'href="20250606T020000Z-abc123/index.html"' in runs and "enrolment_return failed" in runs
    # Quiet and cheap.
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert not [r for r in caplog.records if r.name.startswith(("qi.docs", "great_expectations"))]
    assert elapsed < 3.0, f"Data Docs took {elapsed:.2f} s"


def test_no_personal_data_anywhere_in_the_docs(tmp_path, results):
    write_data_docs(results, tmp_path / "docs", "run-1")
    text = all_text(tmp_path / "docs")
    assert "RZZ" in text  # the docs do quote unexpected values...
    for planted in (STAFF_ID, BAD_STAFF_ID, NAME, EMAIL, MENTOR, "AB12345"):
        assert planted not in text  # ...but never a personal one


def test_a_personal_column_in_a_result_is_redacted(tmp_path, results):
    # A second guard, should a personal column ever reach GX: its values are redacted.
    tampered = copy.deepcopy(results[1])
    item = next(r for r in tampered.results if r.expectation_config.kwargs["column"] == "chk_staff_id_format")
    item.expectation_config.kwargs["column"] = "staff_id"
    body = item.result
    body["partial_unexpected_list"] = body["unexpected_list"] = [BAD_STAFF_ID]
    body["partial_unexpected_counts"] = [{"value": BAD_STAFF_ID, "count": 1}]
    for key in ("partial_unexpected_index_list", "unexpected_index_list"):
        body[key] = [{**entry, "staff_id": BAD_STAFF_ID} for entry in body[key]]
    assert item.expectation_config.kwargs["column"] == "staff_id"
    write_data_docs([tampered], tmp_path / "docs", "tampered")
    text = all_text(tmp_path / "docs")
    assert BAD_STAFF_ID not in text and REDACTED in text
    assert BAD_STAFF_ID in str(tampered.to_json_dict())  # the caller's result is left as it was


def test_only_the_last_runs_are_kept(tmp_path, results):
    docs = tmp_path / "docs"
    for n in range(4):
        write_data_docs(results, docs, f"run-{n}", keep=2)
        time.sleep(0.01)
    assert sorted(p.name for p in docs.iterdir() if p.is_dir()) == ["run-2", "run-3"]
    runs = (docs / "index.html").read_text(encoding="utf-8")
    assert "run-3/index.html" in runs and "run-2/index.html" in runs and "run-1/" not in runs
    assert runs.index("run-3/") < runs.index("run-2/")  # newest first
    # The same run again replaces its site; no scratch folders are left behind.
    write_data_docs(results[:1], docs, "run-3", keep=2)
    assert not list((docs / "run-3").glob("validations/enrolment_return"))
    assert [p.name for p in docs.iterdir() if p.name.startswith(".")] == []


def test_a_run_with_nothing_validated_still_gets_a_page(tmp_path):
    index = write_data_docs([], tmp_path / "docs", "empty")
    assert index.is_file()
    assert "no validations" in (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")


def test_run_names_become_safe_folder_names():
    assert run_folder_name("2025-06-06 02:00 nightly") == "2025-06-06_02_00_nightly"
    assert run_folder_name("../../etc") == "etc"
    assert run_folder_name("") == "run"
