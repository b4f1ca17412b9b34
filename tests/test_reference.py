import shutil
from pathlib import Path

import pytest

from transforms.reference import commissioner_scope, load_reference
from transforms.settings import UsageError

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "reference"


@pytest.fixture
def ref_dir(tmp_path):
    target = tmp_path / "reference"
    shutil.copytree(SHIPPED, target)
    return target


def test_shipped_reference_data_loads():
    ref = load_reference(SHIPPED)
    assert len(ref.organisations) == 7
    assert set(ref.organisations["type"]) == {"lead trust", "partner trust", "voluntary", "independent"}
    assert len(ref.commissioners) >= 3
    assert ref.cohorts["programme_year"].nunique() >= 3
    social = ref.commissioners[ref.commissioners["profession_filter"] == "Social Work"].iloc[0]
    assert social["scope"] == "ALL"
    assert commissioner_scope(social, ref.organisations) == sorted(ref.organisations["code"])


def test_hash_changes_with_content(ref_dir):
    before = load_reference(ref_dir).sha256
    with open(ref_dir / "cohorts.csv", "a") as handle:
        handle.write("C27A,2027/28,2027-04-01,2027-12-31\n")
    assert load_reference(ref_dir).sha256 != before


def _replace_line(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def test_unknown_organisation_in_scope_names_file_and_line(ref_dir):
    _replace_line(ref_dir / "commissioners.csv", "RPA;RPC", "RPA;ZZZ")
    with pytest.raises(UsageError, match=r"commissioners.csv line 4: .*ZZZ"):
        load_reference(ref_dir)


def test_duplicate_code(ref_dir):
    with open(ref_dir / "organisations.csv", "a") as handle:
        handle.write("RPA,Another,partner trust,\n")
    with pytest.raises(UsageError, match=r"organisations.csv line 9: duplicate code 'RPA'"):
        load_reference(ref_dir)


def test_cohort_ending_before_it_starts(ref_dir):
    _replace_line(ref_dir / "cohorts.csv", "C23A,2023/24,2023-04-01,2023-12-31", "C23A,2023/24,2023-04-01,2023-01-31")
    with pytest.raises(UsageError, match=r"cohorts.csv line 4: cohort C23A ends"):
        load_reference(ref_dir)


def test_missing_file(ref_dir):
    (ref_dir / "cohorts.csv").unlink()
    with pytest.raises(UsageError, match="cohorts.csv is missing"):
        load_reference(ref_dir)
