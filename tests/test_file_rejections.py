"""File-level rejections (SPEC 3, 3.4), end to end: a real broken file, made here, goes
through ``stage_file`` and is rejected as a whole with one clear line; and through the
run's own ingest and stage steps it is still archived, listed in the manifest with that
reason and quarantined with it.

``tests/test_read.py`` covers the reader's detection in detail; this file checks what a
sender and an analyst see.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from tests.helpers import corrupt_member, workbook
from transforms import run as run_steps
from transforms.staging import NO_DATASET, stage_file

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
ENROLMENT = ["organisation_code", "staff_id", "profession", "service_area", "cohort_code", "enrolment_date", "status"]


# --- Making broken files -----------------------------------------------------------------------


def good_return(path: Path, rows: int = 60) -> Path:
    body = [["RPA", f"S{i:04d}", "Nursing", "Acute", "C25A", "01/04/2025", "Active"] for i in range(rows)]
    return workbook(path, {"Return": [ENROLMENT, *body]})


def compound_file(streams: dict[str, bytes]) -> bytes:
    """An OLE2 compound file (the container of .xls files and of password-protected
    workbooks): version 3, 512-byte sectors. A stream shorter than the 4096-byte
    mini-stream cutoff is padded with zeros to it, so every stream lives in regular sectors
    (no mini stream to write)."""
    free, end, fat_sector, no_stream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    names = sorted(streams, key=lambda n: (len(n), n.upper()))  # the directory's ordering
    streams = {n: streams[n].ljust(4096, b"\0") for n in names}
    data = {n: streams[n].ljust(-(-len(streams[n]) // 512) * 512, b"\0") for n in names}
    entries = 1 + len(names)
    dir_sectors = -(-entries // 4)
    fat = [fat_sector] + [end if i == dir_sectors - 1 else 2 + i for i in range(dir_sectors)]
    starts = {}
    for n in names:
        count = len(data[n]) // 512
        starts[n] = len(fat)
        fat += [len(fat) + i + 1 for i in range(count - 1)] + [end]
    assert len(fat) <= 128, "one FAT sector is enough for a test file"
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return (encoded.ljust(64, b"\0") + struct.pack("<HBB", len(encoded), kind, 1)
                + struct.pack("<III", no_stream, right, child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
                + struct.pack("<IQ", start, size))

    directory = entry("Root Entry", 5, 1 if names else no_stream, no_stream, end, 0)
    for i, n in enumerate(names, start=1):
        directory += entry(n, 2, no_stream, i + 1 if i < len(names) else no_stream, starts[n], len(streams[n]))
    unused = b"\0" * 64 + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", no_stream, no_stream, no_stream) + b"\0" * 48
    directory += unused * (dir_sectors * 4 - entries)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + directory + b"".join(data[n] for n in names)


def make(kind: str, folder: Path) -> Path:
    """The broken file of ``kind`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        data = good_return(folder / "whole.xlsx").read_bytes()
        (folder / "whole.xlsx").unlink()
        path = folder / "truncated.xlsx"
        path.write_bytes(data[: len(data) // 2])
        return path
    if kind == "corrupt sheet":
        return corrupt_member(good_return(folder / "corrupt.xlsx"), "xl/worksheets/sheet1.xml",
                              b"<worksheet><sheetData><row r=1><c r=")
    if kind in ("encrypted xlsx", "encrypted xlsm"):
        # What Excel writes for a workbook with a password to open: a compound file holding
        # the encryption parameters and the encrypted package, nothing readable.
        suffix = kind.split()[-1]
        path = folder / f"protected.{suffix}"
        path.write_bytes(compound_file({
            "EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00" + suffix.encode() * 100,
            "EncryptedPackage": struct.pack("<Q", 12000) + bytes(range(256)) * 40,
        }))
        return path
    if kind == "empty":
        path = folder / "empty.xlsx"
        path.write_bytes(b"")
        return path
    if kind == "no cells":
        path = folder / "blank.xlsx"
        openpyxl.Workbook().save(path)
        return path
    if kind == "blank csv":
        path = folder / "blank.csv"
        path.write_text(",,,\n\n,,\n")
        return path
    if kind == "pdf named xlsx":
        path = folder / "return.xlsx"
        path.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
        return path
    if kind == "word named xlsx":
        path = folder / "letter.xlsx"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("[Content_Types].xml", "<Types/>")
            z.writestr("word/document.xml", "<w:document/>")
        return path
    if kind == "image named csv":
        path = folder / "chart.csv"
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
        return path
    if kind == "web page named xls":
        path = folder / "export.xls"
        path.write_text("<html><body><table><tr><td>staff_id</td></tr></table></body></html>")
        return path
    if kind == "utf-16 csv":
        path = folder / "unicode.csv"
        path.write_bytes("staff_id,cohort_code\nS1,C25A\n".encode("utf-16"))
        return path
    if kind in ("pdf", "docx", "txt", "no extension", "ods"):
        name = {"no extension": "return", "txt": "notes.txt"}.get(kind, f"return.{kind}")
        path = folder / name
        path.write_bytes(f"not accepted: {kind}\n".encode())
        return path
    if kind == "legacy xls":
        # An Excel 97-2003 container whose Workbook stream is not a readable BIFF workbook.
        path = folder / "old.xls"
        path.write_bytes(compound_file({"Workbook": b"\x09\x08\x10\x00\x00\x06\x05\x00" + b"\xff" * 3000}))
        return path
    if kind == "no dataset":
        path = folder / "instructions.xlsx"
        return workbook(path, {
            "Instructions": [["How to fill in the return"], [], ["One row per participant per cohort."]],
            "Lists": [["Profession", "Status"], ["Nursing", "Active"], ["Medical", "Completed"]],
            "Old return": [ENROLMENT, ["RPA", "S0001", "Nursing", "Acute", "C25A", "01/04/2025", "Active"]],
        }, hidden=("Old return",))
    if kind == "missing columns":
        path = folder / "enrolment.xlsx"
        rows = [["organisation_code", "staff_id", "cohort_code", "enrolment_date"], ["RPA", "S1", "C25A", "01/04/2025"]]
        return workbook(path, {"Staff": rows})
    if kind == "csv missing a column":
        path = folder / "measures.csv"
        path.write_text("project_id,measure_name,value\nSET-2025-001,Falls,3\n")
        return path
    if kind == "zip bomb":
        path = folder / "bomb.xlsx"
        chunk = b"\0" * (1 << 20)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr("xl/workbook.xml", "<workbook/>")
            with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
                for _ in range(60):  # 60 MB of zeros in about 60 KB
                    f.write(chunk)
        return path
    raise ValueError(kind)


# Kind of broken file -> words its one-line reason must contain.
CASES = {
    "truncated": "damaged or incomplete",
    "corrupt sheet": "damaged",
    "encrypted xlsx": "password-protected",
    "encrypted xlsm": "password-protected",
    "empty": "empty (0 bytes)",
    "no cells": "no data in it",
    "blank csv": "no data in it",
    "pdf named xlsx": "PDF document, not a spreadsheet",
    "word named xlsx": "not an Excel workbook",
    "image named csv": "not a text CSV file",
    "web page named xls": "web page",
    "utf-16 csv": "UTF-16",
    "pdf": "Files of type .pdf are not accepted",
    "docx": "Files of type .docx are not accepted",
    "ods": "Files of type .ods are not accepted",
    "txt": "Files of type .txt are not accepted",
    "no extension": "Files of type (no extension) are not accepted",
    "legacy xls": "old-style Excel 97-2003 workbook",
    "no dataset": NO_DATASET,
    "missing columns": "looks like an enrolment return but has no Profession, Service Area or Status column",
    "csv missing a column": "The file looks like a measure data but has no Period column",
    "zip bomb": "zip bomb",
}


@pytest.mark.parametrize("kind", CASES)
def test_rejected_whole_with_one_clear_line(tmp_path, kind):
    path = make(kind, tmp_path)
    staged = stage_file(path, sha256="0" * 64)
    assert staged.tables == {} and staged.issues == []
    assert staged.rejection and "\n" not in staged.rejection and len(staged.rejection) < 300
    assert CASES[kind] in staged.rejection


def test_only_a_hidden_sheet_with_a_dataset_is_no_dataset(tmp_path):
    staged = stage_file(make("no dataset", tmp_path), sha256="0" * 64)
    assert dict(staged.skipped_sheets) == {"Instructions": "no recognisable dataset (instructions or lists?)",
                                           "Lists": "no recognisable dataset (instructions or lists?)",
                                           "Old return": "hidden sheet"}


def test_the_zip_bomb_is_refused_before_it_is_opened(tmp_path):
    path = make("zip bomb", tmp_path)
    assert path.stat().st_size < 1024**2
    start = time.perf_counter()
    stage_file(path, sha256="0" * 64)
    assert time.perf_counter() - start < 0.5


def test_a_workbook_too_large_in_total_is_refused(tmp_path, monkeypatch):
    import transforms.read as read

    monkeypatch.setattr(read, "MAX_UNCOMPRESSED_BYTES", 20_000)
    staged = stage_file(good_return(tmp_path / "big.xlsx", rows=400), sha256="0" * 64)
    assert staged.tables == {} and "too large to process" in staged.rejection


def test_the_compound_files_made_here_are_well_formed(tmp_path):
    # The reader would reject a malformed container too; check the layout the way a
    # compound-file reader walks it, so the encrypted and legacy cases test what they say.
    data = compound_file({"EncryptionInfo": b"i" * 10, "EncryptedPackage": b"p" * 5000})
    assert len(data) % 512 == 0
    fat = struct.unpack("<128I", data[512:1024])
    first_dir = struct.unpack("<I", data[48:52])[0]
    directory = data[512 * (first_dir + 1): 512 * (first_dir + 2)]
    found = {}
    for i in range(4):
        raw = directory[i * 128:(i + 1) * 128]
        length, kind = struct.unpack("<HB", raw[64:67])
        if kind != 2:
            continue
        name = raw[: length - 2].decode("utf-16-le")
        start, size = struct.unpack("<IQ", raw[116:128])
        chain, sector = [], start
        while sector != 0xFFFFFFFE:
            chain.append(data[512 * (sector + 1): 512 * (sector + 2)])
            sector = fat[sector]
        found[name] = b"".join(chain)[:size]
    assert found == {"EncryptionInfo": b"i" * 10 + b"\0" * 4086, "EncryptedPackage": b"p" * 5000}


# --- Through the run: archived, listed with the reason, quarantined --------------------------


def test_every_rejected_file_is_archived_and_listed_with_its_reason(tmp_path, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(REFERENCE_DIR, root / "reference")
    sender = root / "landing" / "RPA"
    made = {}
    for kind in CASES:
        path = make(kind, tmp_path / "made" / kind.replace(" ", "_"))
        target = sender / f"{kind.replace(' ', '_')}__{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        made[target.relative_to(root / "landing").as_posix()] = kind
    an_hour_ago = time.time() - 3600
    for path in sender.iterdir():
        os.utime(path, (an_hour_ago, an_hour_ago))
    monkeypatch.delenv("QI_DATA_DIR", raising=False)
    monkeypatch.setenv("QI_QUIET_SECONDS", "0")

    run = run_steps.open_run(root, demo=True)
    run_steps.ingest(run)
    run_steps.stage(run)

    manifest = run.archive.manifest
    submissions = manifest[manifest["kind"] == "submission"].set_index("file_name")
    assert len(made) == len(CASES)
    assert set(submissions.index) == set(made)  # nothing lost (every file differs, so none is a repeat)
    for file_name, kind in made.items():
        row = submissions.loc[file_name]
        assert row["outcome"] == "rejected", file_name
        assert CASES[kind] in row["reason"] and "\n" not in row["reason"]
        assert row["organisation_code"] == "RPA"  # no readable rows: the sender's folder
        archived = root / "raw" / row["archive_path"]
        assert archived.read_bytes() == (root / "landing" / file_name).read_bytes()
        assert archived.stat().st_mode & 0o077 == 0
        quarantined = root / "quarantine" / row["sha256"] / "REJECTED.txt"
        assert f"reason: {row['reason']}" in quarantined.read_text()
        assert quarantined.stat().st_mode & 0o077 == 0
