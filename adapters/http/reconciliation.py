"""The insurer's reconciliation batches (contract.md, "Assurance Maladie (reconciliation)").

`POST /v1/reconciliation/batches` streams the NDJSON body into the store as it arrives (never
the whole body in memory; the app's 64 KiB body limit does not apply here) and answers 202
once it is all staged; the batch is reconciled by a background task. `GET …/{batch_id}` tells
the status, the counts per outcome and the progress; `GET …/{batch_id}/items` streams the items
as NDJSON, read page by page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from adapters.http.call import Call
from adapters.http.schemas import BadBody
from adapters.permissions import allow
from adapters.reconciliation import Reconciliation
from adapters.reconciliation.store import Batch, Item
from domain.actors import Actor
from domain.errors import DomainError
from domain.reconciliation.invoices import OUTCOMES, Outcome

NDJSON = "application/x-ndjson"
NDJSON_TYPES = {NDJSON, "application/ndjson", "application/jsonl", "application/x-jsonlines"}
MAX_BATCH_BYTES = 4 * 1024**3  # 4 GiB, about 12 million invoices: staged as it arrives


class BatchAccepted(msgspec.Struct, frozen=True):
    batch_id: str


class BatchView(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    status: Literal["running", "done"]
    counts: dict[str, int]
    # cents billed by the invoices of each outcome: what the insurer pays (`matched`) and what
    # this batch stopped it from paying (every other outcome); `invalid` lines count 0
    amounts_cents: dict[str, int]
    lines_total: int
    lines_done: int
    progress: float
    lines_per_second: float | None
    eta_seconds: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    log_position: int | None  # the views reflected the log up to here when it started
    error: str | None  # the last failure, if the batch had to be resumed


class ItemView(msgspec.Struct, frozen=True):
    line: int
    invoice_number: str | None
    outcome: str
    detail: str


async def provide_reconciliation(call: NamedDependency[Call]) -> Reconciliation:
    """The application's reconciliation (adapters/bootstrap.py), once the caller is known; its
    tables are created and what a dead process left unfinished is resumed on first use."""
    reconciliation = call.reconciliation
    await reconciliation.ready()
    return reconciliation


@dataclass
class NdjsonUpload(Operation):
    """The POST's body in the OpenAPI document: Litestar cannot see it, the handler streams it."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="One invoice per line: " + INVOICE_SHAPE,
            content={NDJSON: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
        )


INVOICE_SHAPE = (
    '`{"invoice_number", "finess", "prescription_id", "lines": [{"line_no", '
    '"product": {"system", "code", "label"}, "quantity", "amount_cents"}]}`'
)


def _insurer(actor: Actor) -> None:
    allow(actor, "reconciliation")


class ReconciliationController(Controller):
    path = "/v1/reconciliation/batches"
    dependencies = {  # noqa: RUF012 - Litestar reads this class attribute
        "reconciliation": Provide(provide_reconciliation),
    }
    tags = ["reconciliation"]  # noqa: RUF012

    @post(
        "/",
        status_code=202,
        request_max_body_size=MAX_BATCH_BYTES,
        summary="Submit invoices to reconcile (NDJSON, one invoice per line)",
        description="Streamed to storage as it arrives, then reconciled in the background: "
        "poll the batch for its status and counts, read its items.",
        operation_class=NdjsonUpload,
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        call: NamedDependency[Call],
        reconciliation: NamedDependency[Reconciliation],
    ) -> BatchAccepted:
        actor = call.actor
        _insurer(actor)
        media_type = request.headers.get("content-type", NDJSON).split(";")[0].strip().lower()
        if media_type not in NDJSON_TYPES:
            raise HTTPException(f"the body must be {NDJSON}, one invoice per line", status_code=415)
        await reconciliation.resume_unfinished()  # what a dead process left, before anything new
        batch_id = await reconciliation.receive(_pieces(request))
        reconciliation.start(batch_id)
        return BatchAccepted(batch_id)

    @get("/{batch_id:str}", summary="A batch's status, counts per outcome and progress")
    async def batch(
        self,
        batch_id: FromPath[str],
        call: NamedDependency[Call],
        reconciliation: NamedDependency[Reconciliation],
    ) -> BatchView:
        actor = call.actor
        _insurer(actor)
        return _view(await _existing(reconciliation, batch_id))

    @get(
        "/{batch_id:str}/items",
        media_type=NDJSON,
        summary="The batch's items as NDJSON, in line order, optionally of one outcome",
        description="Streamed page by page; while the batch runs, the items reconciled so far.",
    )
    async def items(
        self,
        batch_id: FromPath[str],
        call: NamedDependency[Call],
        reconciliation: NamedDependency[Reconciliation],
        outcome: Annotated[
            str | None, QueryParameter(description=f"one of {', '.join(OUTCOMES)}")
        ] = None,
    ) -> Stream:
        actor = call.actor
        _insurer(actor)
        if outcome is not None and outcome not in OUTCOMES:
            raise BadBody(f"outcome must be one of {', '.join(OUTCOMES)}", "outcome")
        await _existing(reconciliation, batch_id)
        wanted: Outcome | None = outcome  # narrowed by the check above
        return Stream(_ndjson(reconciliation, batch_id, wanted), media_type=NDJSON)


async def _pieces(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    async for piece in request.stream():
        if piece:
            yield piece


async def _existing(reconciliation: Reconciliation, batch_id: str) -> Batch:
    batch = await reconciliation.status(batch_id)
    if batch is None or batch.status == "receiving":
        raise DomainError("not_found", "no reconciliation batch with this id")
    return batch


_encoder = msgspec.json.Encoder()


async def _ndjson(
    reconciliation: Reconciliation, batch_id: str, outcome: Outcome | None
) -> AsyncIterator[bytes]:
    async for page in reconciliation.item_pages(batch_id, outcome):
        yield _encoder.encode_lines([_item(item) for item in page])


def _item(item: Item) -> ItemView:
    return ItemView(item.line, item.invoice_number, item.outcome, item.detail)


def _view(batch: Batch) -> BatchView:
    rate = eta = None
    if batch.started_at is not None:
        until = batch.finished_at or datetime.now(UTC)
        elapsed = (until - batch.started_at).total_seconds()
        rate = round(batch.lines_done / elapsed, 1) if elapsed > 0 else None
        if rate and batch.status != "done":
            eta = round((batch.lines_total - batch.lines_done) / rate, 1)
    return BatchView(
        batch_id=batch.batch_id,
        status="done" if batch.status == "done" else "running",
        counts=batch.counts_of_every_outcome(),
        amounts_cents=batch.amounts_of_every_outcome(),
        lines_total=batch.lines_total,
        lines_done=batch.lines_done,
        progress=round(batch.lines_done / batch.lines_total, 4) if batch.lines_total else 1.0,
        lines_per_second=rate,
        eta_seconds=eta,
        created_at=batch.created_at,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        log_position=batch.log_position,
        error=batch.error,
    )
