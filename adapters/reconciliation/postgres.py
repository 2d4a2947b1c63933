# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""Reconciliation batches on PostgreSQL, through the read side's asyncpg pool.

Per chunk of invoices: one `= ANY($1)` lookup of the prescriptions' states, then one
transaction that claims the chunk's invoice numbers with a single `INSERT … ON CONFLICT DO
NOTHING` (the primary key decides, atomically, who reconciled a number first, even across
concurrent batches; rows are inserted in key order so two batches never deadlock), writes the
items with COPY, and moves the batch's progress.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.readmodels.postgres import lock_key
from adapters.reconciliation.ndjson import RawChunk
from adapters.reconciliation.store import (
    CLAIM_COLUMNS,
    ITEM_COLUMNS,
    Batch,
    ChunkResult,
    ClaimRow,
    Decided,
    Item,
    LostLease,
    Paid,
    PaidByPrescription,
    merge_counts,
    paid_of,
)
from domain.reconciliation import InvoiceKey, Outcome, PaidInvoices, Previous

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[asyncpg.Record]

BATCH_COLUMNS = (
    "batch_id, status, counts, amounts, lines_total, lines_done, chunks_total, chunks_done, "
    "bytes_received, created_at, started_at, finished_at, log_position, log_head, owner, "
    "lease_until, error"
)


class PostgresBatches:
    def __init__(self, pool: asyncpg.Pool, schema: str, prescriptions_table: str) -> None:
        self.pool = pool
        self.schema = schema
        self._prescriptions = prescriptions_table
        s = f'"{schema}"'
        self._batches = f"{s}.ordo_reconciliation_batches"
        self._chunks = f"{s}.ordo_reconciliation_chunks"
        self._items = f"{s}.ordo_reconciliation_items"
        self._reconciled = f"{s}.ordo_reconciled_invoices"
        self._commits = f"{s}.ordo_reconciliation_commits"
        self._commit_lock = lock_key(schema, "reconciliation-commit")

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(self.schema, "reconciliation")
            )
            for statement in self._ddl():
                await conn.execute(statement)

    def _ddl(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self._batches} ("
            "batch_id text PRIMARY KEY, status text NOT NULL, "
            "counts jsonb NOT NULL DEFAULT '{}', lines_total bigint NOT NULL DEFAULT 0, "
            "lines_done bigint NOT NULL DEFAULT 0, chunks_total int NOT NULL DEFAULT 0, "
            "chunks_done int NOT NULL DEFAULT 0, bytes_received bigint NOT NULL DEFAULT 0, "
            "created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, "
            "finished_at timestamptz, log_position bigint, log_head bigint, owner text, "
            "lease_until timestamptz, error text)",
            f"CREATE INDEX IF NOT EXISTS ordo_reconciliation_batches_unfinished ON "
            f"{self._batches} (lease_until) WHERE status <> 'done'",
            f"CREATE TABLE IF NOT EXISTS {self._chunks} ("
            "batch_id text NOT NULL, chunk_no int NOT NULL, first_line bigint NOT NULL, "
            "invoices int NOT NULL, body bytea NOT NULL, PRIMARY KEY (batch_id, chunk_no))",
            # Written once, read once, then deleted: compressing it would only cost CPU.
            f"ALTER TABLE {self._chunks} ALTER COLUMN body SET STORAGE EXTERNAL",
            f"CREATE TABLE IF NOT EXISTS {self._items} ("
            "batch_id text NOT NULL, line bigint NOT NULL, invoice_number text, "
            "outcome text NOT NULL, detail text NOT NULL, PRIMARY KEY (batch_id, line))",
            f"CREATE INDEX IF NOT EXISTS ordo_reconciliation_items_by_outcome ON "
            f"{self._items} (batch_id, outcome, line)",
            f"CREATE TABLE IF NOT EXISTS {self._reconciled} ("
            "finess text NOT NULL, invoice_number text NOT NULL, batch_id text NOT NULL, "
            "line bigint NOT NULL, outcome text NOT NULL, PRIMARY KEY (finess, invoice_number))",
            # Billing integrity (issue 10), added to tables created before it.
            f"ALTER TABLE {self._batches} "
            "ADD COLUMN IF NOT EXISTS amounts jsonb NOT NULL DEFAULT '{}'",
            f"ALTER TABLE {self._reconciled} ADD COLUMN IF NOT EXISTS prescription_id text, "
            "ADD COLUMN IF NOT EXISTS paid_lines text",
            f"CREATE INDEX IF NOT EXISTS ordo_reconciled_invoices_paid ON {self._reconciled} "
            "(prescription_id) WHERE paid_lines IS NOT NULL",
            # One row per chunk commit, numbered in commit order (commits hold a lock): tells a
            # commit whether another batch committed since its chunk was looked up.
            f"CREATE TABLE IF NOT EXISTS {self._commits} ("
            "seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, batch_id text NOT NULL)",
        ]

    async def close(self) -> None:
        """The pool belongs to the read models, which close it."""

    # --- receiving -------------------------------------------------------------------------------

    async def new_batch(self, batch_id: str, owner: str, lease_seconds: float) -> None:
        await self.pool.execute(
            f"INSERT INTO {self._batches} (batch_id, status, owner, lease_until) "
            "VALUES ($1, 'receiving', $2, now() + make_interval(secs => $3))",
            batch_id,
            owner,
            lease_seconds,
        )

    async def add_chunk(
        self,
        batch_id: str,
        owner: str,
        chunk_no: int,
        chunk: RawChunk,
        *,
        bytes_received: int,
        lease_seconds: float,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._renew_in(
                conn,
                batch_id,
                owner,
                lease_seconds,
                "chunks_total = $4, lines_total = lines_total + $5, bytes_received = $6",
                chunk_no + 1,
                chunk.invoices,
                bytes_received,
            )
            await conn.execute(
                f"INSERT INTO {self._chunks} (batch_id, chunk_no, first_line, invoices, body) "
                "VALUES ($1, $2, $3, $4, $5)",
                batch_id,
                chunk_no,
                chunk.first_line,
                chunk.invoices,
                chunk.body,
            )

    async def renew(self, batch_id: str, owner: str, lease_seconds: float) -> None:
        async with self.pool.acquire() as conn:
            await self._renew_in(conn, batch_id, owner, lease_seconds)

    async def _renew_in(
        self,
        conn: Conn,
        batch_id: str,
        owner: str,
        lease_seconds: float,
        also: str = "",
        *values: object,
    ) -> None:
        status = await conn.execute(
            f"UPDATE {self._batches} SET lease_until = now() + make_interval(secs => $3)"
            + (f", {also}" if also else "")
            + " WHERE batch_id = $1 AND owner = $2",
            batch_id,
            owner,
            lease_seconds,
            *values,
        )
        if status != "UPDATE 1":
            msg = f"batch {batch_id} is no longer ours"
            raise LostLease(msg)

    async def received(self, batch_id: str, owner: str) -> None:
        await self.pool.execute(
            f"UPDATE {self._batches} SET status = 'running' WHERE batch_id = $1 AND owner = $2",
            batch_id,
            owner,
        )

    async def forget(self, batch_id: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for table in (self._chunks, self._items, self._batches):
                await conn.execute(f"DELETE FROM {table} WHERE batch_id = $1", batch_id)

    # --- processing ------------------------------------------------------------------------------

    async def claim(self, batch_id: str, owner: str, lease_seconds: float) -> Batch | None:
        row = await self.pool.fetchrow(
            f"UPDATE {self._batches} SET owner = $2, "
            "lease_until = now() + make_interval(secs => $3), "
            "started_at = coalesce(started_at, now()) "
            "WHERE batch_id = $1 AND status = 'running' "
            "AND (owner = $2 OR lease_until IS NULL OR lease_until < now()) "
            f"RETURNING {BATCH_COLUMNS}",
            batch_id,
            owner,
            lease_seconds,
        )
        return None if row is None else _batch(row)

    async def mark_log(self, batch_id: str, position: int, head: int) -> None:
        await self.pool.execute(
            f"UPDATE {self._batches} SET log_position = coalesce(log_position, $2), "
            "log_head = coalesce(log_head, $3) WHERE batch_id = $1",
            batch_id,
            position,
            head,
        )

    async def chunk(self, batch_id: str, chunk_no: int) -> tuple[int, bytes]:
        row = await self.pool.fetchrow(
            f"SELECT first_line, body FROM {self._chunks} WHERE batch_id = $1 AND chunk_no = $2",
            batch_id,
            chunk_no,
        )
        if row is None:
            msg = f"chunk {chunk_no} of batch {batch_id} is missing"
            raise LookupError(msg)
        return int(row[0]), bytes(row[1])

    async def states(self, numbers: Collection[str]) -> dict[str, bytes]:
        if not numbers:
            return {}
        rows = await self.pool.fetch(
            f"SELECT prescription_id, state FROM {self._prescriptions} "
            "WHERE prescription_id = ANY($1::text[])",
            list(numbers),
        )
        return {row[0]: row[1] for row in rows}

    async def taken(self, keys: Sequence[InvoiceKey]) -> dict[InvoiceKey, Previous]:
        if not keys:
            return {}
        async with self.pool.acquire() as conn:
            return await self._taken_in(conn, [k[0] for k in keys], [k[1] for k in keys])

    async def _taken_in(
        self, conn: Conn, finess: list[str], numbers: list[str]
    ) -> dict[InvoiceKey, Previous]:
        rows = await conn.fetch(
            f"SELECT r.finess, r.invoice_number, r.batch_id, r.line, r.outcome "
            f"FROM {self._reconciled} r JOIN unnest($1::text[], $2::text[]) AS t(f, n) "
            "ON r.finess = t.f AND r.invoice_number = t.n",
            finess,
            numbers,
        )
        return {(row[0], row[1]): Previous(row[2], int(row[3]), row[4]) for row in rows}

    async def paid(self, numbers: Collection[str]) -> Paid:
        async with self.pool.acquire() as conn:
            # the commit number first: every commit up to it is visible to the next statement
            seen = await conn.fetchval(f"SELECT coalesce(max(seq), 0) FROM {self._commits}")
            return Paid(int(seen), await self._paid_in(conn, numbers))

    async def _paid_in(self, conn: Conn, numbers: Collection[str]) -> dict[str, PaidInvoices]:
        if not numbers:
            return {}
        rows = await conn.fetch(
            f"SELECT prescription_id, finess, invoice_number, paid_lines FROM {self._reconciled} "
            "WHERE prescription_id = ANY($1::text[]) AND paid_lines IS NOT NULL",
            list(numbers),
        )
        paid: dict[str, dict[InvoiceKey, Any]] = {}
        for row in rows:
            paid.setdefault(row[0], {})[(row[1], row[2])] = paid_of(row[3])
        return dict(paid)

    async def commit_chunk(
        self,
        batch_id: str,
        owner: str,
        chunk_no: int,
        decided: Decided,
        *,
        lease_seconds: float,
    ) -> ChunkResult:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._commit_lock)
            totals = await conn.fetchrow(
                f"SELECT counts, amounts FROM {self._batches} "
                "WHERE batch_id = $1 AND owner = $2 AND chunks_done = $3 FOR UPDATE",
                batch_id,
                owner,
                chunk_no,
            )
            if totals is None:
                msg = f"batch {batch_id} is no longer ours at chunk {chunk_no}"
                raise LostLease(msg)
            taken, paid = await self._since_looked_up(conn, batch_id, decided)
            result = await self._claim(conn, decided, taken, paid)
            await conn.copy_records_to_table(
                "ordo_reconciliation_items",
                schema_name=self.schema,
                columns=ITEM_COLUMNS,
                records=result.items,
            )
            await conn.execute(
                f"UPDATE {self._batches} SET chunks_done = $2 + 1, lines_done = lines_done + $3, "
                "counts = $4::jsonb, amounts = $6::jsonb, "
                "lease_until = now() + make_interval(secs => $5), "
                "error = NULL WHERE batch_id = $1",
                batch_id,
                chunk_no,
                len(result.items),
                json.dumps(merge_counts(json.loads(totals[0]), result.counts)),
                lease_seconds,
                json.dumps(merge_counts(json.loads(totals[1]), result.amounts)),
            )
            await conn.execute(
                f"DELETE FROM {self._chunks} WHERE batch_id = $1 AND chunk_no = $2",
                batch_id,
                chunk_no,
            )
            return result

    async def _since_looked_up(
        self, conn: Conn, batch_id: str, decided: Decided
    ) -> tuple[dict[InvoiceKey, Previous], PaidByPrescription | None]:
        """If another batch committed since the chunk was looked up, the chunk's invoice
        numbers it took and what is paid now for the chunk's prescriptions (under the commit
        lock: every earlier commit is visible); else nothing changed ({}, None)."""
        mine = await conn.fetchval(
            f"INSERT INTO {self._commits} (batch_id) VALUES ($1) RETURNING seq", batch_id
        )
        others = await conn.fetchval(
            f"SELECT count(*) FROM {self._commits} WHERE seq > $1 AND seq < $2 AND batch_id <> $3",
            decided.seen,
            mine,
            batch_id,
        )
        if not others:
            return {}, None
        keys = [_claim_key(claim) for claim in decided.result.claims]
        taken = await self._taken_in(conn, [k[0] for k in keys], [k[1] for k in keys])
        return taken, await self._paid_in(conn, decided.numbers)

    async def _claim(
        self,
        conn: Conn,
        decided: Decided,
        taken: dict[InvoiceKey, Previous],
        paid: PaidByPrescription | None,
    ) -> ChunkResult:
        """COPY the claims, in key order. Commits of chunks take turns, so what other batches
        claimed is committed and known here (`taken`); the primary key is the last word all the
        same: if it refuses the COPY, decide the chunk again with the numbers it refused."""
        result = decided.resolve(taken, paid) if taken or paid is not None else decided.result
        while result.claims:
            ordered = sorted(result.claims, key=_in_key_order)
            try:
                async with conn.transaction():  # a savepoint
                    await conn.copy_records_to_table(
                        "ordo_reconciled_invoices",
                        schema_name=self.schema,
                        columns=CLAIM_COLUMNS,
                        records=ordered,
                    )
                return result
            except asyncpg.UniqueViolationError:
                keys = [_claim_key(claim) for claim in result.claims]
                lost = await self._taken_in(conn, [k[0] for k in keys], [k[1] for k in keys])
                if not lost.keys() - taken.keys():
                    raise  # nothing new is taken: not a race between batches
                taken = {**taken, **lost}
                result = decided.resolve(taken, paid)
        return result

    async def finish(self, batch_id: str, owner: str, error: str | None = None) -> None:
        await self.pool.execute(
            f"UPDATE {self._batches} SET status = 'done', finished_at = now(), owner = NULL, "
            "lease_until = NULL, error = $3 WHERE batch_id = $1 AND owner = $2",
            batch_id,
            owner,
            error,
        )

    async def release(self, batch_id: str, owner: str, error: str, retry_seconds: float) -> None:
        await self.pool.execute(
            f"UPDATE {self._batches} SET owner = NULL, error = $3, "
            "lease_until = now() + make_interval(secs => $4) WHERE batch_id = $1 AND owner = $2",
            batch_id,
            owner,
            error,
            retry_seconds,
        )

    # --- reading ---------------------------------------------------------------------------------

    async def batch(self, batch_id: str) -> Batch | None:
        row = await self.pool.fetchrow(
            f"SELECT {BATCH_COLUMNS} FROM {self._batches} WHERE batch_id = $1", batch_id
        )
        return None if row is None else _batch(row)

    async def items(
        self, batch_id: str, outcome: Outcome | None, after_line: int, limit: int
    ) -> list[Item]:
        query = f"SELECT line, invoice_number, outcome, detail FROM {self._items} "
        if outcome is None:
            query += "WHERE batch_id = $1 AND line > $2 ORDER BY line LIMIT $3"
            rows = await self.pool.fetch(query, batch_id, after_line, limit)
        else:
            query += "WHERE batch_id = $1 AND outcome = $4 AND line > $2 ORDER BY line LIMIT $3"
            rows = await self.pool.fetch(query, batch_id, after_line, limit, outcome)
        return [Item(int(row[0]), row[1], row[2], row[3]) for row in rows]

    async def unfinished(self) -> list[Batch]:
        rows = await self.pool.fetch(
            f"SELECT {BATCH_COLUMNS} FROM {self._batches} WHERE status <> 'done' "
            "AND (lease_until IS NULL OR lease_until < now())"
        )
        return [_batch(row) for row in rows]


def _claim_key(claim: ClaimRow) -> InvoiceKey:
    return (claim[0], claim[1])


_in_key_order = operator.itemgetter(0, 1)  # (finess, invoice_number), at C speed


def _batch(row: asyncpg.Record) -> Batch:
    values = dict(row)
    values["counts"] = json.loads(values["counts"])
    values["amounts"] = json.loads(values["amounts"])
    return Batch(**values)
