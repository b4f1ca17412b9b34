"""Landing and the immutable archive (SPEC 2, 3, 4).

A file is identified by the SHA-256 of its bytes. The first time a hash is seen, the
file is copied to ``raw/<hh>/<sha256><ext>`` (owner-only) and a manifest row records its
name, size and ``received_at`` (its modification time when first seen). A hash seen
before is never processed again. A small landing index remembers the hash of each
landing path by size and mtime, so unchanged files are not re-hashed every night.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG

import pandas as pd
import pyarrow as pa

from transforms.storage import fsync_dir, read_table_or_empty, write_table

MANIFEST_SCHEMA = pa.schema(
    [
        ("sha256", pa.string()),
        ("kind", pa.string()),  # submission | reference
        ("file_name", pa.string()),  # landing path relative to landing/, as first seen
        ("archive_path", pa.string()),  # relative to raw/
        ("size", pa.int64()),
        ("received_at", pa.timestamp("ms", tz="UTC")),
        ("first_seen_run", pa.string()),
        ("organisation_code", pa.string()),
        ("datasets", pa.string()),  # comma-separated dataset names
        ("outcome", pa.string()),  # pending | accepted | accepted_with_errors | rejected
        ("reason", pa.string()),
        ("rows_received", pa.int64()),
        ("rows_rejected", pa.int64()),
        ("retracted", pa.bool_()),
        ("retracted_reason", pa.string()),
    ]
)

# The same bytes sent again under another name: not processed again (SPEC 4), but the
# sender did send a return that month, so submission status counts it.
RESEND_SCHEMA = pa.schema(
    [("sha256", pa.string()), ("file_name", pa.string()), ("received_at", pa.timestamp("ms", tz="UTC"))]
)

LANDING_INDEX_SCHEMA = pa.schema(
    [("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("sha256", pa.string())]
)

IGNORED_PREFIXES = ("~$", ".~lock", ".")
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class LandingFile:
    path: Path
    rel: str
    size: int
    mtime_ns: int

    @property
    def modified_at(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns / 1e9, tz=UTC)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def display_name(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (a name made on another system) shown as U+FFFD.

    The manifest and every report hold this name; the file itself is read by its real path.
    """
    return os.fsencode(name).decode("utf-8", "replace")


def scan_landing(landing: Path, *, now: datetime, quiet_seconds: int, seen_until: datetime | None) -> list[LandingFile]:
    """Files in ``landing`` ready to take, oldest first.

    Office lock and temporary files and dot-files are ignored; a file modified in the
    last ``quiet_seconds`` may still be arriving and is left for the next run; with
    ``seen_until`` (``--as-of``), files modified after it are not seen.
    """
    found: list[LandingFile] = []
    for dirpath, dirnames, filenames in os.walk(landing):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(IGNORED_PREFIXES):
                continue
            path = Path(dirpath) / name
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if not S_ISREG(stat.st_mode):  # a pipe or device would hang the run that reads it
                continue
            modified = datetime.fromtimestamp(stat.st_mtime_ns / 1e9, tz=UTC)
            if (now - modified).total_seconds() < quiet_seconds:
                continue
            if seen_until is not None and modified > seen_until:
                continue
            found.append(LandingFile(path, display_name(path.relative_to(landing).as_posix()), stat.st_size,
                                     stat.st_mtime_ns))
    return sorted(found, key=lambda f: (f.mtime_ns, f.rel))


class Archive:
    """The manifest and archive under ``raw/``, and the landing index under ``state/``."""

    def __init__(self, raw: Path, state: Path) -> None:
        self.raw = raw
        self.manifest_path = raw / "manifest.parquet"
        self.index_path = state / "landing_index.parquet"
        self._unsynced_dirs: set[Path] = set()
        self.resends_path = raw / "resends.parquet"
        self.manifest = read_table_or_empty(self.manifest_path, MANIFEST_SCHEMA)
        self.index = read_table_or_empty(self.index_path, LANDING_INDEX_SCHEMA)
        self.resends = read_table_or_empty(self.resends_path, RESEND_SCHEMA)
        self._known = set(self.manifest["sha256"])
        self._sightings = set(zip(self.resends["sha256"], self.resends["file_name"], strict=True))
        self._sightings |= set(zip(self.manifest["sha256"], self.manifest["file_name"], strict=True))
        self._index = {
            r.path: (r.size, r.mtime_ns, r.sha256) for r in self.index.itertuples(index=False)
        }

    # Rows added and updates made are kept aside and applied in one go when the manifest is
    # next read: a pandas concat or .loc per file made a run over n files cost O(n^2).
    @property
    def manifest(self) -> pd.DataFrame:
        """One row per archived file (MANIFEST_SCHEMA's columns)."""
        if self._added or self._updates:
            self._apply_pending()
        return self._manifest

    @manifest.setter
    def manifest(self, frame: pd.DataFrame) -> None:
        self._manifest = frame
        self._added: list[dict] = []
        self._updates: dict[str, dict[str, object]] = {}

    def _apply_pending(self) -> None:
        if self._added:
            new = pd.DataFrame(self._added).astype({"received_at": "datetime64[ms, UTC]"})
            self._added = []
            self._manifest = new if self._manifest.empty else pd.concat([self._manifest, new], ignore_index=True)
        if self._updates:
            updates, self._updates = self._updates, {}
            shas = self._manifest["sha256"]
            for column in dict.fromkeys(c for values in updates.values() for c in values):
                by_sha = {sha: values[column] for sha, values in updates.items() if column in values}
                mask = shas.isin(list(by_sha))
                if mask.any():
                    self._manifest.loc[mask, column] = shas[mask].map(by_sha)

    def known(self, sha256: str) -> bool:
        return sha256 in self._known

    def indexed(self, file: LandingFile) -> bool:
        """Whether the landing index has this file with its size and mtime (so it was hashed before)."""
        cached = self._index.get(file.rel)
        return bool(cached) and cached[0] == file.size and cached[1] == file.mtime_ns

    def hash_of(self, file: LandingFile) -> str:
        """The file's SHA-256, from the index when size and mtime are unchanged."""
        cached = self._index.get(file.rel)
        if cached and cached[0] == file.size and cached[1] == file.mtime_ns:
            return cached[2]
        digest = sha256_file(file.path)
        self._index[file.rel] = (file.size, file.mtime_ns, digest)
        return digest

    def add_resend(self, file: LandingFile, sha256: str) -> bool:
        """Note known bytes arriving under a new name; True when this sighting is new."""
        if (sha256, file.rel) in self._sightings:
            return False
        self._sightings.add((sha256, file.rel))
        row = pd.DataFrame([{"sha256": sha256, "file_name": file.rel,
                             "received_at": pd.Timestamp(file.modified_at).tz_convert("UTC")}])
        row = row.astype({"received_at": "datetime64[ms, UTC]"})
        self.resends = row if self.resends.empty else pd.concat([self.resends, row], ignore_index=True)
        return True

    def archive_bytes_path(self, sha256: str, suffix: str) -> Path:
        return self.raw / sha256[:2] / f"{sha256}{suffix.lower()}"

    def add(self, source: Path, *, sha256: str, kind: str, file_name: str, received_at: datetime, run_id: str) -> Path:
        """Copy ``source`` into the archive (owner-only, fsynced) and add its manifest row."""
        target = self.archive_bytes_path(sha256, source.suffix)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(target.parent, 0o700)
            fd, tmp = tempfile.mkstemp(prefix=".incoming.", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                    shutil.copyfileobj(src, out, HASH_CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._unsynced_dirs.add(target.parent)  # fsynced once each, before the manifest is saved
        row = {
            "sha256": sha256,
            "kind": kind,
            "file_name": file_name,
            "archive_path": target.relative_to(self.raw).as_posix(),
            "size": target.stat().st_size,
            "received_at": pd.Timestamp(received_at).tz_convert("UTC"),
            "first_seen_run": run_id,
            "organisation_code": None,
            "datasets": "",
            "outcome": "pending",
            "reason": None,
            "rows_received": 0,
            "rows_rejected": 0,
            "retracted": False,
            "retracted_reason": None,
        }
        self._updates.pop(sha256, None)
        self._added.append(row)
        self._known.add(sha256)
        self._sightings.add((sha256, file_name))
        return target

    def path_of(self, sha256: str) -> Path:
        rel = self.manifest.loc[self.manifest["sha256"] == sha256, "archive_path"].iloc[0]
        return self.raw / rel

    def update(self, sha256: str, **values: object) -> None:
        self._updates.setdefault(sha256, {}).update(values)

    def save(self) -> None:
        """Persist the manifest (owner-only) and the landing index, each atomically."""
        for folder in sorted(self._unsynced_dirs):  # the archived files' names are durable first
            fsync_dir(folder)
        self._unsynced_dirs.clear()
        write_table(self.manifest, self.manifest_path, MANIFEST_SCHEMA, mode=0o600)
        write_table(self.resends, self.resends_path, RESEND_SCHEMA, mode=0o600)
        index = pd.DataFrame(
            [(p, s, m, h) for p, (s, m, h) in sorted(self._index.items())], columns=LANDING_INDEX_SCHEMA.names
        )
        write_table(index, self.index_path, LANDING_INDEX_SCHEMA)
