"""Catalogue snapshots in the embedded default: `catalogue.sqlite3` under ORDO_DATA_DIR.

A file of its own (not the views' file) so that an import's writes never wait for, nor delay,
the projection runner's transactions. WAL mode: servers keep reading while an import writes.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import anyio.to_thread
import msgspec

from adapters.catalogue.store import FileCount, NewSnapshot, PackRow, SnapshotInfo
from adapters.readmodels.sqlite import Connection

FILE = "catalogue.sqlite3"
PAGE = 5_000
DDL = [
    "CREATE TABLE IF NOT EXISTS ordo_catalogue_snapshots ("
    "snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, "
    "content_hash TEXT, snapshot_date TEXT, imported_at TEXT, source TEXT, packs INTEGER, "
    "files BLOB, malformed BLOB)",
    "CREATE TABLE IF NOT EXISTS ordo_catalogue_packs (snapshot_id INTEGER NOT NULL, "
    "cip13 TEXT NOT NULL, cis TEXT NOT NULL, label TEXT NOT NULL, facts BLOB NOT NULL, "
    "PRIMARY KEY (snapshot_id, cip13))",
    "CREATE TABLE IF NOT EXISTS ordo_catalogue_current (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "snapshot_id INTEGER NOT NULL)",
]
SNAPSHOT_COLUMNS = (
    "snapshot_id, content_hash, snapshot_date, imported_at, source, packs, files, malformed"
)


class SqliteCatalogue:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE
        self.db = Connection(self.path)

    async def create(self) -> None:
        def create(cur: sqlite3.Cursor) -> None:
            for statement in DDL:
                cur.execute(statement)

        await self.db.run(create, write=True)

    async def close(self) -> None:
        self.db.close()

    @asynccontextmanager
    async def importing(self) -> AsyncIterator[None]:
        """A file lock: the kernel frees it when the importing process dies, however."""
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    async def current_id(self) -> int | None:
        def current(cur: sqlite3.Cursor) -> int | None:
            row = cur.execute("SELECT snapshot_id FROM ordo_catalogue_current").fetchone()
            return None if row is None else int(row[0])

        return await self.db.run(current)

    async def current(self) -> SnapshotInfo | None:
        def current(cur: sqlite3.Cursor) -> SnapshotInfo | None:
            row = cur.execute(
                f"SELECT {SNAPSHOT_COLUMNS} FROM ordo_catalogue_snapshots "  # noqa: S608
                "WHERE snapshot_id = (SELECT snapshot_id FROM ordo_catalogue_current)"
            ).fetchone()
            return None if row is None else _info(row)

        return await self.db.run(current)

    async def loading(self) -> list[int]:
        def loading(cur: sqlite3.Cursor) -> list[int]:
            rows = cur.execute(
                "SELECT snapshot_id FROM ordo_catalogue_snapshots WHERE status = 'loading'"
            )
            return [int(row[0]) for row in rows]

        return await self.db.run(loading)

    async def begin(self) -> int:
        def begin(cur: sqlite3.Cursor) -> int:
            cur.execute("INSERT INTO ordo_catalogue_snapshots (status) VALUES ('loading')")
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self.db.run(begin, write=True)

    async def add_packs(self, snapshot_id: int, rows: Sequence[PackRow]) -> None:
        def add(cur: sqlite3.Cursor) -> None:
            cur.executemany(
                "INSERT INTO ordo_catalogue_packs (snapshot_id, cip13, cis, label, facts) "
                "VALUES (?, ?, ?, ?, ?)",
                [(snapshot_id, *row) for row in rows],
            )

        await self.db.run(add, write=True)

    async def publish(self, snapshot_id: int, snapshot: NewSnapshot) -> None:
        def publish(cur: sqlite3.Cursor) -> None:
            cur.execute(
                "UPDATE ordo_catalogue_snapshots SET status = 'ready', content_hash = ?, "
                "snapshot_date = ?, imported_at = ?, source = ?, packs = ?, files = ?, "
                "malformed = ? WHERE snapshot_id = ?",
                (
                    snapshot.content_hash,
                    snapshot.snapshot_date.isoformat(),
                    datetime.now(UTC).isoformat(),
                    snapshot.source,
                    snapshot.packs,
                    msgspec.json.encode(snapshot.files),
                    msgspec.json.encode(snapshot.malformed),
                    snapshot_id,
                ),
            )
            cur.execute(
                "INSERT INTO ordo_catalogue_current (id, snapshot_id) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET snapshot_id = excluded.snapshot_id",
                (snapshot_id,),
            )

        await self.db.run(publish, write=True)

    async def prune(self) -> int:
        def prune(cur: sqlite3.Cursor) -> int:
            kept = "(SELECT snapshot_id FROM ordo_catalogue_current)"
            cur.execute(
                "DELETE FROM ordo_catalogue_packs WHERE snapshot_id NOT IN "  # noqa: S608
                f"{kept} OR NOT EXISTS (SELECT 1 FROM ordo_catalogue_current)"
            )
            cur.execute(
                "DELETE FROM ordo_catalogue_snapshots WHERE snapshot_id NOT IN "  # noqa: S608
                f"{kept} OR NOT EXISTS (SELECT 1 FROM ordo_catalogue_current)"
            )
            return cur.rowcount

        # The freed pages are reused by the next import: the file stays about two snapshots big.
        return await self.db.run(prune, write=True)

    async def packs(self, snapshot_id: int) -> AsyncIterator[list[bytes]]:
        after = ""
        while True:
            page = await self.db.run(partial(_page, snapshot_id=snapshot_id, after=after))
            if not page:
                return
            after = page[-1][0]
            yield [facts for _, facts in page]


def _page(cur: sqlite3.Cursor, *, snapshot_id: int, after: str) -> list[tuple[str, bytes]]:
    rows = cur.execute(
        "SELECT cip13, facts FROM ordo_catalogue_packs WHERE snapshot_id = ? AND cip13 > ? "
        "ORDER BY cip13 LIMIT ?",
        (snapshot_id, after, PAGE),
    )
    return [(str(cip13), bytes(facts)) for cip13, facts in rows]


def _info(row: tuple[object, ...]) -> SnapshotInfo:
    snapshot_id, content_hash, day, imported_at, source, packs, files, malformed = row
    return SnapshotInfo(
        snapshot_id=int(str(snapshot_id)),
        content_hash=str(content_hash),
        snapshot_date=date.fromisoformat(str(day)),
        imported_at=datetime.fromisoformat(str(imported_at)),
        source=str(source),
        packs=int(str(packs)),
        files=msgspec.json.decode(_bytes(files), type=tuple[FileCount, ...]),
        malformed=msgspec.json.decode(_bytes(malformed), type=tuple[str, ...]),
    )


def _bytes(value: object) -> bytes:
    assert isinstance(value, bytes)
    return value
