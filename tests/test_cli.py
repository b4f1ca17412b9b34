"""The command line: exit codes, one-line messages for bad usage, validate without loading."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.helpers import new_root

runner = CliRunner()


def cli(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parent.parent,
    )


def test_missing_data_root_is_one_line_and_exit_2(tmp_path):
    result = cli("run", "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "has no reference/ folder" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "--from", "2025-13", "--to", "2026-01"], "not a reporting period"),
        (["backfill", "--from", "2026-03", "--to", "2026-01"], "is after --to"),
        (["backfill", "--to", "2026-01"], "needs --from"),
        (["run", "--as-of", "yesterday"], "is not a date"),
        (["backfill", "--only-failed", "--from", "2026-01"], "repeats the last backfill"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(tmp_path, args, message):
    root = new_root(tmp_path / "root")
    result = runner.invoke(app, [*args, "--data-dir", str(root)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_run_without_key_outside_demo_mode_stops_with_exit_2(tmp_path):
    root = new_root(tmp_path / "root")
    env = {k: v for k, v in os.environ.items() if k != "QI_PSEUDONYMISATION_KEY"}
    result = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--data-dir", str(root)], capture_output=True,
                            text=True, env=env, timeout=180)
    assert result.returncode == 2
    assert "QI_PSEUDONYMISATION_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_reference_data_names_file_and_line(tmp_path):
    root = new_root(tmp_path / "root")
    with open(root / "reference" / "cohorts.csv", "a") as handle:
        handle.write("C99Z,2030/31,2030-10-01,2030-01-01\n")
    result = cli("run", "--data-dir", str(root), "--demo")
    assert result.returncode == 2
    assert "cohorts.csv line 12: cohort C99Z ends" in result.stderr


def test_second_run_waits_for_the_lock_then_exits_3(tmp_path):
    from transforms.publish import run_lock

    root = new_root(tmp_path / "root")
    started = time.monotonic()
    with run_lock(root / "state", 1):
        result = cli("run", "--data-dir", str(root), "--demo", env={"QI_LOCK_TIMEOUT": "2"})
    assert result.returncode == 3, result.stderr
    assert "another run holds the lock" in result.stderr
    assert time.monotonic() - started >= 2
    assert "Traceback" not in result.stderr


def _write_return(path: Path, rows: list[list[str]]) -> Path:
    header = "organisation_code,staff_id,first_name,profession,service_area,cohort_code,enrolment_date,status,status_date\n"
    path.write_text(header + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_validate_reports_problems_by_row_and_writes_nothing(tmp_path):
    root = new_root(tmp_path / "root")
    good = _write_return(tmp_path / "good.csv", [["RPA", "A10001", "Ann", "Nursing", "Wards", "C25A", "03/04/2025", "Active", ""]])
    bad = _write_return(tmp_path / "bad.csv", [
        ["RPA", "A10001", "Ann", "Nursing", "Wards", "C25A", "03/04/2025", "Active", ""],
        ["RPA", "A10002", "Bo", "Nursing", "Wards", "C99X", "31/02/2025", "Withdrawn", ""],
    ])
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    ok = runner.invoke(app, ["validate", str(good), "--data-dir", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "1 row(s), 0 error(s)" in ok.output
    failed = runner.invoke(app, ["validate", str(bad), "--data-dir", str(root)])
    assert failed.exit_code == 1, failed.output
    assert "bad.csv" in failed.output and "4 error(s)" in failed.output
    for text in ("Cohort 'C99X' is not a cohort", "not a real date", "status date is required", "withdrawal reason is required"):
        assert text in " ".join(failed.output.split()), text
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_validate_a_rejected_file_and_a_missing_file(tmp_path):
    root = new_root(tmp_path / "root")
    fake = tmp_path / "report.xlsx"
    fake.write_text("this is not a workbook")
    result = runner.invoke(app, ["validate", str(fake), "--data-dir", str(root)])
    assert result.exit_code == 1
    assert "REJECTED" in result.output
    missing = runner.invoke(app, ["validate", str(tmp_path / "nope.csv"), "--data-dir", str(root)])
    assert missing.exit_code == 2
    assert "no such file" in missing.output


def test_templates_command_writes_the_three_templates_and_a_dictionary(tmp_path):
    root = new_root(tmp_path / "root")
    result = runner.invoke(app, ["templates", "--out", str(tmp_path / "out"), "--data-dir", str(root)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    for expected in ("enrolment_return_template.xlsx", "project_register_template.xlsx",
                     "measure_data_template.xlsx", "data_dictionary.xlsx"):
        assert expected in names


def test_demo_creates_a_data_root_once(tmp_path):
    target = tmp_path / "fresh"
    first = runner.invoke(app, ["demo", "--data-dir", str(target), "--months", "2", "--end-period", "2026-09"])
    assert first.exit_code == 0, first.output
    assert (target / "reference" / "organisations.csv").exists()
    assert any((target / "landing").rglob("*.xlsx"))
    again = runner.invoke(app, ["demo", "--data-dir", str(target), "--months", "2"])
    assert again.exit_code == 0 and "already holds files" in again.output
    bad = runner.invoke(app, ["demo", "--data-dir", str(target), "--end-period", "2026-13", "--force"])
    assert bad.exit_code == 2 and "not a reporting period" in bad.output
