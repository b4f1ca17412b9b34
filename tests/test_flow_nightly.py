"""End to end: the real nightly flow on generated demo data (one Prefect harness per session)."""

import hashlib
import json
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from transforms.demo import generate
from transforms.marts import SCHEMAS

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory, prefect_harness):
    from flows.nightly import nightly

    root = tmp_path_factory.mktemp("qi")
    (root / "reference").mkdir()
    for source in REFERENCE.glob("*.csv"):
        (root / "reference" / source.name).write_bytes(source.read_bytes())
    truth = generate(root / "landing", root / "reference", months=18, end_period="2026-10")
    first = nightly(data_dir=str(root), demo=True)
    snapshot = _snapshot(root / "marts" / "current")
    second = nightly(data_dir=str(root), demo=True)
    return root, truth, first, second, snapshot


def _snapshot(folder: Path) -> dict[str, str]:
    folder = folder.resolve()
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def mart(root: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(root / "marts" / "current" / f"{name}.parquet")


def test_marts_match_what_the_generator_produced(demo_root):
    root, truth, first, _, _ = demo_root
    enrolment = mart(root, "fct_enrolment")
    assert len(enrolment) == truth.participants
    assert enrolment.groupby("organisation_code").size().to_dict() == truth.participants_by_org
    assert len(mart(root, "dim_project")) == truth.projects
    assert len(mart(root, "fct_measure")) == truth.measure_points
    issues = mart(root, "data_quality_issues")
    errors = issues[issues["severity"] == "error"].drop_duplicates(["source_sha256", "sheet", "row"])
    assert errors.groupby("dataset").size().to_dict() == {k: v for k, v in truth.bad_rows.items() if v}
    assert first["files_rejected"] == len(truth.rejected_files)
    assert first["outcome"] == "needs_attention"


def test_every_planted_problem_is_reported_where_it_was_planted(demo_root):
    root, truth, _, _, _ = demo_root
    issues = mart(root, "data_quality_issues")
    found = set(zip(issues["file_name"], issues["sheet"], issues["row"], strict=True))
    for planted in truth.planted:
        assert (planted["file"], planted["sheet"], planted["row"]) in found, planted


def test_every_mart_matches_its_declared_schema_and_carries_lineage(demo_root):
    root, *_ = demo_root
    for name, schema in SCHEMAS.items():
        table = pq.read_table(root / "marts" / "current" / f"{name}.parquet")
        assert table.schema.names == schema.names, name
        if name.startswith("fct_") or name == "dim_project":
            frame = table.to_pandas()
            assert frame["source_sha256"].str.len().eq(64).all(), name
            assert frame["source_row"].gt(0).all(), name


def _personal_values(landing: Path) -> set[str]:
    """Every staff id, e-mail, full name and mentor the senders put in their enrolment returns."""
    from transforms.read import UnreadableFile, read_grids
    from transforms.tables import default_column_synonyms, find_table

    synonyms = default_column_synonyms()
    values: set[str] = set()
    for path in landing.rglob("*"):
        try:
            grids = read_grids(path)
        except UnreadableFile:
            continue
        for grid in grids:
            table = find_table(grid, synonyms)
            if table is None or table.dataset != "enrolment_return":
                continue
            col = table.columns
            for _, cells in table.rows:
                get = lambda name: str(cells[col[name]]).strip() if name in col and cells[col[name]] else ""  # noqa: E731
                values |= {get("staff_id"), get("email"), get("mentor"), f"{get('first_name')} {get('surname')}".strip()}
    return {v for v in values if len(v) >= 3}


def test_no_personal_data_in_any_mart(demo_root):
    root, *_ = demo_root
    personal = _personal_values(root / "landing")
    assert len(personal) > 100  # the check below has something to find
    for path in (root / "marts" / "current").glob("*.parquet"):
        frame = pd.read_parquet(path)
        assert not {"staff_id", "first_name", "surname", "email", "mentor"} & set(frame.columns), path.name
        for column in frame.select_dtypes(include=["object", "string"]).columns:
            cells = set(frame[column].dropna().astype(str))
            leaked = {v for v in personal for c in cells if v in c}
            assert not leaked, (path.name, column, sorted(leaked)[:5])
            assert not any("@" in c for c in cells), (path.name, column)


def test_archive_keeps_every_file_owner_only(demo_root):
    root, truth, *_ = demo_root
    manifest = pd.read_parquet(root / "raw" / "manifest.parquet")
    submissions = manifest[manifest["kind"] == "submission"]
    landing = {p.relative_to(root / "landing").as_posix() for p in (root / "landing").rglob("*") if p.is_file()}
    distinct = {hashlib.sha256((root / "landing" / f).read_bytes()).hexdigest() for f in landing}
    assert set(submissions["sha256"]) == distinct
    for rel in submissions["archive_path"]:
        assert stat.S_IMODE((root / "raw" / rel).stat().st_mode) == 0o600
    rejected = submissions[submissions["outcome"] == "rejected"]
    assert sorted(rejected["file_name"]) == sorted(truth.rejected_files)
    for sha in rejected["sha256"]:
        assert (root / "quarantine" / sha / "REJECTED.txt").exists()


def test_commissioner_workbooks_written_for_the_final_period(demo_root):
    root, _, first, _, _ = demo_root
    written = sorted(Path(p).name for p in first["reports"])
    assert written == sorted(f"{c}_qi_programme_2026-10.xlsx" for c in ("RSWP", "NLICB", "ACPP"))
    from openpyxl import load_workbook

    book = load_workbook(root / "reports" / "2026-10" / "NLICB_qi_programme_2026-10.xlsx")
    assert book.sheetnames[:2] == ["Cover", "Contents"]
    assert "North Lakes Integrated Care Board" in book["Cover"]["A1"].value


def test_second_run_with_nothing_new_leaves_marts_byte_identical(demo_root):
    root, _, _, second, snapshot = demo_root
    assert second["files_received"] == 0
    assert second["reports"] == []  # the final period's reports are frozen
    assert _snapshot(root / "marts" / "current") == snapshot
    runs = [json.loads(line) for line in (root / "state" / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 2


def test_each_processed_file_gets_feedback_and_finals_go_to_the_outbox(demo_root):
    import email

    root, truth, first, second, _ = demo_root
    feedback = sorted((root / "reports").rglob("feedback/*_feedback.xlsx"))
    manifest = pd.read_parquet(root / "raw" / "manifest.parquet")
    assert len(feedback) == int((manifest["kind"] == "submission").sum())
    outbox = sorted((root / "outbox").glob("*.eml"))
    kinds = [p.name.split("_")[1] for p in outbox]
    assert kinds.count("commissioner") == 3 or kinds.count("report") == 3, kinds
    # Feedback mail only for submissions with problems (rejected or with rejected rows).
    problems = int(manifest["outcome"].isin(["rejected", "accepted_with_errors"]).sum())
    assert kinds.count("feedback") == problems
    for path in outbox:
        message = email.message_from_bytes(path.read_bytes())
        assert message["To"]
        assert "@" in message["To"]
    assert second["deliveries"]["sent"] == [] and second["deliveries"]["written_to_outbox"] == []


def test_submission_status_matches_when_each_organisation_sent(demo_root):
    """on_time / late / missing per organisation and period, as the generator sent them (resends included)."""
    root, truth, *_ = demo_root
    status = mart(root, "mart_submission_status")
    enrolment = status[status["dataset"] == "enrolment_return"].set_index(["organisation_code", "reporting_period"])
    checked = 0
    for org, periods in truth.submissions.items():
        for period, sent in periods.items():
            key = (org, period)
            if sent == "not_sent":
                assert key not in enrolment.index or enrolment.loc[key, "status"] in ("missing",), (key, sent)
                continue
            got = enrolment.loc[key, "status"]
            if got == "rejected":  # the demo's file rejected whole that month
                continue
            assert got == sent, (key, sent, got)
            checked += 1
    assert checked > 50
    assert (status["status"] == "missing").any()
