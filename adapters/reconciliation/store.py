"""What the batch processing needs from a store, whichever database holds it.

`BatchStore` is the one contract, and holds what both stores do the same way: each statement
(`tables.BatchSql`, written once for both dialects) run in one transaction or read, and rows
made into batches, items, claims and payments. A store gives the transaction (`_write`,
`_read`), its clock's moments as stored (`_moment`), its tables (`create`) and the chunk commit,
which is where the databases really differ (see `postgres` and `sqlite`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import msgspec

from adapters.reconciliation.ndjson import RawChunk
from adapters.reconciliation.tables import BATCHES, BatchSql
from domain.reconciliation.decision import Previous
from domain.reconciliation.invoices import OUTCOMES, InvoiceKey, Outcome
from domain.reconciliation.records import PAID_FIELDS, UNITS_UNKNOWN, PaidInvoices, PaidLines

BatchPhase = Literal["receiving", "running", "done"]


class Batch(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    status: BatchPhase
    counts: dict[str, int]
    amounts: dict[str, int]  # cents billed by the invoices of each outcome
    lines_total: int
    lines_done: int
    chunks_total: int
    chunks_done: int
    bytes_received: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    log_position: int | None
    log_head: int | None
    owner: str | None
    lease_until: datetime | None
    error: str | None

    def counts_of_every_outcome(self) -> dict[str, int]:
        return {outcome: self.counts.get(outcome, 0) for outcome in OUTCOMES}

    def amounts_of_every_outcome(self) -> dict[str, int]:
        return {outcome: self.amounts.get(outcome, 0) for outcome in OUTCOMES}


class Item(NamedTuple):
    line: int
    invoice_number: str | None
    outcome: Outcome
    detail: str


# Rows as the tables take them (COPY): built off the event loop, with the verdicts.
ItemRow = tuple[
    str, int, str | None, Outcome, str
]  # batch_id, line, invoice_number, outcome, detail
# finess, invoice_number, batch_id, line, outcome, prescription_id, paid_lines and paid_units
# (matched only, as text: "line_no,quantity,amount_cents,…" and "units,…", which COPY sends
# without a per-element check)
ClaimRow = tuple[str, str, str, int, Outcome, str | None, str | None, str | None]


class ChunkResult(NamedTuple):
    """What one chunk's commit writes: its items, the invoice numbers it reconciled first."""

    items: list[ItemRow]
    claims: list[ClaimRow]
    counts: dict[str, int]  # of these items, per outcome
    amounts: dict[str, int]  # cents billed by these items' invoices, per outcome
    paid: dict[str, PaidInvoices]  # the matched ones, by prescription


def stored_paid(lines: PaidLines) -> tuple[str, str]:
    """A matched invoice's lines as stored: line_no, quantity, amount_cents, one line after
    another; and apart, the units of each line (UNITS_UNKNOWN where the catalogue said none)."""
    if len(lines) == PAID_FIELDS:  # one line: most invoices
        return f"{lines[0]},{lines[1]},{lines[2]}", str(lines[3])
    lines_text = ",".join(
        f"{lines[at]},{lines[at + 1]},{lines[at + 2]}" for at in range(0, len(lines), PAID_FIELDS)
    )
    return lines_text, ",".join(map(str, lines[3::PAID_FIELDS]))


def paid_of(text: str, units_text: str | None) -> PaidLines:
    """The stored lines of a matched invoice; stored before the units were (no `units_text`),
    its lines count packs."""
    values = tuple(map(int, text.split(",")))
    count = len(values) // 3
    units = tuple(map(int, units_text.split(","))) if units_text else (UNITS_UNKNOWN,) * count
    return tuple(v for at in range(count) for v in (*values[3 * at : 3 * at + 3], units[at]))


PaidByPrescription = Mapping[str, PaidInvoices]


class Paid(NamedTuple):
    """The invoices already paid for some prescriptions, as of the `seen`-th chunk commit (of
    any batch): a commit after it may have paid more (see `Decided`)."""

    seen: int
    invoices: dict[str, PaidInvoices]


class Decided(Protocol):
    """A chunk decided before its commit, from what the store said when it was looked up.

    Chunks of all batches commit one at a time, each numbered; a batch running at the same time
    may have committed since, claiming some of the chunk's invoice numbers or paying some of its
    packs. The commit then decides it again (`resolve`) knowing those numbers taken and what
    is paid now, so that the packs are paid once whichever batch comes first."""

    @property
    def result(self) -> ChunkResult: ...

    @property
    def numbers(self) -> Collection[str]:
        """The prescriptions the chunk bills."""

    @property
    def seen(self) -> int:
        """The last commit whose payments it saw."""

    def resolve(
        self, taken: Mapping[InvoiceKey, Previous], paid: PaidByPrescription | None = None
    ) -> ChunkResult: ...


class LostLease(Exception):  # noqa: N818 - named after the fact it reports
    """Another process took the batch over (this one was presumed dead): stop working on it."""


class Step(NamedTuple):
    """One statement of a transaction; with `lost`, it must find the batch (RETURNING a row),
    or the batch is no longer ours and the transaction is undone (LostLease(lost))."""

    sql: str
    params: Sequence[object] = ()
    lost: str | None = None


def checked(step: Step, rows: list[Any]) -> list[Any]:
    if step.lost is not None and not rows:
        raise LostLease(step.lost)
    return rows


class ChunkCommit(NamedTuple):
    """A chunk decided, to commit for its batch and the batch's owner."""

    batch_id: str
    owner: str
    chunk_no: int
    decided: Decided
    lease_seconds: float


class BatchStore(ABC):
    """The batches in a database: what the processing calls (the public methods), done the
    same way on both databases; a store adds its transactions, clock, tables and commit."""

    def __init__(self, sql: BatchSql) -> None:
        self.sql = sql

    @abstractmethod
    async def create(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _write(self, *steps: Step) -> list[list[Any]]:
        """The steps in one write transaction; the rows each returned."""

    @abstractmethod
    async def _read(self, *steps: Step) -> list[list[Any]]:
        """The steps' rows, read on one connection."""

    @abstractmethod
    def _moment(self, stored: Any) -> datetime:
        """A time as the database returns it."""

    # --- receiving ---

    async def new_batch(self, batch_id: str, owner: str, lease_seconds: float) -> None:
        await self._write(Step(self.sql.new_batch, (batch_id, owner, lease_seconds)))

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
        counted = (chunk_no + 1, chunk.invoices, bytes_received)
        await self._write(
            self._renewal(self.sql.renew_receiving, batch_id, owner, lease_seconds, *counted),
            Step(self.sql.add_chunk, (batch_id, chunk_no, *chunk)),
        )

    async def renew(self, batch_id: str, owner: str, lease_seconds: float) -> None:
        """Extend the lease; raises LostLease if the batch is no longer ours."""
        await self._write(self._renewal(self.sql.renew, batch_id, owner, lease_seconds))

    def _renewal(
        self, sql: str, batch_id: str, owner: str, lease_seconds: float, *also: object
    ) -> Step:
        lost = f"batch {batch_id} is no longer ours"
        return Step(sql, (batch_id, owner, lease_seconds, *also), lost)

    async def received(self, batch_id: str, owner: str) -> None:
        """The upload is complete: the batch is `running`."""
        await self._write(Step(self.sql.received, (batch_id, owner)))

    async def forget(self, batch_id: str) -> None:
        """Delete a batch whose upload never completed (its id was never given out)."""
        await self._write(*(Step(delete, (batch_id,)) for delete in self.sql.forget))

    # --- processing ---

    async def claim(self, batch_id: str, owner: str, lease_seconds: float) -> Batch | None:
        """Take the batch's lease if it expired (or is ours); None if another process holds it."""
        [rows] = await self._write(Step(self.sql.claim, (batch_id, owner, lease_seconds)))
        return self._batch(rows[0]) if rows else None

    async def mark_log(self, batch_id: str, position: int, head: int) -> None:
        await self._write(Step(self.sql.mark_log, (batch_id, position, head)))

    async def chunk(self, batch_id: str, chunk_no: int) -> tuple[int, bytes]:
        """The chunk's first line number and body."""
        [rows] = await self._read(Step(self.sql.chunk, (batch_id, chunk_no)))
        if not rows:
            msg = f"chunk {chunk_no} of batch {batch_id} is missing"
            raise LookupError(msg)
        return int(rows[0][0]), bytes(rows[0][1])

    async def taken(self, keys: Sequence[InvoiceKey]) -> dict[InvoiceKey, Previous]:
        """Which of these invoice numbers were already reconciled, and where."""
        if not keys:
            return {}
        [rows] = await self._read(self._taken(keys))
        return previous_of(rows)

    def _taken(self, keys: Sequence[InvoiceKey]) -> Step:
        return Step(self.sql.taken, self.sql.dialect.key_lists(keys))

    async def paid(self, numbers: Collection[str]) -> Paid:
        """The invoices already reconciled as `matched` for these prescriptions, by number."""
        # the commit number first: every commit up to it is visible to the next statement
        last, rows = await self._read(Step(self.sql.last_commit), self._paid(numbers))
        return Paid(int(last[0][0]), paid_by_prescription(rows))

    def _paid(self, numbers: Collection[str]) -> Step:
        return Step(self.sql.paid, (self.sql.dialect.id_list(numbers),))

    async def commit_chunk(
        self,
        batch_id: str,
        owner: str,
        chunk_no: int,
        decided: Decided,
        *,
        lease_seconds: float,
    ) -> ChunkResult:
        """In one transaction, one chunk commit of any batch at a time: claim the chunk's
        invoice numbers (if another batch took some or paid for its prescriptions since it was
        looked up, it is decided again), write the items, add to the counts and the progress,
        renew the lease. Raises LostLease if the batch is no longer ours here."""
        return await self._commit(ChunkCommit(batch_id, owner, chunk_no, decided, lease_seconds))

    @abstractmethod
    async def _commit(self, chunk: ChunkCommit) -> ChunkResult: ...

    def _totals(self, chunk: ChunkCommit) -> Step:
        """The batch's counts and amounts so far, if the chunk is the next one of ours."""
        lost = f"batch {chunk.batch_id} is no longer ours at chunk {chunk.chunk_no}"
        return Step(self.sql.totals, (chunk.batch_id, chunk.owner, chunk.chunk_no), lost)

    def _progress(
        self, chunk: ChunkCommit, totals: Sequence[Any], result: ChunkResult
    ) -> tuple[object, ...]:
        """The parameters of `sql.progress`: the chunk done, its counts added to the batch's."""
        return (
            chunk.batch_id,
            chunk.chunk_no,
            len(result.items),
            json.dumps(merge_counts(json.loads(totals[0]), result.counts)),
            chunk.lease_seconds,
            json.dumps(merge_counts(json.loads(totals[1]), result.amounts)),
        )

    async def finish(self, batch_id: str, owner: str, error: str | None = None) -> None:
        await self._write(Step(self.sql.finish, (batch_id, owner, error)))

    async def release(self, batch_id: str, owner: str, error: str, retry_seconds: float) -> None:
        """Give the lease up after a failure, recording it: another attempt (here or in another
        process) may take the batch after `retry_seconds`."""
        await self._write(Step(self.sql.release, (batch_id, owner, error, retry_seconds)))

    # --- reading ---

    async def batch(self, batch_id: str) -> Batch | None:
        [rows] = await self._read(Step(self.sql.batch, (batch_id,)))
        return self._batch(rows[0]) if rows else None

    async def items(
        self, batch_id: str, outcome: Outcome | None, after_line: int, limit: int
    ) -> list[Item]:
        if outcome is None:
            page = Step(self.sql.items, (batch_id, after_line, limit))
        else:
            page = Step(self.sql.items_of_outcome, (batch_id, after_line, limit, outcome))
        [rows] = await self._read(page)
        return [Item(int(row[0]), row[1], row[2], row[3]) for row in rows]

    async def unfinished(self) -> list[Batch]:
        """Batches not done whose lease has expired (their process died)."""
        [rows] = await self._read(Step(self.sql.unfinished))
        return [self._batch(row) for row in rows]

    def _batch(self, row: Sequence[Any]) -> Batch:
        values = dict(zip(BATCHES.names, row, strict=True))
        values["counts"] = json.loads(values["counts"])
        values["amounts"] = json.loads(values["amounts"])
        for name in MOMENTS:
            if values[name] is not None:
                values[name] = self._moment(values[name])
        return Batch(**values)


MOMENTS = [column.name for column in BATCHES.columns if column.kind == "moment"]


def previous_of(rows: Iterable[Any]) -> dict[InvoiceKey, Previous]:
    """Rows of `sql.taken`, by invoice key."""
    return {(row[0], row[1]): Previous(row[2], int(row[3]), row[4]) for row in rows}


def paid_by_prescription(rows: Iterable[Any]) -> dict[str, PaidInvoices]:
    """Rows of `sql.paid`: the matched invoices' lines, by prescription and invoice key."""
    paid: dict[str, dict[InvoiceKey, PaidLines]] = {}
    for row in rows:
        paid.setdefault(row[0], {})[(row[1], row[2])] = paid_of(row[3], row[4])
    return dict(paid)


def merge_counts(total: Mapping[str, Any], more: Mapping[str, int]) -> dict[str, int]:
    merged = {key: int(value) for key, value in total.items()}
    for outcome, count in more.items():
        merged[outcome] = merged.get(outcome, 0) + count
    return merged
