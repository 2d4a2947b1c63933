# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""Reconciliation batches on the embedded default: `reconciliation.sqlite3` beside the views.

A file of its own, so that a batch's writes never wait on the projection runner's, with the
same tables and transactions as on PostgreSQL: SQLite's single writer (`BEGIN IMMEDIATE`) is
what makes claiming an invoice number atomic here. The prescriptions' states are read from
`views.sqlite3` through a connection of our own (WAL: readers never block the runner).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.readmodels.sqlite import Connection
from adapters.reconciliation.ndjson import RawChunk
from adapters.reconciliation.store import (
    Batch,
    ChunkResult,
    Decided,
    Item,
    LostLease,
    Paid,
    merge_counts,
    paid_of,
)
from domain.reconciliation import InvoiceKey, Outcome, PaidInvoices, Previous

BATCH_COLUMNS = (
    "batch_id, status, counts, amounts, lines_total, lines_done, chunks_total, chunks_done, "
    "bytes_received, created_at, started_at, finished_at, log_position, log_head, owner, "
    "lease_until, error"
)
DDL = [
    "CREATE TABLE IF NOT EXISTS ordo_reconciliation_batches ("
    "batch_id TEXT PRIMARY KEY, status TEXT NOT NULL, counts TEXT NOT NULL DEFAULT '{}', "
    "lines_total INTEGER NOT NULL DEFAULT 0, lines_done INTEGER NOT NULL DEFAULT 0, "
    "chunks_total INTEGER NOT NULL DEFAULT 0, chunks_done INTEGER NOT NULL DEFAULT 0, "
    "bytes_received INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, started_at TEXT, "
    "finished_at TEXT, log_position INTEGER, log_head INTEGER, owner TEXT, lease_until TEXT, "
    "error TEXT)",
    "CREATE TABLE IF NOT EXISTS ordo_reconciliation_chunks ("
    "batch_id TEXT NOT NULL, chunk_no INTEGER NOT NULL, first_line INTEGER NOT NULL, "
    "invoices INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (batch_id, chunk_no))",
    "CREATE TABLE IF NOT EXISTS ordo_reconciliation_items ("
    "batch_id TEXT NOT NULL, line INTEGER NOT NULL, invoice_number TEXT, "
    "outcome TEXT NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (batch_id, line))",
    "CREATE INDEX IF NOT EXISTS ordo_reconciliation_items_by_outcome ON "
    "ordo_reconciliation_items (batch_id, outcome, line)",
    "CREATE TABLE IF NOT EXISTS ordo_reconciled_invoices ("
    "finess TEXT NOT NULL, invoice_number TEXT NOT NULL, batch_id TEXT NOT NULL, "
    "line INTEGER NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY (finess, invoice_number))",
]
# Billing integrity (issue 10), added to tables created before it: (table, column, type).
ADDED_COLUMNS = [
    ("ordo_reconciliation_batches", "amounts", "TEXT NOT NULL DEFAULT '{}'"),
    ("ordo_reconciled_invoices", "prescription_id", "TEXT"),
    ("ordo_reconciled_invoices", "paid_lines", "TEXT"),  # line_no,quantity,cents,…
]
COMMITS = (
    "CREATE TABLE IF NOT EXISTS ordo_reconciliation_commits ("
    "seq INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL)"
)
PAID_INDEX = (
    "CREATE INDEX IF NOT EXISTS ordo_reconciled_invoices_paid ON ordo_reconciled_invoices "
    "(prescription_id) WHERE paid_lines IS NOT NULL"
)


class SqliteBatches:
    def __init__(self, path: Path, views_path: Path, prescriptions_table: str) -> None:
        self.path = path
        self.db = Connection(path)
        self._views = Connection(views_path)
        self._prescriptions = prescriptions_table

    async def create(self) -> None:
        def work(cur: sqlite3.Cursor) -> None:
            for statement in DDL:
                cur.execute(statement)
            for table, column, kind in ADDED_COLUMNS:
                have = {row[1] for row in cur.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            cur.execute(PAID_INDEX)
            cur.execute(COMMITS)

        await self.db.run(work, write=True)

    async def close(self) -> None:
        self.db.close()
        self._views.close()

    # --- receiving -------------------------------------------------------------------------------

    async def new_batch(self, batch_id: str, owner: str, lease_seconds: float) -> None:
        now = datetime.now(UTC)
        await self.db.run(
            lambda cur: cur.execute(
                "INSERT INTO ordo_reconciliation_batches "
                "(batch_id, status, created_at, owner, lease_until) "
                "VALUES (?, 'receiving', ?, ?, ?)",
                [batch_id, _text(now), owner, _lease(now, lease_seconds)],
            ),
            write=True,
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
        def work(cur: sqlite3.Cursor) -> None:
            _renew_in(
                cur,
                batch_id,
                owner,
                lease_seconds,
                "chunks_total = ?, lines_total = lines_total + ?, bytes_received = ?",
                chunk_no + 1,
                chunk.invoices,
                bytes_received,
            )
            cur.execute(
                "INSERT INTO ordo_reconciliation_chunks VALUES (?, ?, ?, ?, ?)",
                [batch_id, chunk_no, chunk.first_line, chunk.invoices, chunk.body],
            )

        await self.db.run(work, write=True)

    async def renew(self, batch_id: str, owner: str, lease_seconds: float) -> None:
        await self.db.run(lambda cur: _renew_in(cur, batch_id, owner, lease_seconds), write=True)

    async def received(self, batch_id: str, owner: str) -> None:
        await self.db.run(
            lambda cur: cur.execute(
                "UPDATE ordo_reconciliation_batches SET status = 'running' "
                "WHERE batch_id = ? AND owner = ?",
                [batch_id, owner],
            ),
            write=True,
        )

    async def forget(self, batch_id: str) -> None:
        def work(cur: sqlite3.Cursor) -> None:
            for table in ("chunks", "items", "batches"):
                cur.execute(
                    f"DELETE FROM ordo_reconciliation_{table} WHERE batch_id = ?", [batch_id]
                )

        await self.db.run(work, write=True)

    # --- processing ------------------------------------------------------------------------------

    async def claim(self, batch_id: str, owner: str, lease_seconds: float) -> Batch | None:
        def work(cur: sqlite3.Cursor) -> Batch | None:
            now = datetime.now(UTC)
            cur.execute(
                "UPDATE ordo_reconciliation_batches SET owner = ?, lease_until = ?, "
                "started_at = coalesce(started_at, ?) WHERE batch_id = ? AND status = 'running' "
                "AND (owner = ? OR lease_until IS NULL OR lease_until < ?)",
                [owner, _lease(now, lease_seconds), _text(now), batch_id, owner, _text(now)],
            )
            return self._batch_in(cur, batch_id) if cur.rowcount == 1 else None

        return await self.db.run(work, write=True)

    async def mark_log(self, batch_id: str, position: int, head: int) -> None:
        await self.db.run(
            lambda cur: cur.execute(
                "UPDATE ordo_reconciliation_batches SET log_position = coalesce(log_position, ?), "
                "log_head = coalesce(log_head, ?) WHERE batch_id = ?",
                [position, head, batch_id],
            ),
            write=True,
        )

    async def chunk(self, batch_id: str, chunk_no: int) -> tuple[int, bytes]:
        row = await self.db.run(
            lambda cur: cur.execute(
                "SELECT first_line, body FROM ordo_reconciliation_chunks "
                "WHERE batch_id = ? AND chunk_no = ?",
                [batch_id, chunk_no],
            ).fetchone()
        )
        if row is None:
            msg = f"chunk {chunk_no} of batch {batch_id} is missing"
            raise LookupError(msg)
        return int(row[0]), bytes(row[1])

    async def states(self, numbers: Collection[str]) -> dict[str, bytes]:
        if not numbers:
            return {}
        query = (
            f"SELECT prescription_id, state FROM {self._prescriptions} "
            "WHERE prescription_id IN (SELECT value FROM json_each(?))"
        )
        ids = json.dumps(list(numbers))
        rows = await self._views.run(lambda cur: cur.execute(query, [ids]).fetchall())
        return {row[0]: row[1] for row in rows}

    async def taken(self, keys: Sequence[InvoiceKey]) -> dict[InvoiceKey, Previous]:
        if not keys:
            return {}
        return await self.db.run(lambda cur: _taken_in(cur, keys))

    async def paid(self, numbers: Collection[str]) -> Paid:
        def work(cur: sqlite3.Cursor) -> Paid:
            seen = cur.execute("SELECT coalesce(max(seq), 0) FROM ordo_reconciliation_commits")
            return Paid(int(seen.fetchone()[0]), _paid_in(cur, numbers))

        return await self.db.run(work)

    async def commit_chunk(
        self,
        batch_id: str,
        owner: str,
        chunk_no: int,
        decided: Decided,
        *,
        lease_seconds: float,
    ) -> ChunkResult:
        def work(cur: sqlite3.Cursor) -> ChunkResult:
            row = cur.execute(
                "SELECT counts, amounts FROM ordo_reconciliation_batches "
                "WHERE batch_id = ? AND owner = ? AND chunks_done = ?",
                [batch_id, owner, chunk_no],
            ).fetchone()
            if row is None:
                msg = f"batch {batch_id} is no longer ours at chunk {chunk_no}"
                raise LostLease(msg)
            # In the write transaction (SQLite has one writer): nobody claims in between.
            final = _since_looked_up(cur, batch_id, decided)
            cur.executemany(
                "INSERT INTO ordo_reconciled_invoices (finess, invoice_number, batch_id, line, "
                "outcome, prescription_id, paid_lines) VALUES (?, ?, ?, ?, ?, ?, ?)",
                final.claims,
            )
            cur.executemany(
                "INSERT INTO ordo_reconciliation_items VALUES (?, ?, ?, ?, ?)", final.items
            )
            cur.execute(
                "UPDATE ordo_reconciliation_batches SET chunks_done = ?, "
                "lines_done = lines_done + ?, counts = ?, amounts = ?, lease_until = ?, "
                "error = NULL WHERE batch_id = ?",
                [
                    chunk_no + 1,
                    len(final.items),
                    json.dumps(merge_counts(json.loads(row[0]), final.counts)),
                    json.dumps(merge_counts(json.loads(row[1]), final.amounts)),
                    _lease(datetime.now(UTC), lease_seconds),
                    batch_id,
                ],
            )
            cur.execute(
                "DELETE FROM ordo_reconciliation_chunks WHERE batch_id = ? AND chunk_no = ?",
                [batch_id, chunk_no],
            )
            return final

        return await self.db.run(work, write=True)

    async def finish(self, batch_id: str, owner: str, error: str | None = None) -> None:
        await self.db.run(
            lambda cur: cur.execute(
                "UPDATE ordo_reconciliation_batches SET status = 'done', finished_at = ?, "
                "owner = NULL, lease_until = NULL, error = ? WHERE batch_id = ? AND owner = ?",
                [_text(datetime.now(UTC)), error, batch_id, owner],
            ),
            write=True,
        )

    async def release(self, batch_id: str, owner: str, error: str, retry_seconds: float) -> None:
        await self.db.run(
            lambda cur: cur.execute(
                "UPDATE ordo_reconciliation_batches SET owner = NULL, lease_until = ?, "
                "error = ? WHERE batch_id = ? AND owner = ?",
                [_lease(datetime.now(UTC), retry_seconds), error, batch_id, owner],
            ),
            write=True,
        )

    # --- reading ---------------------------------------------------------------------------------

    async def batch(self, batch_id: str) -> Batch | None:
        return await self.db.run(lambda cur: self._batch_in(cur, batch_id))

    def _batch_in(self, cur: sqlite3.Cursor, batch_id: str) -> Batch | None:
        row = cur.execute(
            f"SELECT {BATCH_COLUMNS} FROM ordo_reconciliation_batches WHERE batch_id = ?",
            [batch_id],
        ).fetchone()
        return None if row is None else _batch(row)

    async def items(
        self, batch_id: str, outcome: Outcome | None, after_line: int, limit: int
    ) -> list[Item]:
        query = "SELECT line, invoice_number, outcome, detail FROM ordo_reconciliation_items "
        params: list[Any] = [batch_id, after_line]
        if outcome is None:
            query += "WHERE batch_id = ? AND line > ? ORDER BY line LIMIT ?"
        else:
            query += "WHERE batch_id = ? AND line > ? AND outcome = ? ORDER BY line LIMIT ?"
            params.append(outcome)
        rows = await self.db.run(lambda cur: cur.execute(query, [*params, limit]).fetchall())
        return [Item(int(row[0]), row[1], row[2], row[3]) for row in rows]

    async def unfinished(self) -> list[Batch]:
        now = _text(datetime.now(UTC))
        rows = await self.db.run(
            lambda cur: cur.execute(
                f"SELECT {BATCH_COLUMNS} FROM ordo_reconciliation_batches "
                "WHERE status <> 'done' AND (lease_until IS NULL OR lease_until < ?)",
                [now],
            ).fetchall()
        )
        return [_batch(row) for row in rows]


def _since_looked_up(cur: sqlite3.Cursor, batch_id: str, decided: Decided) -> ChunkResult:
    """The chunk's result, decided again if another batch committed since it was looked up
    (it may have taken some of its invoice numbers, paid some of its packs)."""
    mine = cur.execute(
        "INSERT INTO ordo_reconciliation_commits (batch_id) VALUES (?) RETURNING seq", [batch_id]
    ).fetchone()[0]
    others = cur.execute(
        "SELECT count(*) FROM ordo_reconciliation_commits WHERE seq > ? AND seq < ? "
        "AND batch_id <> ?",
        [decided.seen, mine, batch_id],
    ).fetchone()[0]
    taken = _taken_in(cur, [(claim[0], claim[1]) for claim in decided.result.claims])
    if not others:
        return decided.resolve(taken) if taken else decided.result
    return decided.resolve(taken, _paid_in(cur, decided.numbers))


def _paid_in(cur: sqlite3.Cursor, numbers: Collection[str]) -> dict[str, PaidInvoices]:
    if not numbers:
        return {}
    rows = cur.execute(
        "SELECT prescription_id, finess, invoice_number, paid_lines "
        "FROM ordo_reconciled_invoices WHERE paid_lines IS NOT NULL "
        "AND prescription_id IN (SELECT value FROM json_each(?))",
        [json.dumps(list(numbers))],
    )
    paid: dict[str, dict[InvoiceKey, Any]] = {}
    for row in rows:
        paid.setdefault(row[0], {})[(row[1], row[2])] = paid_of(row[3])
    return dict(paid)


def _taken_in(cur: sqlite3.Cursor, keys: Sequence[InvoiceKey]) -> dict[InvoiceKey, Previous]:
    if not keys:
        return {}
    return {
        (row[0], row[1]): Previous(row[2], int(row[3]), row[4])
        for row in cur.execute(
            "SELECT r.finess, r.invoice_number, r.batch_id, r.line, r.outcome "
            "FROM json_each(?) AS j JOIN ordo_reconciled_invoices AS r "
            "ON r.finess = j.value ->> 0 AND r.invoice_number = j.value ->> 1",
            [json.dumps(keys)],
        )
    }


def _renew_in(
    cur: sqlite3.Cursor,
    batch_id: str,
    owner: str,
    lease_seconds: float,
    also: str = "",
    *values: object,
) -> None:
    cur.execute(
        "UPDATE ordo_reconciliation_batches SET lease_until = ?"
        + (f", {also}" if also else "")
        + " WHERE batch_id = ? AND owner = ?",
        [_lease(datetime.now(UTC), lease_seconds), *values, batch_id, owner],
    )
    if cur.rowcount != 1:
        msg = f"batch {batch_id} is no longer ours"
        raise LostLease(msg)


def _text(moment: datetime) -> str:
    """UTC, fixed width: compares as text in the order of time."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _lease(now: datetime, seconds: float) -> str:
    return _text(now + timedelta(seconds=seconds))


def _batch(row: tuple[Any, ...]) -> Batch:
    names = [name.strip() for name in BATCH_COLUMNS.split(",")]
    values = dict(zip(names, row, strict=True))
    values["counts"] = json.loads(values["counts"])
    values["amounts"] = json.loads(values["amounts"])
    for name in ("created_at", "started_at", "finished_at", "lease_until"):
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    return Batch(**values)
