"""Reconciliation batches on the embedded default: `reconciliation.sqlite3` beside the views.

A file of its own, so that a batch's writes never wait on the projection runner's, with the
same tables and transactions as on PostgreSQL: SQLite's single writer (`BEGIN IMMEDIATE`) is
what makes claiming an invoice number atomic here, and what makes chunk commits take turns.
Times are the process's clock, stored as fixed-width UTC text (which compares in the order of
time) by the `ordo_now()` and `ordo_lease(seconds)` functions the statements call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from adapters.readmodels.sqlite import Connection
from adapters.reconciliation.store import (
    BatchStore,
    ChunkCommit,
    ChunkResult,
    Decided,
    Step,
    checked,
    paid_by_prescription,
    previous_of,
)
from adapters.reconciliation.tables import SQLITE, BatchSql

T = TypeVar("T")


class SqliteBatches(BatchStore):
    def __init__(self, path: Path) -> None:
        super().__init__(BatchSql(SQLITE))
        self.path = path
        self.db = Connection(path)
        self._clock_ready = False

    async def create(self) -> None:
        def work(cur: sqlite3.Cursor) -> None:
            for statement in self.sql.create_tables():
                cur.execute(statement)
            for table, column, definition in self.sql.added_columns():
                have = {row[1] for row in cur.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    cur.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
            for statement in self.sql.create_indexes():
                cur.execute(statement)

        await self._run(work, write=True)

    async def close(self) -> None:
        self.db.close()

    async def _write(self, *steps: Step) -> list[list[Any]]:
        return await self._run(lambda cur: _all(cur, steps), write=True)

    async def _read(self, *steps: Step) -> list[list[Any]]:
        return await self._run(lambda cur: _all(cur, steps))

    def _moment(self, stored: Any) -> datetime:
        return datetime.fromisoformat(stored)

    async def _run(self, work: Callable[[sqlite3.Cursor], T], *, write: bool = False) -> T:
        def with_clock(cur: sqlite3.Cursor) -> T:
            if not self._clock_ready:  # the connection's first work: teach it our clock
                cur.connection.create_function("ordo_now", 0, _now)
                cur.connection.create_function("ordo_lease", 1, _lease)
                self._clock_ready = True
            return work(cur)

        return await self.db.run(with_clock, write=write)

    # --- the chunk commit ------------------------------------------------------------------------

    async def _commit(self, chunk: ChunkCommit) -> ChunkResult:
        sql = self.sql

        def work(cur: sqlite3.Cursor) -> ChunkResult:
            step = self._totals(chunk)
            [totals] = checked(step, cur.execute(step.sql, step.params).fetchall())
            # In the write transaction (SQLite has one writer): nobody claims in between.
            final = self._since_looked_up(cur, chunk.batch_id, chunk.decided)
            cur.executemany(sql.insert_claims, final.claims)
            cur.executemany(sql.insert_items, final.items)
            cur.execute(sql.progress, self._progress(chunk, totals, final))
            cur.execute(sql.drop_chunk, [chunk.batch_id, chunk.chunk_no])
            return final

        return await self._run(work, write=True)

    def _since_looked_up(self, cur: sqlite3.Cursor, batch_id: str, decided: Decided) -> ChunkResult:
        """The chunk's result, decided again if another batch committed since it was looked up
        (it may have taken some of its invoice numbers, paid some of its packs)."""
        sql = self.sql
        mine = cur.execute(sql.new_commit, [batch_id]).fetchone()[0]
        others = cur.execute(sql.commits_of_others, [decided.seen, mine, batch_id]).fetchone()[0]
        claimed = decided.result.claims
        taken = {}
        if claimed:
            step = self._taken([(claim[0], claim[1]) for claim in claimed])
            taken = previous_of(cur.execute(step.sql, step.params))
        if not others:
            return decided.resolve(taken) if taken else decided.result
        paid = self._paid(decided.numbers)
        return decided.resolve(taken, paid_by_prescription(cur.execute(paid.sql, paid.params)))


def _all(cur: sqlite3.Cursor, steps: tuple[Step, ...]) -> list[list[Any]]:
    return [checked(step, cur.execute(step.sql, step.params).fetchall()) for step in steps]


def _now() -> str:
    return _text(datetime.now(UTC))


def _lease(seconds: float) -> str:
    return _text(datetime.now(UTC) + timedelta(seconds=seconds))


def _text(moment: datetime) -> str:
    """UTC, fixed width: compares as text in the order of time."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
