import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from transforms.archive import Archive, scan_landing
from transforms.publish import LockHeld, current_build, publish, read_mart, run_lock


def _touch(path, content=b"x", age_days=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    t = time.time() - age_days * 86400
    os.utime(path, (t, t))
    return path


def test_scan_ignores_lock_temp_and_fresh_files(tmp_path):
    landing = tmp_path / "landing"
    _touch(landing / "RPA" / "return.xlsx")
    _touch(landing / "RPA" / "~$return.xlsx")
    _touch(landing / ".~lock.return.xlsx#")
    _touch(landing / ".hidden.csv")
    _touch(landing / "fresh.csv", age_days=0)
    found = scan_landing(landing, now=datetime.now(UTC), quiet_seconds=60, seen_until=None)
    assert [f.rel for f in found] == ["RPA/return.xlsx"]


def test_as_of_hides_later_files(tmp_path):
    landing = tmp_path / "landing"
    _touch(landing / "old.csv", age_days=10)
    _touch(landing / "new.csv", age_days=2)
    found = scan_landing(landing, now=datetime.now(UTC), quiet_seconds=60, seen_until=datetime.now(UTC) - timedelta(days=5))
    assert [f.rel for f in found] == ["old.csv"]


def test_archive_is_owner_only_and_hash_not_recomputed(tmp_path, monkeypatch):
    landing, raw, state = tmp_path / "landing", tmp_path / "raw", tmp_path / "state"
    raw.mkdir()
    state.mkdir()
    _touch(landing / "a.csv", b"organisation_code\nRPA\n")
    archive = Archive(raw, state)
    [file] = scan_landing(landing, now=datetime.now(UTC), quiet_seconds=0, seen_until=None)
    digest = archive.hash_of(file)
    target = archive.add(file.path, sha256=digest, kind="submission", file_name=file.rel,
                         received_at=file.modified_at, run_id="r1")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    archive.save()
    assert stat.S_IMODE(archive.manifest_path.stat().st_mode) == 0o600

    reopened = Archive(raw, state)
    assert reopened.known(digest)
    monkeypatch.setattr("transforms.archive.sha256_file", lambda p: pytest.fail("re-hashed an unchanged file"))
    assert reopened.hash_of(file) == digest
    row = reopened.manifest.iloc[0]
    assert row["received_at"] == pd.Timestamp(file.modified_at).floor("ms")


def test_publish_switches_current_and_prunes(tmp_path):
    marts = tmp_path / "marts"
    orgs = pd.DataFrame({"organisation_code": ["RPA"], "name": ["A"], "type": ["partner trust"]})
    for i in range(4):
        publish(marts, {"dim_organisation": orgs.assign(name=f"v{i}")}, {"publish_id": f"p{i}", "fingerprint": str(i)}, keep=2)
    assert read_mart(marts, "dim_organisation")["name"].tolist() == ["v3"]
    assert current_build(marts)["fingerprint"] == "3"
    assert sorted(p.name for p in (marts / "publishes").iterdir()) == ["p2", "p3"]


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from transforms.publish import run_lock
with run_lock(Path(sys.argv[1]), 1):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_run_waits_then_gives_up_and_lock_dies_with_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(LockHeld, match="another run holds the lock"):
            with run_lock(tmp_path, 0.5):
                pass
        assert time.monotonic() - started >= 0.5
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path, 2):  # released by the kernel when the holder died
        pass


def test_a_reader_never_sees_a_mix_of_two_publishes(tmp_path):
    import os
    import threading

    marts = tmp_path / "marts"
    orgs = pd.DataFrame({"organisation_code": ["RPA"], "name": ["v0"], "type": ["partner trust"]})
    cohorts = pd.DataFrame({"cohort_code": ["C25A"], "programme_year": ["v0"],
                            "start_date": [pd.Timestamp("2025-04-01")], "end_date": [pd.Timestamp("2025-12-31")]})
    publish(marts, {"dim_organisation": orgs, "dim_cohort": cohorts}, {"publish_id": "p000", "fingerprint": "0"}, keep=3)
    stop = threading.Event()
    mixes: list[tuple[str, str]] = []
    reads = 0

    def reader():
        nonlocal reads
        while not stop.is_set():
            folder = os.path.realpath(marts / "current")  # resolve once, as the README says
            try:
                a = pd.read_parquet(f"{folder}/dim_organisation.parquet")["name"].iloc[0]
                b = pd.read_parquet(f"{folder}/dim_cohort.parquet")["programme_year"].iloc[0]
            except FileNotFoundError:  # pruned after keep publishes: a reader this slow re-resolves
                continue
            reads += 1
            if a != b:
                mixes.append((a, b))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(1, 40):
        tag = f"v{i}"
        publish(marts, {"dim_organisation": orgs.assign(name=tag), "dim_cohort": cohorts.assign(programme_year=tag)},
                {"publish_id": f"p{i:03d}", "fingerprint": str(i)}, keep=3)
    stop.set()
    thread.join()
    assert reads > 10
    assert mixes == []


def test_same_person_in_two_returns_gets_one_key():
    from transforms.load import key_participants, participant_key

    frame = pd.DataFrame({"organisation_code": ["RPA", "RPA", "RPB", None], "staff_id": ["A123", "A123", "A123", "X9"]})
    keyed = key_participants(frame, b"secret")
    assert keyed["participant_key"][0] == keyed["participant_key"][1] == participant_key(b"secret", "RPA", "A123")
    assert keyed["participant_key"][2] != keyed["participant_key"][0]  # another organisation's A123
    assert "staff_id" not in keyed.columns
    assert key_participants(frame, b"other")["participant_key"][0] != keyed["participant_key"][0]
    assert keyed["chk_staff_id_format"].tolist() == [True, True, True, False]


def test_odd_landing_entries_never_stop_a_run(tmp_path):
    """A name that is not UTF-8 is archived under a readable name; a named pipe is skipped, not read."""
    landing, raw, state = tmp_path / "landing", tmp_path / "raw", tmp_path / "state"
    raw.mkdir()
    state.mkdir()
    odd = _touch(Path(os.fsdecode(bytes(landing / "RPA") + b"/Caf\xe9 return.csv")), b"organisation_code\nRPA\n")
    os.mkfifo(landing / "RPA" / "pipe.csv")
    found = scan_landing(landing, now=datetime.now(UTC), quiet_seconds=0, seen_until=None)
    assert [f.rel for f in found] == ["RPA/Caf\ufffd return.csv"]
    archive = Archive(raw, state)
    digest = archive.hash_of(found[0])
    archive.add(found[0].path, sha256=digest, kind="submission", file_name=found[0].rel,
                received_at=found[0].modified_at, run_id="r1")
    archive.save()  # the manifest takes the name
    assert Archive(raw, state).known(digest)
    assert odd.exists()


def test_files_waiting_says_whether_a_run_will_read_anything(tmp_path):
    """The hint that lets the CLI import Great Expectations early: a landing file the index
    has not seen (within --as-of), or an archived file still waiting to be staged."""
    from tests.helpers import new_root
    from transforms import run as steps
    from transforms.settings import Settings

    root_dir = new_root(tmp_path / "root")
    settings = Settings()
    _touch(root_dir / "landing" / "RPA" / "return.csv", b"organisation_code\nRPA\n", age_days=3)
    run = steps.open_run(root_dir, demo=True, settings=settings)
    root = run.root
    assert steps.files_waiting(root, as_of=None, settings=settings)
    assert not steps.files_waiting(root, as_of=(datetime.now(UTC) - timedelta(days=5)).date(), settings=settings)

    steps.ingest(run)  # archived, not yet staged: still work to do
    assert steps.files_waiting(root, as_of=None, settings=settings)
    m = run.archive.manifest
    m.loc[m["kind"] == "submission", "outcome"] = "accepted"
    run.archive.save()
    assert not steps.files_waiting(root, as_of=None, settings=settings)

    _touch(root_dir / "landing" / "RPA" / "return.csv", b"organisation_code\nRPA\nRPA\n", age_days=1)  # sent again
    assert steps.files_waiting(root, as_of=None, settings=settings)
