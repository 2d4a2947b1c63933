"""`ordo backup DIR` and `ordo restore DIR`: the instance's databases copied consistently while
servers run, with a manifest a restore checks first (`manifest.py`); PostgreSQL through
pg_dump and pg_restore (`postgres.py`), the embedded store through SQLite's backup API
(`sqlite.py`)."""

from __future__ import annotations

from pathlib import Path

from adapters.backup.manifest import BackupError, Manifest, verify_restored_log
from adapters.backup.postgres import backup_postgres, restore_postgres
from adapters.backup.sqlite import backup_sqlite, restore_sqlite
from adapters.config import Settings


def backup(settings: Settings, target: Path) -> Manifest:
    """The instance (ORDO_DATABASE_URL's schema, else ORDO_DATA_DIR) backed up into `target`."""
    if settings.database_url:
        return backup_postgres(settings.database_url, target)
    return backup_sqlite(settings.data_dir, target)


def restore(settings: Settings, source: Path) -> Manifest:
    """The backup in `source` restored into the instance's empty database, and checked."""
    if settings.database_url:
        return restore_postgres(settings.database_url, source)
    return restore_sqlite(source, settings.data_dir)


__all__ = ["BackupError", "Manifest", "backup", "restore", "verify_restored_log"]
