"""The v1 routes of contract.md. Handlers translate HTTP to a use case and back, nothing more.

Use cases are coroutines (the event store is asyncpg on PostgreSQL): handlers await them on the
event loop, no worker thread. Who may call what is checked by the service
(`adapters/permissions.py`): a handler passes the body's command *builder*, which the service
completes with the pharmacist's or prescriber's identity once it has checked the role.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
import segno
from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, QueryParameter

from adapters.http.call import Call
from adapters.http.conditional import ETAG_HEADER, NOT_MODIFIED, IfNoneMatch, conditional
from adapters.http.dependencies import today_of
from adapters.http.schemas import (
    AdaptationBody,
    BillBody,
    CancelBody,
    ConsentBody,
    DispenseBody,
    IssueBody,
    TransmissionBody,
    WithdrawalBody,
    parse_identifier,
    strict_body,
)
from adapters.timetravel import history_as_of, prescription_as_of
from domain.actors import Actor
from domain.calendar import local_day, paris_day
from domain.dispensable import Allowance, LimitingRule
from domain.errors import invalid
from domain.events import Event, Procedure
from domain.identifiers import Finess
from domain.procedures import ProcedureAllowance
from domain.views import (
    DispensationReceipt,
    DispensationView,
    IssuedPrescriptionView,
    PrescriptionView,
    issued_view,
    qr_payload,
    view_of,
)

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=255,
        description="Retry-safe key: a repeat returns the first answer and records nothing new.",
    ),
]


class DispensableLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    max_quantity: int  # packs of the prescribed size
    reason: LimitingRule | None
    next_on: date | None
    detail: str
    # A line counted in units (the catalogue knows its packs' units): the most units now, and
    # the units left; both null on a line counted in packs.
    counted_in: Literal["units", "packs"]
    max_units: int | None
    remaining_units: int | None
    # A line the prescription gives nothing more of that one of the pharmacist's own
    # procedures continues: which, and how much (null: none does).
    procedure: DispensableByProcedure | None = None


class DispensableByProcedure(msgspec.Struct, frozen=True, kw_only=True):
    """What one of the pharmacist's own procedures gives of a line now (packs of the
    prescribed size; units on a line counted in units, else null)."""

    procedure: Procedure
    max_quantity: int
    max_units: int | None
    detail: str


class Dispensable(msgspec.Struct, frozen=True, kw_only=True):
    """How much a dispensing at `at` in the caller's pharmacy may give, line by line."""

    at: datetime
    lines: tuple[DispensableLine, ...]


def dispensable_line(allowance: Allowance) -> DispensableLine:
    return DispensableLine(
        line_no=allowance.line_no,
        max_quantity=allowance.max_quantity,
        reason=allowance.reason,
        next_on=allowance.next_on,
        detail=allowance.why,
        counted_in="packs" if allowance.max_units is None else "units",
        max_units=allowance.max_units,
        remaining_units=allowance.remaining_units,
        procedure=None if allowance.procedure is None else _by_procedure(allowance.procedure),
    )


def _by_procedure(allowed: ProcedureAllowance) -> DispensableByProcedure:
    return DispensableByProcedure(
        procedure=allowed.procedure,
        max_quantity=allowed.max_quantity,
        max_units=allowed.max_units,
        detail=allowed.why,
    )


def _instant(text: str | None, field: str = "at") -> datetime | None:
    if text is None:
        return None
    try:
        return msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        raise invalid("an RFC 3339 instant with its offset is expected", field) from None


def _as_of(text: str | None) -> datetime | None:
    """An instant to compare with events' UTC stamps: its offset is required."""
    instant = _instant(text, "as_of")
    if instant is not None and instant.tzinfo is None:
        raise invalid("as_of needs its UTC offset (RFC 3339)", "as_of")
    return instant


AsOf = Annotated[
    str | None,
    QueryParameter(
        name="as_of",
        required=False,
        description="RFC 3339 instant: the prescription as its events stood then (masking as "
        "of now); before it was issued, 404",
    ),
]


def _day_at(actor: Actor, instant: datetime) -> date:
    """The day an `as_of` instant fell on, where the caller is (as `_today`)."""
    if actor.role == "pharmacist" and actor.finess:
        return local_day(instant, actor.finess)
    return paris_day(instant)


class HistoryActor(msgspec.Struct, frozen=True, omit_defaults=True):
    role: str
    rpps: str | None = None
    finess: str | None = None


class HistoryEntry(msgspec.Struct, frozen=True):
    type: str
    version: int
    at: datetime
    actor: HistoryActor
    data: dict[str, Any]


class History(msgspec.Struct, frozen=True):
    events: list[HistoryEntry]


ENVELOPE = {"prescription_id", "version", "at"}


def history_entry(event: Event, prescriber_rpps: str) -> HistoryEntry:
    data = {k: v for k, v in msgspec.to_builtins(event).items() if k not in ENVELOPE}
    return HistoryEntry(
        type=type(event).__name__,
        version=event.version,
        at=event.at,
        actor=_acting(data, prescriber_rpps),
        data=data,
    )


def _acting(data: dict[str, Any], prescriber_rpps: str) -> HistoryActor:
    if "finess" in data and "pharmacist_rpps" in data:
        return HistoryActor("pharmacist", rpps=data["pharmacist_rpps"], finess=data["finess"])
    if "changed_by" in data:
        return HistoryActor(data["changed_by"])
    if "finess" in data:  # a transmission: the patient's act, or the prescriber's
        sender = data.get("sent_by", "patient")
        return HistoryActor(sender, rpps=prescriber_rpps if sender == "prescriber" else None)
    return HistoryActor("prescriber", rpps=data.get("prescriber_rpps", prescriber_rpps))


class PrescriptionController(Controller):
    path = "/v1/prescriptions"
    tags = ["prescriptions"]  # noqa: RUF012

    @post(
        "/",
        status_code=201,
        summary="Register a prescription (LAP)",
        dependencies={"payload": strict_body(IssueBody)},
    )
    async def issue(
        self,
        payload: NamedDependency[IssueBody],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> IssuedPrescriptionView:
        actor, service = call.actor, call.service
        state = await service.issue(actor, payload.command, idempotency_key)
        return issued_view(state, actor, today_of(service, actor))

    @get(
        "/{prescription_id:str}",
        summary="Read a prescription",
        response_headers=[ETAG_HEADER],
        responses=NOT_MODIFIED,
    )
    async def read(
        self,
        prescription_id: FromPath[str],
        call: NamedDependency[Call],
        as_of: AsOf = None,
        if_none_match: IfNoneMatch = None,
    ) -> Response[PrescriptionView]:
        actor, service = call.actor, call.service
        instant = _as_of(as_of)
        if instant is not None:
            then = await prescription_as_of(service, actor, prescription_id, instant)
            view = view_of(then, actor, _day_at(actor, instant))
            return conditional(view, then.version, if_none_match)
        state = await service.read(actor, prescription_id)
        view = view_of(state, actor, today_of(service, actor))
        return conditional(view, state.version, if_none_match)

    @get(
        "/{prescription_id:str}/qr.svg",
        media_type="image/svg+xml",
        summary="The QR code to print on the prescription",
    )
    async def qr_code(
        self,
        prescription_id: FromPath[str],
        call: NamedDependency[Call],
    ) -> bytes:
        actor, service = call.actor, call.service
        state = await service.read(actor, prescription_id)
        buffer = io.BytesIO()
        segno.make(qr_payload(state.prescription_id), error="m").save(
            buffer, kind="svg", scale=4, border=2
        )
        return buffer.getvalue()

    @post(
        "/{prescription_id:str}/cancel",
        status_code=200,
        dependencies={"payload": strict_body(CancelBody)},
    )
    async def cancel(
        self,
        prescription_id: FromPath[str],
        payload: NamedDependency[CancelBody],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> PrescriptionView:
        actor, service = call.actor, call.service
        state = await service.cancel(actor, prescription_id, payload.reason, idempotency_key)
        return view_of(state, actor, today_of(service, actor))

    @put(
        "/{prescription_id:str}/execution-view-consent",
        dependencies={"payload": strict_body(ConsentBody)},
    )
    async def change_consent(
        self,
        prescription_id: FromPath[str],
        payload: NamedDependency[ConsentBody],
        call: NamedDependency[Call],
    ) -> PrescriptionView:
        actor, service = call.actor, call.service
        state = await service.change_consent(actor, prescription_id, payload.consent)
        return view_of(state, actor, today_of(service, actor))

    @get("/{prescription_id:str}/events", summary="Audit history")
    async def history(
        self,
        prescription_id: FromPath[str],
        call: NamedDependency[Call],
        as_of: AsOf = None,
    ) -> History:
        actor, service = call.actor, call.service
        instant = _as_of(as_of)
        events = (
            await service.history(actor, prescription_id)
            if instant is None
            else await history_as_of(service, actor, prescription_id, instant)
        )
        prescriber = getattr(events[0], "prescriber_rpps", "")
        return History([history_entry(event, prescriber) for event in events])

    @post(
        "/{prescription_id:str}/dispensations",
        status_code=201,
        summary="Record a dispensing (LGO), at once",
        responses={
            201: ResponseSpec(data_container=DispensationReceipt, description="Recorded"),
        },
        dependencies={"payload": strict_body(DispenseBody)},
    )
    async def dispense(
        self,
        prescription_id: FromPath[str],
        payload: NamedDependency[DispenseBody],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> DispensationReceipt:
        actor, service = call.actor, call.service
        return await service.dispense(actor, prescription_id, payload.command, idempotency_key)

    @post(
        "/{prescription_id:str}/dispensations/{dispensation_id:str}/billing",
        status_code=201,
        summary="Send the billing data of a dispensation",
        description="An invoice number is used once per pharmacy (409 `invoice_number_used`); "
        "`amount_cents` is 0 to 10,000,000 per line. A withdrawn dispensation cannot be "
        "billed (409 `dispensation_withdrawn`).",
        responses={201: ResponseSpec(data_container=DispensationView, description="Billed")},
        dependencies={"payload": strict_body(BillBody)},
    )
    async def bill(
        self,
        prescription_id: FromPath[str],
        dispensation_id: FromPath[str],
        payload: NamedDependency[BillBody],
        call: NamedDependency[Call],
        *,
        idempotency_key: IdempotencyKey = None,
    ) -> DispensationView:
        actor, service = call.actor, call.service
        return await service.bill(
            actor,
            prescription_id,
            lambda pharmacy, pharmacist: payload.command(pharmacy, pharmacist, dispensation_id),
            idempotency_key,
        )

    @get(
        "/{prescription_id:str}/dispensable",
        summary="How much may be dispensed now, line by line (LGO)",
        description="A dispensing of `max_quantity` at that instant succeeds; one more pack "
        "fails with the line's `reason` as its code. `next_on` is the first day the line may "
        "be dispensed again once `max_quantity` is given (null: never). A line `counted_in` "
        "`units` (the catalogue knows its packs' units) also says `max_units` and "
        "`remaining_units`: any pack may be given whose units fit, and a pack lasting longer "
        "than 30 days whole, up to 3 months. A line the prescription gives nothing more of "
        "(expired, or all given) names in `procedure` the pharmacist's own procedure that "
        "continues it, with its `max_quantity` (and `max_units`) and why.",
    )
    async def dispensable(
        self,
        prescription_id: FromPath[str],
        call: NamedDependency[Call],
        at: Annotated[
            str | None,
            QueryParameter(
                required=False,
                description="RFC 3339 instant, same bounds as `dispensed_at`; default now",
            ),
        ] = None,
    ) -> Dispensable:
        actor, service = call.actor, call.service
        instant, allowed = await service.dispensable(actor, prescription_id, _instant(at))
        return Dispensable(at=instant, lines=tuple(map(dispensable_line, allowed)))

    @post(
        "/{prescription_id:str}/dispensations/{dispensation_id:str}/withdrawal",
        status_code=201,
        summary="Withdraw a dispensing recorded in error (its pharmacy, within 7 days)",
        dependencies={"payload": strict_body(WithdrawalBody)},
    )
    async def withdraw(
        self,
        prescription_id: FromPath[str],
        dispensation_id: FromPath[str],
        payload: NamedDependency[WithdrawalBody],
        call: NamedDependency[Call],
        *,
        idempotency_key: IdempotencyKey = None,
    ) -> PrescriptionView:
        actor, service = call.actor, call.service
        state = await service.withdraw(
            actor,
            prescription_id,
            lambda pharmacy, pharmacist: payload.command(pharmacy, pharmacist, dispensation_id),
            idempotency_key,
        )
        return view_of(state, actor, today_of(service, actor))

    @post(
        "/{prescription_id:str}/adaptations",
        status_code=201,
        summary="Record an adaptation made with the prescriber's agreement",
        dependencies={"payload": strict_body(AdaptationBody)},
    )
    async def adapt(
        self,
        prescription_id: FromPath[str],
        payload: NamedDependency[AdaptationBody],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> PrescriptionView:
        actor, service = call.actor, call.service
        state = await service.record_adaptation(
            actor, prescription_id, payload.command, idempotency_key
        )
        return view_of(state, actor, today_of(service, actor))

    @post(
        "/{prescription_id:str}/transmissions",
        status_code=201,
        summary="Send the prescription to a pharmacy's mailbox (BAL ORG)",
        description="The patient, or the prescriber who wrote it (a hospital at discharge, an "
        "EHPAD's doctor); another prescriber or patient gets 404. The pharmacy's inbox "
        "(`sent_by`) and the history say who sent it; the prescriber's sending also e-mails "
        "the ordonnance as a PDF to the pharmacy's BAL ORG (`pharmacy_mailbox`). A prescriber "
        "under the patient's "
        "opposition is refused only a cancelled prescription or one past its presentation "
        "deadline, never told it was dispensed.",
        dependencies={"payload": strict_body(TransmissionBody)},
    )
    async def transmit(
        self,
        prescription_id: FromPath[str],
        payload: NamedDependency[TransmissionBody],
        call: NamedDependency[Call],
        *,
        idempotency_key: IdempotencyKey = None,
    ) -> TransmissionView:
        """Opens a conversation with the pharmacy's BAL ORG (adapters/messaging)."""
        actor, service, conversations = call.actor, call.service, call.conversations
        pharmacy = parse_identifier(Finess, payload.finess, "finess")
        sent = await conversations.transmit(
            actor, prescription_id, pharmacy, payload.message, idempotency_key
        )
        view = view_of(sent.state, actor, today_of(service, actor))
        return TransmissionView(
            **msgspec.structs.asdict(view),
            conversation_id=sent.conversation_id,
            pharmacy_mailbox=sent.pharmacy_mailbox,
        )


class TransmissionView(PrescriptionView, frozen=True, kw_only=True):
    """The prescription as sent, the conversation it opened, and whether the pharmacy has an
    MSSanté mailbox (false: the patient is told, and the pharmacy still has it in its inbox)."""

    conversation_id: str | None  # None when the prescriber sent it: conversations are the patient's
    pharmacy_mailbox: bool
