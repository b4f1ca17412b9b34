"""The staged store in parts: a staging batch writes only its own rows, and the store reads the same
whatever happened to it (a file staged again, parts merged, a merge interrupted)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import workbook
from transforms.load import (NOTE_SCHEMA, PARSE_ISSUE_SCHEMA, PARTS, PERSONAL_DROPPED, STAGED_SCHEMAS, StagedStore,
                             _conform, key_participants)
from transforms.staging import stage_file
from transforms.tables import default_column_synonyms

HEADER = ["Organization Code", "Staff Number", "First Name", "Surname", "Email", "Profession", "Service Area",
          "Cohort", "Enrolment Date", "Status", "Status Date", "Mentor", "Shoe Size"]


def return_rows(n: int, *, status: str = "Active", bad_date_at: int | None = None) -> list[list[object]]:
    rows = []
    for i in range(n):
        date = "31/02/2025" if i == bad_date_at else f"0{1 + i % 9}/04/2025"
        rows.append(["RXX", f"E{1000 + i}", "Ann", "Smith", "ann@example.org", "Nurse", "Acute medicine", "C2025A",
                     date, status, None, "Dr Mentor", 9])
    return rows


def batch(tmp_path: Path, files: dict[str, list[list[object]]]) -> tuple[set, dict, list, list]:
    """What a staging batch hands the store for these enrolment returns (sha -> rows), as
    ``stage_pending`` builds it: typed rows without personal columns, cell issues, notes."""
    staged, issues, notes = [], [], []
    for sha, rows in files.items():
        path = workbook(tmp_path / f"{sha[:8]}.xlsx", {"Return": [HEADER, *rows]})
        result = stage_file(path, sha256=sha, column_synonyms=default_column_synonyms(), value_synonyms=None)
        for frame in result.tables.values():
            frame = frame.drop(columns=[c for c in PERSONAL_DROPPED if c in frame])
            staged.append(_conform(key_participants(frame, b"k" * 32), STAGED_SCHEMAS["enrolment_return"]))
        if result.issues:
            issues.append(_conform(pd.DataFrame(result.issues).assign(source_sha256=sha), PARSE_ISSUE_SCHEMA))
        notes.append(pd.DataFrame([(sha, "unknown_column", s, h) for s, _, h in result.unknown_columns],
                                  columns=NOTE_SCHEMA.names))
    return set(files), {"enrolment_return": staged}, issues, notes


def read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    store = StagedStore.open(folder)
    return store.tables["enrolment_return"], store.parse_issues, store.notes


def sha(n: int) -> str:
    return f"{n:02d}" * 32


@pytest.fixture
def three_nights(tmp_path) -> Path:
    """A store after three staging batches (the third has a cell issue)."""
    folder = tmp_path / "staged"
    StagedStore.add_part(folder, *batch(tmp_path, {sha(1): return_rows(3), sha(2): return_rows(2)}))
    StagedStore.add_part(folder, *batch(tmp_path, {sha(3): return_rows(4)}))
    StagedStore.add_part(folder, *batch(tmp_path, {sha(4): return_rows(2, bad_date_at=1)}))
    return folder


def test_each_batch_is_a_part_of_its_own_and_the_store_reads_the_rows_in_staging_order(three_nights):
    assert sorted(p.name for p in (three_nights / PARTS).iterdir()) == ["000001", "000002", "000003"]
    assert not list(three_nights.glob("*.parquet"))  # nothing staged before was rewritten
    rows, issues, notes = read(three_nights)
    assert rows["source_sha256"].tolist() == [sha(1)] * 3 + [sha(2)] * 2 + [sha(3)] * 4 + [sha(4)] * 2
    assert rows["source_row"].tolist() == [2, 3, 4, 2, 3, 2, 3, 4, 5, 2, 3]
    assert rows["participant_key"].notna().all() and "surname" not in rows and "staff_id" not in rows
    assert issues[["source_sha256", "row", "column"]].values.tolist() == [[sha(4), 3, "enrolment_date"]]
    assert notes["text"].tolist() == ["Shoe Size"] * 4
    pd.testing.assert_frame_equal(StagedStore.read_notes(three_nights), notes)


def test_a_file_staged_again_is_read_from_its_newest_part_alone(three_nights, tmp_path):
    """The manifest was not saved after a part was written: the files were staged again."""
    StagedStore.add_part(three_nights, *batch(tmp_path, {sha(3): return_rows(1, status="Completed"),
                                                        sha(4): return_rows(2)}))
    rows, issues, notes = read(three_nights)
    # as a store rewritten in full would have them: the older rows of those files gone, the new ones last
    assert rows["source_sha256"].tolist() == [sha(1)] * 3 + [sha(2)] * 2 + [sha(3)] + [sha(4)] * 2
    assert rows.loc[rows["source_sha256"] == sha(3), "status"].tolist() == ["Completed"]
    assert issues.empty  # the bad date was in the older part of sha(4)
    assert notes["source_sha256"].tolist() == [sha(1), sha(2), sha(3), sha(4)]


def test_merging_the_parts_changes_nothing_that_is_read(three_nights):
    before = read(three_nights)
    assert StagedStore.merge_parts(three_nights, at=4) == 0  # not yet
    assert len(list((three_nights / PARTS).iterdir())) == 3
    assert StagedStore.merge_parts(three_nights, at=3) == 3
    assert not list((three_nights / PARTS).iterdir()) and (three_nights / "enrolment_return.parquet").exists()
    for frame, again in zip(before, read(three_nights), strict=True):
        pd.testing.assert_frame_equal(again, frame)


@pytest.mark.parametrize("parts_left", [3, 2, 1])
def test_a_merge_interrupted_before_its_parts_were_all_removed_reads_the_same(three_nights, tmp_path, parts_left):
    before = read(three_nights)
    kept = tmp_path / "kept"
    shutil.copytree(three_nights / PARTS, kept)
    StagedStore.merge_parts(three_nights, at=1)
    # killed while removing the parts, oldest first: the newest ``parts_left`` are still there
    for part in sorted(kept.iterdir())[-parts_left:]:
        shutil.copytree(part, three_nights / PARTS / part.name)
    for frame, again in zip(before, read(three_nights), strict=True):
        pd.testing.assert_frame_equal(again, frame)
    # and the next batch is numbered after them, and read last
    StagedStore.add_part(three_nights, *batch(tmp_path, {sha(5): return_rows(1)}))
    assert read(three_nights)[0]["source_sha256"].tolist()[-1] == sha(5)


def test_a_batch_interrupted_while_written_is_not_read_and_is_cleared_by_the_next(three_nights, tmp_path):
    before = read(three_nights)
    half = three_nights / PARTS / ".part-interrupted"
    half.mkdir()
    shutil.copy(three_nights / PARTS / "000001" / "enrolment_return.parquet", half)
    pd.testing.assert_frame_equal(read(three_nights)[0], before[0])
    StagedStore.add_part(three_nights, *batch(tmp_path, {sha(5): return_rows(1)}))
    assert not half.exists()
    assert sorted(p.name for p in (three_nights / PARTS).iterdir())[-1] == "000004"
