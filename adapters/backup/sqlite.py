"""`ordo backup` and `ordo restore` on the embedded store: every SQLite database of the data
directory copied with SQLite's online backup API (each copy consistent while servers write),
the event log last, so the read models' and the mailer's positions never pass the log's.
A restore checks the manifest's files and the log, then moves the databases into an empty
data directory."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from adapters.backup.manifest import (
    BackupError,
    LogRow,
    Manifest,
    checked_manifest,
    file_entry,
    now,
    summarised,
    verify_restored_log,
    verify_tables,
    write_manifest,
)
from adapters.eventtable import EVENTS_TABLE

LOG = "ordo.sqlite3"
STORE = "sqlite"
RESTORING = ".restoring"


def databases_of(data_dir: Path) -> list[Path]:
    """The data directory's databases, the event log's last."""
    return sorted(data_dir.glob("*.sqlite3"), key=lambda path: (path.name == LOG, path.name))


def backup_sqlite(data_dir: Path, target: Path) -> Manifest:
    databases = databases_of(data_dir)
    if not databases or databases[-1].name != LOG:
        raise BackupError(f"{data_dir} holds no {LOG}: nothing to back up")
    target.mkdir(parents=True, exist_ok=True)
    for database in databases:
        _copy(database, target / database.name)
    copies = [target / database.name for database in databases]
    manifest = Manifest(
        store=STORE,
        created_at=now(),
        log=summarised(_log_rows(target / LOG)),
        tables=_table_rows(copies),
        files={copy.name: file_entry(copy) for copy in copies},
    )
    write_manifest(target, manifest)
    return manifest


def restore_sqlite(source: Path, data_dir: Path) -> Manifest:
    manifest = checked_manifest(source, STORE)
    if held := databases_of(data_dir):
        names = ", ".join(path.name for path in held)
        raise BackupError(f"{data_dir} already holds {names}: restore into an empty one")
    staging = data_dir / RESTORING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in manifest.files:
            shutil.copyfile(source / name, staging / name)
        copies = [staging / name for name in manifest.files]
        verify_tables(_table_rows(copies), manifest)
        verify_restored_log(_log_rows(staging / LOG), manifest)
        for copy in copies:
            copy.replace(data_dir / copy.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def discard_sqlite(data_dir: Path, manifest: Manifest) -> None:
    """The databases a refused restore put in `data_dir`, deleted: it is empty again."""
    for name in manifest.files:
        (data_dir / name).unlink(missing_ok=True)


def _copy(database: Path, copy: Path) -> None:
    copy.unlink(missing_ok=True)
    with closing(sqlite3.connect(database)) as live, closing(sqlite3.connect(copy)) as out:
        live.backup(out)


def _table_rows(databases: list[Path]) -> dict[str, int]:
    """Rows per table, named `file:table`."""
    counts = {}
    for database in databases:
        with closing(sqlite3.connect(database)) as conn:
            names = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
            for (name,) in names:
                (rows,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # noqa: S608
                counts[f"{database.name}:{name}"] = int(rows)
    return counts


def _log_rows(database: Path) -> Iterator[LogRow]:
    with closing(sqlite3.connect(database)) as conn:
        rows = conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {EVENTS_TABLE} ORDER BY rowid"
        )
        for position, stream, version, topic, state in rows:
            yield int(position), str(stream), int(version), str(topic), bytes(state)
