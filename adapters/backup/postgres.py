"""`ordo backup` and `ordo restore` on PostgreSQL.

A backup is `pg_dump` of ordo's schema (every table: the event log, its side tables, the read
models, the outbox, the access log, the catalogue), taken in the snapshot of one REPEATABLE
READ transaction that also counts each table's rows and reads the log for the manifest, so
the dump and the manifest describe one instant while servers keep writing. A restore checks
the manifest's files, refuses a schema that already holds tables, runs `pg_restore` in one
transaction, then checks the restored rows and log against the manifest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

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
from adapters.postgres import asyncpg_target

DUMP = "ordo.dump"
SERVERS = Path("/usr/lib/postgresql")
STORE = "postgresql"


def client_tool(name: str) -> str:
    """`pg_dump` or `pg_restore` of the newest PostgreSQL installed (a dump needs one at least
    as new as the server), else the one on PATH."""
    installed = sorted(SERVERS.glob(f"*/bin/{name}"), key=lambda path: int(path.parts[-3]))
    found = str(installed[-1]) if installed else shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL's client programs)")
    return found


def backup_postgres(database_url: str, target: Path) -> Manifest:
    dsn, schema = asyncpg_target(database_url)
    target.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(dsn) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot = _one(conn, "SELECT pg_export_snapshot()")
        tables = _table_rows(conn, schema)
        if EVENTS_TABLE not in tables:
            raise BackupError(f"schema {schema} holds no event log: nothing to back up")
        server, password = _for_clients(dsn)
        _run(
            client_tool("pg_dump"),
            *(f"--dbname={server}", f"--schema={schema}", f"--snapshot={snapshot}"),
            *("--format=custom", "--no-owner", "--no-privileges", f"--file={target / DUMP}"),
            password=password,
        )
        log = summarised(_log_rows(conn, schema))
    manifest = Manifest(
        store=STORE,
        created_at=now(),
        schema=schema,
        log=log,
        tables=tables,
        files={DUMP: file_entry(target / DUMP)},
    )
    write_manifest(target, manifest)
    return manifest


def restore_postgres(database_url: str, source: Path) -> Manifest:
    manifest = checked_manifest(source, STORE)
    dsn, schema = asyncpg_target(database_url)
    if manifest.schema != schema:
        msg = f"the backup holds schema {manifest.schema}; ORDO_DATABASE_URL names {schema}"
        raise BackupError(msg)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if held := _table_rows(conn, schema):
            msg = f"schema {schema} already holds {len(held)} tables: restore into an empty one"
            raise BackupError(msg)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    restore, (server, password) = client_tool("pg_restore"), _for_clients(dsn)
    with tempfile.NamedTemporaryFile("w", suffix=".list") as contents:
        contents.write(_without_the_schema(_run(restore, "--list", str(source / DUMP))))
        contents.flush()
        _run(
            restore,
            *(f"--dbname={server}", "--single-transaction", "--exit-on-error"),
            *("--no-owner", "--no-privileges", f"--use-list={contents.name}", str(source / DUMP)),
            password=password,
        )
    with psycopg.connect(dsn) as conn:
        verify_tables(_table_rows(conn, schema), manifest)
        verify_restored_log(_log_rows(conn, schema), manifest)
    return manifest


def discard_postgres(database_url: str) -> None:
    """What a refused restore left in the instance's schema, dropped: the schema is empty again
    (its tables, and the functions the event store created)."""
    dsn, schema = asyncpg_target(database_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def _one(conn: psycopg.Connection[Any], query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _table_rows(conn: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    names = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", [schema]
    ).fetchall()
    counts = {}
    for (name,) in names:
        table = sql.Identifier(schema, str(name))
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        counts[str(name)] = int(row[0]) if row else 0
    return counts


def _log_rows(conn: psycopg.Connection[Any], schema: str) -> Iterator[LogRow]:
    query = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM {} ORDER BY notification_id"
    ).format(sql.Identifier(schema, EVENTS_TABLE))
    with conn.cursor(name="ordo_backup_log") as cursor:
        cursor.itersize = 5_000
        cursor.execute(query)
        for position, stream, version, topic, state in cursor:
            yield int(position), str(stream), int(version), str(topic), bytes(state)


def _without_the_schema(contents: str) -> str:
    """pg_restore's list of what the dump holds, but for the schema itself: the restore
    creates it unless it is there (empty, or `public`, which every database has)."""
    return "".join(line for line in contents.splitlines(keepends=True) if not _schema(line))


def _schema(entry: str) -> bool:
    """`4; 2615 2200 SCHEMA - public owner`, or its `COMMENT - SCHEMA public`."""
    words = entry.split()
    return words[3:4] == ["SCHEMA"] or words[3:6] == ["COMMENT", "-", "SCHEMA"]


def _for_clients(dsn: str) -> tuple[str, str | None]:
    """The connection string the client programs are given on their command line, which anyone
    on the machine may read, and the password they are given in their environment instead."""
    parameters = conninfo_to_dict(dsn)
    password = parameters.pop("password", None)
    return make_conninfo("", **parameters), None if password is None else str(password)


def _run(*command: str, password: str | None = None) -> str:
    env = {**os.environ, "PGPASSWORD": password} if password else None
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    if done.returncode != 0:
        what = Path(command[0]).name
        raise BackupError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout
