"""A backup's manifest (what it holds: each file's size and SHA-256, each table's rows, the
log's length, head and digest) and the checks a restore makes with it: the files first, then
the restored log."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from adapters.legacy import LEGACY_TOPICS
from adapters.storedevents import EventMapper

FORMAT = "ordo-backup/1"
MANIFEST = "manifest.json"
CHUNK = 1 << 20

# A row of the event log as both stores give it: position, stream, version, topic, state.
LogRow = tuple[int, str, int, str, bytes]


class BackupError(Exception):
    """A backup that cannot be taken, or restored (damaged, incomplete, of the other store,
    into a target that is not empty); said before anything is restored, but for a restored
    log found different from the manifest's."""


class FileEntry(msgspec.Struct, frozen=True):
    size: int
    sha256: str


class LogSummary(msgspec.Struct, frozen=True):
    """The event log as backed up: its rows, its last position, and a SHA-256 over every row
    in position order (position, stream, version, topic, state)."""

    events: int
    head: int
    digest: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    format: str = FORMAT
    store: str  # "postgresql" or "sqlite"
    created_at: str
    log: LogSummary
    tables: dict[str, int]  # rows per table
    files: dict[str, FileEntry]
    schema: str | None = None  # PostgreSQL: the schema backed up


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_entry(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return FileEntry(size=path.stat().st_size, sha256=digest.hexdigest())


def write_manifest(directory: Path, manifest: Manifest) -> None:
    (directory / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))


def checked_manifest(directory: Path, store: str) -> Manifest:
    """The manifest of the backup in `directory`, once every file it lists is there whole
    (its size and SHA-256 as written); BackupError otherwise."""
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupError(f"{directory} holds no {MANIFEST}: not an ordo backup")
    try:
        manifest = msgspec.json.decode(path.read_bytes(), type=Manifest)
    except msgspec.DecodeError as error:
        raise BackupError(f"{path} cannot be read: {error}") from error
    if manifest.format != FORMAT or manifest.store != store:
        msg = f"{directory} is a {manifest.format} backup of {manifest.store}, not of {store}"
        raise BackupError(msg)
    for name, expected in manifest.files.items():
        _check_file(directory / name, expected)
    return manifest


def _check_file(path: Path, expected: FileEntry) -> None:
    if not path.is_file():
        raise BackupError(f"{path} is missing from the backup")
    found = file_entry(path)
    if found.size != expected.size:
        msg = f"{path} is {found.size} bytes, the manifest says {expected.size}: truncated?"
        raise BackupError(msg)
    if found.sha256 != expected.sha256:
        raise BackupError(f"{path} does not match its SHA-256 in the manifest: altered")


class LogReader:
    """Reads the log row by row, in position order: checks that every row decodes, positions
    rise and each stream's versions run 1, 2, 3… with no gap, and sums it up."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._versions: dict[str, int] = {}
        self._mapper = EventMapper()
        self.events = 0
        self.head = 0

    def read(self, rows: Iterable[LogRow]) -> None:
        for row in rows:
            self.add(row)

    def add(self, row: LogRow) -> None:
        position, stream, version, topic, state = row
        if position <= self.head:
            raise BackupError(f"position {position} comes after {self.head}: out of order")
        if version != self._versions.get(stream, 0) + 1:
            msg = f"stream {stream} jumps to version {version} at position {position}"
            raise BackupError(msg)
        self._decode(position, topic, state)
        self._versions[stream] = version
        self._digest.update(f"{position}\t{stream}\t{version}\t{topic}\t{len(state)}\n".encode())
        self._digest.update(state)
        self.events += 1
        self.head = position

    def _decode(self, position: int, topic: str, state: bytes) -> None:
        try:
            if self._mapper.is_prescription_event(topic):
                self._mapper.decode(topic, state)
            elif topic in LEGACY_TOPICS:
                msgspec.json.decode(state)
            else:
                self._mapper.coverage(topic, state)  # a topic of neither kind: KeyError
        except (KeyError, ValueError, msgspec.DecodeError, msgspec.ValidationError) as error:
            raise BackupError(
                f"the event at position {position} ({topic}) does not decode"
            ) from error

    def summary(self) -> LogSummary:
        return LogSummary(events=self.events, head=self.head, digest=self._digest.hexdigest())


def summarised(rows: Iterable[LogRow]) -> LogSummary:
    reader = LogReader()
    reader.read(rows)
    return reader.summary()


def verify_restored_log(rows: Iterable[LogRow], manifest: Manifest) -> None:
    """The restored log is the one backed up: every row decodes, positions rise, each stream's
    versions have no gap, and its length, head and digest are the manifest's. Every check of
    a restored log is called from here."""
    restored = summarised(rows)
    if restored != manifest.log:
        msg = f"the restored log ({restored}) is not the one backed up ({manifest.log})"
        raise BackupError(msg)


def verify_tables(found: dict[str, int], manifest: Manifest) -> None:
    if found != manifest.tables:
        differing = sorted(
            name
            for name in found.keys() | manifest.tables.keys()
            if found.get(name) != manifest.tables.get(name)
        )
        raise BackupError(f"restored rows differ from the backup's in {', '.join(differing)}")
