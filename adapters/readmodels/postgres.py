"""Read models on PostgreSQL, written and queried through asyncpg (tables: `tables.py`).

A batch rewrites the rows of the prescriptions it touches and moves the positions in one
transaction, under an advisory lock. A rebuild writes the same tables with a `_next` suffix
beside the live ones, then catches up and renames them in one transaction, while the API keeps
reading the live ones.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import asyncpg

from adapters.locks import leadership, lock_key
from adapters.readmodels.queries import ReadModelQueries
from adapters.readmodels.rows import state_decoder
from adapters.readmodels.tables import (
    POSTGRESQL,
    PRESCRIPTIONS,
    ReadModelSql,
    replacements,
)
from domain.prescription import Prescription
from projections.folds import READ_MODEL_NAMES, ReadModelName
from projections.runner import (
    REBUILD_BATCH,
    PositionMoved,
    ProjectionRunner,
    Switch,
)

if TYPE_CHECKING:
    from adapters.postgres import Conn


class PostgresReadModels(ReadModelQueries):
    """The read models' tables in one schema; `suffix="_next"` names a rebuild's copy."""

    def __init__(self, pool: asyncpg.Pool, schema: str, suffix: str = "") -> None:
        self.pool = pool
        self.schema = schema
        self.suffix = suffix
        self.sql = ReadModelSql(POSTGRESQL, schema, suffix)
        self._apply_lock = lock_key(schema, "apply")

    def table(self, name: ReadModelName) -> str:
        return self.sql.table(name)

    def scratch(self) -> PostgresReadModels:
        return PostgresReadModels(self.pool, self.schema, "_next")

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._apply_lock)
            for statement in self.sql.create():
                await conn.execute(statement)
            # A table added by an upgrade starts where the others stand: the events it folds
            # did not exist before it (conversations came with it).
            start = await self.position_in(conn)
            await conn.executemany(
                self.sql.start_position, [(key, start) for key in self.sql.position_keys()]
            )

    async def drop(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for name in READ_MODEL_NAMES:
                await conn.execute(self.sql.drop(name))
            await self._forget_positions(conn)

    async def _forget_positions(self, conn: Conn) -> None:
        if await conn.fetchval("SELECT to_regclass($1)", self.sql.positions):
            await conn.execute(self.sql.forget_positions, self.sql.position_keys())

    # --- the ReadModelStore port ------------------------------------------------------------

    async def position(self) -> int:
        async with self.pool.acquire() as conn:
            return await self.position_in(conn)

    async def position_in(self, conn: Conn) -> int:
        position: int | None = await conn.fetchval(self.sql.position, self.sql.position_keys())
        return position or 0

    async def states(self, ids: Collection[str]) -> dict[str, Prescription]:
        async with self.pool.acquire() as conn:
            return await self.states_in(conn, ids)

    async def states_in(
        self, conn: Conn, ids: Collection[str], *, for_update: bool = False
    ) -> dict[str, Prescription]:
        """With `for_update`, concurrent writers of the same prescriptions wait for each other
        (two Kafka workers during a rebalance) instead of folding from the same old state."""
        query = self.sql.encoded_states + (" FOR UPDATE" if for_update else "")
        rows = await conn.fetch(query, list(ids))
        return {row[0]: state_decoder.decode(row[1]) for row in rows}

    async def apply(
        self, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._apply_lock)
            await self.apply_in(conn, changed, position, expected)

    async def apply_in(
        self, conn: Conn, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        moved = await conn.execute(
            self.sql.move_positions, position, self.sql.position_keys(), expected
        )
        if moved != f"UPDATE {len(READ_MODEL_NAMES)}":
            raise PositionMoved(f"read models are no longer at {expected}")
        if changed:
            await self.write_rows(conn, list(changed.values()))

    async def write_rows(self, conn: Conn, states: list[Prescription]) -> None:
        """Each table's rows for these prescriptions; a state never replaces a newer one."""
        await conn.executemany(
            self.sql.upsert(PRESCRIPTIONS),
            [row for s in states for row in PRESCRIPTIONS.rows_of(s)],
        )
        for replaced in replacements(states):
            await conn.execute(
                self.sql.delete_prescriptions(replaced.table), replaced.prescription_ids
            )
            if replaced.rows:  # COPY: the fastest way in for many rows
                await conn.copy_records_to_table(
                    self.sql.bare(replaced.table.name),
                    schema_name=self.schema,
                    records=replaced.rows,
                    columns=replaced.table.column_names,
                )

    async def _fetch(self, query: str, params: list[Any]) -> list[Any]:
        return await self.pool.fetch(query, *params)

    # --- operations ----------------------------------------------------------------------------

    def leadership(self) -> AbstractAsyncContextManager[None]:
        """Held by the one runner that applies batches."""
        return leadership(self.pool, lock_key(self.schema, "leader"))

    async def switch_to(self, switch: Switch) -> int:
        """All in one transaction under the apply lock, so no batch lands in between."""
        scratch = switch.scratch
        assert isinstance(scratch, PostgresReadModels)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._apply_lock)
            target = max(switch.target, await self.position_in(conn))
            runner = ProjectionRunner(
                switch.source, InTransaction(scratch, conn), batch_size=REBUILD_BATCH
            )
            await runner.catch_up(stop=target)
            for name in switch.views:
                for statement in self.sql.replace_with(scratch.sql, name):
                    await conn.execute(statement)
            for name in READ_MODEL_NAMES:
                await conn.execute(scratch.sql.drop(name))
            await scratch._forget_positions(conn)
            await conn.execute(self.sql.set_positions, target, self.sql.position_keys())
            return target


class InTransaction:
    """The read models seen through one connection's open transaction, for the runner that
    catches a rebuild's copy up inside the switch's transaction."""

    def __init__(self, read_models: PostgresReadModels, conn: Conn) -> None:
        self._read_models = read_models
        self._conn = conn

    async def position(self) -> int:
        return await self._read_models.position_in(self._conn)

    async def states(self, ids: Collection[str]) -> dict[str, Prescription]:
        return await self._read_models.states_in(self._conn, ids)

    async def apply(
        self, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        await self._read_models.apply_in(self._conn, changed, position, expected)
