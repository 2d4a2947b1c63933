"""The lists of contract.md, read from the projections: they may lag the log by up to 1 s."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from adapters.http.routes import provide_actor
from adapters.permissions import PERMISSIONS, allow
from adapters.readmodels import ReadModels
from domain.actors import Actor
from domain.errors import DomainError, invalid
from domain.events import TransmissionSender
from domain.prescription import Prescription
from domain.views import PatientRef, PrescriptionView, display_number, view_of
from projections.folds import InboxEntry, InboxLine
from projections.pages import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CursorKey,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[str | None, QueryParameter(description="next_cursor of the previous page")]


class PrescriptionPage(msgspec.Struct, frozen=True):
    items: list[PrescriptionView]
    next_cursor: str | None


class InboxItem(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: str
    transmitted_at: datetime
    message: str
    patient: PatientRef
    expires_on: date
    lines: tuple[InboxLine, ...]
    sent_by: Annotated[
        TransmissionSender,
        msgspec.Meta(description="who sent it: the patient, or the prescriber who wrote it"),
    ]


class InboxPage(msgspec.Struct, frozen=True):
    items: list[InboxItem]
    next_cursor: str | None


def provide_read_models(state: State) -> ReadModels:
    read_models: ReadModels = state.read_models
    return read_models


def provide_today(state: State) -> date:
    today: date = state.service.clock().today
    return today


class ListsController(Controller):
    path = "/v1"
    dependencies = {  # noqa: RUF012 - Litestar reads this class attribute
        "actor": Provide(provide_actor),
        "read_models": Provide(provide_read_models, sync_to_thread=False),
        "today": Provide(provide_today, sync_to_thread=False),
    }
    tags = ["lists"]  # noqa: RUF012

    @get("/prescribers/me/prescriptions", summary="The prescriber's prescriptions, newest first")
    async def prescriber_list(
        self,
        actor: NamedDependency[Actor],
        read_models: NamedDependency[ReadModels],
        today: NamedDependency[date],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> PrescriptionPage:
        own = _identity(actor, "prescriber_list", actor.rpps)
        return await _prescriptions(
            read_models,
            actor,
            by="prescriber_rpps",
            value=own,
            today=today,
            limit=limit,
            cursor=cursor,
        )

    @get("/patients/me/prescriptions", summary="The patient's prescriptions, newest first")
    async def patient_list(
        self,
        actor: NamedDependency[Actor],
        read_models: NamedDependency[ReadModels],
        today: NamedDependency[date],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> PrescriptionPage:
        own = _identity(actor, "patient_list", actor.ins)
        return await _prescriptions(
            read_models, actor, by="patient_ins", value=own, today=today, limit=limit, cursor=cursor
        )

    @get("/pharmacies/me/inbox", summary="Prescriptions sent to the pharmacy, oldest first")
    async def inbox(
        self,
        actor: NamedDependency[Actor],
        read_models: NamedDependency[ReadModels],
        today: NamedDependency[date],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> InboxPage:
        finess = _identity(actor, "pharmacy_inbox", actor.finess)
        entries = await read_models.views.inbox_page(finess, today, _after(cursor), limit + 1)
        page = entries[:limit]
        return InboxPage(
            items=[_inbox_item(entry) for entry in page],
            next_cursor=_next(
                entries, limit, lambda e: CursorKey(e.transmitted_at, e.prescription_id)
            ),
        )


async def _prescriptions(
    read_models: ReadModels,
    actor: Actor,
    *,
    by: Literal["prescriber_rpps", "patient_ins"],
    value: str,
    today: date,
    limit: int,
    cursor: str | None,
) -> PrescriptionPage:
    states = await read_models.views.prescriptions_page(by, value, _after(cursor), limit + 1)
    return PrescriptionPage(
        items=[view_of(state, actor, today) for state in states[:limit]],
        next_cursor=_next(states, limit, _key_of),
    )


def _key_of(state: Prescription) -> CursorKey:
    return CursorKey(state.issued_at, state.prescription_id)


def _next(found: list[Any], limit: int, key: Any) -> str | None:
    """A cursor only when one more item than asked was found: null means the last page."""
    return encode_cursor(key(found[limit - 1])) if len(found) > limit else None


def _after(cursor: str | None) -> CursorKey | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except InvalidCursor as error:
        raise invalid(str(error), "cursor") from error


def _identity(actor: Actor, list_name: str, identity: str | None) -> str:
    allow(actor, list_name)
    if identity is None:  # a token of that role always carries it
        raise DomainError("forbidden", PERMISSIONS[list_name].refusal)
    return identity


def _inbox_item(entry: InboxEntry) -> InboxItem:
    return InboxItem(
        prescription_id=display_number(entry.prescription_id),
        transmitted_at=entry.transmitted_at,
        message=entry.message,
        patient=PatientRef(ins=entry.patient_ins),
        expires_on=entry.expires_on,
        lines=entry.lines,
        sent_by=entry.sent_by,
    )
