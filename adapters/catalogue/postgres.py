# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""Catalogue snapshots on PostgreSQL, in the instance's schema, through asyncpg.

Packs go in with COPY; switching the snapshot in force is one short transaction, so a server
reading `ordo_catalogue_current` sees the old snapshot or the new one. The import holds a
session-level advisory lock: it dies with the importing process's connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from adapters.catalogue.store import FileCount, NewSnapshot, PackRow, SnapshotInfo
from adapters.locks import lock_key
from adapters.postgres import open_pool

PAGE = 5_000


class PostgresCatalogue:
    def __init__(self, pool: asyncpg.Pool, schema: str, *, owns_pool: bool = False) -> None:
        self.pool = pool
        self.schema = schema
        self._owns_pool = owns_pool
        s = f'"{schema}"'
        self._snapshots = f"{s}.ordo_catalogue_snapshots"
        self._packs = f"{s}.ordo_catalogue_packs"
        self._current = f"{s}.ordo_catalogue_current"

    @classmethod
    async def connect(cls, database_url: str, pool_size: int = 2) -> PostgresCatalogue:
        pool, schema = await open_pool(database_url, pool_size)
        return cls(pool, schema, owns_pool=True)

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(self.schema, "catalogue-ddl")
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._snapshots} ("
                "snapshot_id bigserial PRIMARY KEY, status text NOT NULL, content_hash text, "
                "snapshot_date date, imported_at timestamptz, source text, packs int, "
                "files jsonb, malformed jsonb)"
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._packs} (snapshot_id bigint NOT NULL, "
                "cip13 text NOT NULL, cis text NOT NULL, label text NOT NULL, "
                "facts bytea NOT NULL, PRIMARY KEY (snapshot_id, cip13))"
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._current} ("
                "id int PRIMARY KEY CHECK (id = 1), snapshot_id bigint NOT NULL)"
            )

    async def close(self) -> None:
        if self._owns_pool:
            await self.pool.close()

    @asynccontextmanager
    async def importing(self) -> AsyncIterator[None]:
        async with self.pool.acquire() as conn:
            key = lock_key(self.schema, "catalogue-import")
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)

    async def current_id(self) -> int | None:
        value = await self.pool.fetchval(f"SELECT snapshot_id FROM {self._current}")
        return None if value is None else int(value)

    async def current(self) -> SnapshotInfo | None:
        row = await self.pool.fetchrow(
            "SELECT snapshot_id, content_hash, snapshot_date, imported_at, source, packs, "
            f"files::text, malformed::text FROM {self._snapshots} "
            f"WHERE snapshot_id = (SELECT snapshot_id FROM {self._current})"
        )
        if row is None:
            return None
        return SnapshotInfo(
            snapshot_id=row["snapshot_id"],
            content_hash=row["content_hash"],
            snapshot_date=row["snapshot_date"],
            imported_at=row["imported_at"],
            source=row["source"],
            packs=row["packs"],
            files=tuple(FileCount(**count) for count in json.loads(row["files"])),
            malformed=tuple(json.loads(row["malformed"])),
        )

    async def loading(self) -> list[int]:
        rows = await self.pool.fetch(
            f"SELECT snapshot_id FROM {self._snapshots} WHERE status = 'loading'"
        )
        return [int(row["snapshot_id"]) for row in rows]

    async def begin(self) -> int:
        snapshot_id = await self.pool.fetchval(
            f"INSERT INTO {self._snapshots} (status) VALUES ('loading') RETURNING snapshot_id"
        )
        return int(snapshot_id)

    async def add_packs(self, snapshot_id: int, rows: Sequence[PackRow]) -> None:
        await self.pool.copy_records_to_table(
            "ordo_catalogue_packs",
            schema_name=self.schema,
            columns=["snapshot_id", "cip13", "cis", "label", "facts"],
            records=[(snapshot_id, *row) for row in rows],
        )

    async def publish(self, snapshot_id: int, snapshot: NewSnapshot) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"UPDATE {self._snapshots} SET status = 'ready', content_hash = $2, "
                "snapshot_date = $3, imported_at = now(), source = $4, packs = $5, "
                "files = $6::jsonb, malformed = $7::jsonb WHERE snapshot_id = $1",
                snapshot_id,
                snapshot.content_hash,
                snapshot.snapshot_date,
                snapshot.source,
                snapshot.packs,
                json.dumps([_count(count) for count in snapshot.files]),
                json.dumps(list(snapshot.malformed)),
            )
            await conn.execute(
                f"INSERT INTO {self._current} (id, snapshot_id) VALUES (1, $1) "
                "ON CONFLICT (id) DO UPDATE SET snapshot_id = excluded.snapshot_id",
                snapshot_id,
            )

    async def prune(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            kept = f"(SELECT snapshot_id FROM {self._current})"
            await conn.execute(
                f"DELETE FROM {self._packs} WHERE snapshot_id IS DISTINCT FROM {kept}"
            )
            status = await conn.execute(
                f"DELETE FROM {self._snapshots} WHERE snapshot_id IS DISTINCT FROM {kept}"
            )
        return int(status.split()[-1])

    async def packs(self, snapshot_id: int) -> AsyncIterator[list[bytes]]:
        after = ""
        while True:
            rows = await self.pool.fetch(
                f"SELECT cip13, facts FROM {self._packs} WHERE snapshot_id = $1 AND cip13 > $2 "
                "ORDER BY cip13 LIMIT $3",
                snapshot_id,
                after,
                PAGE,
            )
            if not rows:
                return
            after = rows[-1]["cip13"]
            yield [bytes(row["facts"]) for row in rows]


def _count(count: FileCount) -> dict[str, object]:
    return {
        "file": count.file,
        "lines": count.lines,
        "imported": count.imported,
        "malformed": count.malformed,
    }
