"""What the batch processing needs from a store, whichever database holds it.

Tables (PostgreSQL beside the views; SQLite in `reconciliation.sqlite3` beside `views.sqlite3`):

    ordo_reconciliation_batches  one row per batch: status, counts per outcome, progress, and a
                                 lease (owner, lease_until) held by the process working on it
    ordo_reconciliation_chunks   the upload as received, in chunks of whole lines, until each
                                 chunk is reconciled (then deleted with the same commit)
    ordo_reconciliation_items    one row per invoice: line, invoice number, outcome, detail
    ordo_reconciled_invoices     (finess, invoice number) -> where it was first reconciled: the
                                 primary key is what makes a number reconciled only once, even by
                                 two batches running at the same time; for a `matched` invoice,
                                 its prescription and the lines it paid (`paid_lines`: line_no,
                                 quantity, amount_cents, flat), what later invoices of the same
                                 packs are `over_billed` against
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import msgspec

from adapters.reconciliation.ndjson import RawChunk
from domain.reconciliation import (
    OUTCOMES,
    InvoiceKey,
    Outcome,
    PaidInvoices,
    PaidLines,
    Previous,
)

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
# finess, invoice_number, batch_id, line, outcome, prescription_id, paid_lines (matched only,
# as text: "line_no,quantity,amount_cents,…", which COPY sends without a per-element check)
ClaimRow = tuple[str, str, str, int, Outcome, str | None, str | None]
ITEM_COLUMNS = ["batch_id", "line", "invoice_number", "outcome", "detail"]
CLAIM_COLUMNS = [
    "finess",
    "invoice_number",
    "batch_id",
    "line",
    "outcome",
    "prescription_id",
    "paid_lines",
]


class ChunkResult(NamedTuple):
    """What one chunk's commit writes: its items, the invoice numbers it reconciled first."""

    items: list[ItemRow]
    claims: list[ClaimRow]
    counts: dict[str, int]  # of these items, per outcome
    amounts: dict[str, int]  # cents billed by these items' invoices, per outcome
    paid: dict[str, PaidInvoices]  # the matched ones, by prescription


def stored_paid(lines: PaidLines) -> str:
    """A matched invoice's lines as stored: line_no, quantity, amount_cents, one after another."""
    if len(lines) == 3:  # one line: most invoices
        return f"{lines[0]},{lines[1]},{lines[2]}"
    return ",".join(map(str, lines))


def paid_of(text: str) -> PaidLines:
    return tuple(map(int, text.split(",")))


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


class BatchStore(Protocol):
    async def create(self) -> None: ...

    async def close(self) -> None: ...

    # --- receiving ---
    async def new_batch(self, batch_id: str, owner: str, lease_seconds: float) -> None: ...

    async def add_chunk(
        self,
        batch_id: str,
        owner: str,
        chunk_no: int,
        chunk: RawChunk,
        *,
        bytes_received: int,
        lease_seconds: float,
    ) -> None: ...

    async def renew(self, batch_id: str, owner: str, lease_seconds: float) -> None:
        """Extend the lease; raises LostLease if the batch is no longer ours."""

    async def received(self, batch_id: str, owner: str) -> None:
        """The upload is complete: the batch is `running`."""

    async def forget(self, batch_id: str) -> None:
        """Delete a batch whose upload never completed (its id was never given out)."""

    # --- processing ---
    async def claim(self, batch_id: str, owner: str, lease_seconds: float) -> Batch | None:
        """Take the batch's lease if it expired (or is ours); None if another process holds it."""

    async def mark_log(self, batch_id: str, position: int, head: int) -> None: ...

    async def chunk(self, batch_id: str, chunk_no: int) -> tuple[int, bytes]:
        """The chunk's first line number and body."""

    async def states(self, numbers: Collection[str]) -> dict[str, bytes]:
        """The prescriptions' folded states (MessagePack) from the views, by canonical number."""

    async def taken(self, keys: Sequence[InvoiceKey]) -> dict[InvoiceKey, Previous]:
        """Which of these invoice numbers were already reconciled, and where."""

    async def paid(self, numbers: Collection[str]) -> Paid:
        """The invoices already reconciled as `matched` for these prescriptions, by number."""

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

    async def finish(self, batch_id: str, owner: str, error: str | None = None) -> None: ...

    async def release(self, batch_id: str, owner: str, error: str, retry_seconds: float) -> None:
        """Give the lease up after a failure, recording it: another attempt (here or in another
        process) may take the batch after `retry_seconds`."""

    # --- reading ---
    async def batch(self, batch_id: str) -> Batch | None: ...

    async def items(
        self, batch_id: str, outcome: Outcome | None, after_line: int, limit: int
    ) -> list[Item]: ...

    async def unfinished(self) -> list[Batch]:
        """Batches not done whose lease has expired (their process died)."""


def merge_counts(total: Mapping[str, Any], more: Mapping[str, int]) -> dict[str, int]:
    merged = {key: int(value) for key, value in total.items()}
    for outcome, count in more.items():
        merged[outcome] = merged.get(outcome, 0) + count
    return merged
