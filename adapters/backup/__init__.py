"""`ordo backup DIR` and `ordo restore DIR`: the instance's databases copied consistently while
servers run, with a manifest a restore checks first (`manifest.py`); PostgreSQL through
pg_dump and pg_restore (`postgres.py`), the embedded store through SQLite's backup API
(`sqlite.py`). A restored log must keep its hash chain (`adapters.verify`), else the restore is
undone: a backup taken from an altered log never serves."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.backup.manifest import BackupError, Manifest, verify_restored_log
from adapters.backup.postgres import backup_postgres, discard_postgres, restore_postgres
from adapters.backup.sqlite import backup_sqlite, discard_sqlite, restore_sqlite
from adapters.config import Settings
from adapters.verify import chain_break


def backup(settings: Settings, target: Path) -> Manifest:
    """The instance (ORDO_DATABASE_URL's schema, else ORDO_DATA_DIR) backed up into `target`."""
    if settings.database_url:
        return backup_postgres(settings.database_url, target)
    return backup_sqlite(settings.data_dir, target)


def restore(settings: Settings, source: Path) -> Manifest:
    """The backup in `source` restored into the instance's empty database, and checked: its
    manifest first, then its rows, then the log's hash chain (undone if it breaks)."""
    if settings.database_url:
        manifest = restore_postgres(settings.database_url, source)
    else:
        manifest = restore_sqlite(source, settings.data_dir)
    broken = asyncio.run(chain_break(settings))
    if broken is not None:
        if settings.database_url:
            discard_postgres(settings.database_url)
        else:
            discard_sqlite(settings.data_dir, manifest)
        msg = (
            f"the backed-up log's hash chain breaks at position {broken.position} "
            f"({broken.reason}): the log was altered before the backup; nothing restored"
        )
        raise BackupError(msg)
    return manifest


__all__ = ["BackupError", "Manifest", "backup", "restore", "verify_restored_log"]
