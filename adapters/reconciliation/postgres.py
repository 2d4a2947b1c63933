"""Reconciliation batches on PostgreSQL, through the read side's asyncpg pool.

Per chunk of invoices: one transaction that claims the chunk's invoice numbers with COPY (the
primary key decides, atomically, who reconciled a number first, even across concurrent
batches; rows are copied in key order so two batches never deadlock), writes the items with
COPY, and moves the batch's progress. Chunk commits of all batches take turns on an advisory
lock, and the batch's row is locked (`FOR UPDATE`) while its counts are added to.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.locks import lock_key
from adapters.reconciliation.store import (
    BatchStore,
    ChunkCommit,
    ChunkResult,
    ClaimRow,
    Decided,
    PaidByPrescription,
    Step,
    checked,
    paid_by_prescription,
    previous_of,
)
from adapters.reconciliation.tables import (
    CHUNKS,
    CLAIM_COLUMNS,
    ITEM_COLUMNS,
    ITEMS,
    POSTGRES,
    RECONCILED,
    BatchSql,
)
from domain.reconciliation.decision import Previous
from domain.reconciliation.invoices import InvoiceKey
from domain.reconciliation.records import PaidInvoices

if TYPE_CHECKING:
    from adapters.postgres import Conn


class PostgresBatches(BatchStore):
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        super().__init__(BatchSql(POSTGRES, schema))
        self.pool = pool
        self.schema = schema
        self._commit_lock = lock_key(schema, "reconciliation-commit")

    async def create(self) -> None:
        sql = self.sql
        added = [
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {definition}"
            for table, _, definition in sql.added_columns()
        ]
        # Written once, read once, then deleted: compressing a chunk would only cost CPU.
        uncompressed = f"ALTER TABLE {sql.name(CHUNKS)} ALTER COLUMN body SET STORAGE EXTERNAL"
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(self.schema, "reconciliation")
            )
            for statement in [*sql.create_tables(), uncompressed, *added, *sql.create_indexes()]:
                await conn.execute(statement)

    async def close(self) -> None:
        """The pool belongs to the read models, which close it."""

    async def _write(self, *steps: Step) -> list[list[Any]]:
        if len(steps) == 1:  # one statement is a transaction of its own
            return [checked(steps[0], await self.pool.fetch(steps[0].sql, *steps[0].params))]
        async with self.pool.acquire() as conn, conn.transaction():
            return [checked(step, await conn.fetch(step.sql, *step.params)) for step in steps]

    async def _read(self, *steps: Step) -> list[list[Any]]:
        if len(steps) == 1:  # most reads: no connection held between statements
            return [await self.pool.fetch(steps[0].sql, *steps[0].params)]
        async with self.pool.acquire() as conn:
            return [await conn.fetch(step.sql, *step.params) for step in steps]

    def _moment(self, stored: Any) -> datetime:
        moment: datetime = stored  # asyncpg returns timestamptz as an aware datetime
        return moment

    # --- the chunk commit ------------------------------------------------------------------------

    async def _commit(self, chunk: ChunkCommit) -> ChunkResult:
        sql = self.sql
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._commit_lock)
            step = self._totals(chunk)
            [totals] = checked(step, await conn.fetch(step.sql, *step.params))
            taken, paid = await self._since_looked_up(conn, chunk.batch_id, chunk.decided)
            result = await self._claim(conn, chunk.decided, taken, paid)
            await conn.copy_records_to_table(
                ITEMS.name, schema_name=self.schema, columns=ITEM_COLUMNS, records=result.items
            )
            await conn.execute(sql.progress, *self._progress(chunk, totals, result))
            await conn.execute(sql.drop_chunk, chunk.batch_id, chunk.chunk_no)
            return result

    async def _since_looked_up(
        self, conn: Conn, batch_id: str, decided: Decided
    ) -> tuple[dict[InvoiceKey, Previous], PaidByPrescription | None]:
        """If another batch committed since the chunk was looked up, the chunk's invoice
        numbers it took and what is paid now for the chunk's prescriptions (under the commit
        lock: every earlier commit is visible); else nothing changed ({}, None)."""
        mine = await conn.fetchval(self.sql.new_commit, batch_id)
        others = await conn.fetchval(self.sql.commits_of_others, decided.seen, mine, batch_id)
        if not others:
            return {}, None
        keys = [_claim_key(claim) for claim in decided.result.claims]
        return await self._taken_in(conn, keys), await self._paid_in(conn, decided.numbers)

    async def _taken_in(self, conn: Conn, keys: Sequence[InvoiceKey]) -> dict[InvoiceKey, Previous]:
        step = self._taken(keys)
        return previous_of(await conn.fetch(step.sql, *step.params))

    async def _paid_in(self, conn: Conn, numbers: Collection[str]) -> dict[str, PaidInvoices]:
        step = self._paid(numbers)
        return paid_by_prescription(await conn.fetch(step.sql, *step.params))

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
                        RECONCILED.name,
                        schema_name=self.schema,
                        columns=CLAIM_COLUMNS,
                        records=ordered,
                    )
                return result
            except asyncpg.UniqueViolationError:
                lost = await self._taken_in(conn, [_claim_key(claim) for claim in result.claims])
                if not lost.keys() - taken.keys():
                    raise  # nothing new is taken: not a race between batches
                taken = {**taken, **lost}
                result = decided.resolve(taken, paid)
        return result


def _claim_key(claim: ClaimRow) -> InvoiceKey:
    return (claim[0], claim[1])


_in_key_order = operator.itemgetter(0, 1)  # (finess, invoice_number), at C speed
