"""`GET /v1/prescriptions/{id}/access-log`: who called this prescription, newest first."""

from __future__ import annotations

from datetime import datetime

import anyio.to_thread
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from adapters.access.store import Position, StoredEntry
from adapters.http.call import Call
from adapters.http.pages import PageRequest
from adapters.http.problems import Problem
from adapters.permissions import allow
from domain.identifiers import PrescriptionNumber


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type="application/problem+json")


class AccessItem(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    role: str
    rpps: str | None
    finess: str | None
    action: str
    status: int


class AccessLogPage(msgspec.Struct, frozen=True):
    items: list[AccessItem]
    next_cursor: str | None


class AccessLogController(Controller):
    path = "/v1/prescriptions/{prescription_id:str}/access-log"
    tags = ["prescriptions"]  # noqa: RUF012

    @get(
        "/",
        summary="Who called this prescription (its patient, the insurer)",
        description="Every call on this prescription's own endpoints by anyone but its "
        "patient, refused ones included, newest first; an entry appears within 1 second.",
        responses={
            400: _problem("invalid_request: limit out of bounds"),
            403: _problem("forbidden: a prescriber or a pharmacist"),
            404: _problem("not_found: no such prescription, or another patient's"),
            422: _problem("invalid_request: a cursor this server did not give"),
        },
    )
    async def access_log(
        self,
        prescription_id: FromPath[str],
        *,
        call: NamedDependency[Call],
        page: NamedDependency[PageRequest],
    ) -> AccessLogPage:
        actor, service, access_log = call.actor, call.service, call.access_log
        allow(actor, "access_log")
        await service.read(actor, prescription_id)  # another patient's: 404, as for a read
        number = PrescriptionNumber.parse(prescription_id).value
        found = await anyio.to_thread.run_sync(
            access_log.page, number, page.after(Position), page.fetch
        )
        return AccessLogPage(
            items=[_item(stored) for stored in page.items(found)],
            next_cursor=page.next_cursor(found, lambda stored: stored.position),
        )


def _item(stored: StoredEntry) -> AccessItem:
    entry = stored.entry
    return AccessItem(
        at=entry.at,
        role=entry.role,
        rpps=entry.rpps,
        finess=entry.finess,
        action=entry.action,
        status=entry.status,
    )
