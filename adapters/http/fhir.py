"""The FHIR R4 routes (`/fhir/R4`, contract "FHIR R4 interface"): the same use cases as /v1.

Each handler parses the resource (`adapters.fhir`), hands the command to `PrescriptionService`,
and shows its result as resources; refusals are the /v1 codes in an OperationOutcome
(`adapters.http.fhir_outcomes`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.fhir.bundles import searchset, transaction_response
from adapters.fhir.capability import capability_statement
from adapters.fhir.codes import PRESCRIPTION_SYSTEM
from adapters.fhir.dispensing import (
    Dispensing,
    SentDispense,
    dispense_element_of,
    dispense_id,
    dispensed_line_of_id,
    dispensing,
    medication_dispense,
    medication_dispenses,
)
from adapters.fhir.medication_request import (
    line_of_id,
    medication_request,
    prescription_or_line,
    request_id,
)
from adapters.fhir.operations import reason_of
from adapters.fhir.outcome import FhirError
from adapters.fhir.parsing import json_of
from adapters.fhir.prescribing import element_of, issuing
from adapters.fhir.searching import cursor_of, own_lines, resume_of
from adapters.fhir.transactions import Prescribing, single_dispense, single_request, transaction
from adapters.http.call import Call
from adapters.http.conditional import ETAG_HEADER, NOT_MODIFIED, IfNoneMatch, entity_tag, held
from adapters.http.dependencies import today_of
from adapters.http.fhir_outcomes import FHIR_EXCEPTION_HANDLERS, FHIR_JSON, negotiate, refused
from adapters.http.fhir_search import SEARCH, Search
from adapters.http.routes import IdempotencyKey
from adapters.permissions import allow
from adapters.readmodels import ReadModels
from adapters.service import PrescriptionService
from adapters.unit_of_work import last_appended
from domain.actors import Actor
from domain.decisions.corrections import Withdraw
from domain.errors import DomainError
from domain.prescription import Prescription
from domain.views import display_number, execution_visible, view_of

MAX_COUNT = 500
CATCH_UP_SECONDS = 5.0  # how long a lookup by dispensation waits for the read models
Count = Annotated[int, QueryParameter(name="_count", ge=1, le=MAX_COUNT, description="per page")]
Offset = Annotated[int, QueryParameter(name="_offset", ge=0, le=10_000, description="page start")]
Cursor = Annotated[
    str | None,
    QueryParameter(name="_cursor", required=False, max_length=500, description="next page"),
]
Prescribed = Annotated[
    str | None,
    QueryParameter(name="prescription", required=False, description="MedicationRequest/<id>"),
]


async def provide_resource(
    request: Request[Any, Any, Any],
    data: Any,
    # `call` only so that this resolves after the call, never beside it (see `Call`).
    call: NamedDependency[Call],
) -> dict[str, Any]:
    return json_of(await request.body())


provide_resource.__annotations__["data"] = JSONBody[dict[str, Any]]
RESOURCE = {"resource": Provide(provide_resource)}
SEARCHING = {"search": SEARCH}


async def _negotiated(request: Request[Any, Any, Any]) -> None:
    """Asynchronous, so that Litestar runs it in the event loop rather than in a thread."""
    negotiate(request)


class FhirController(Controller):
    path = "/fhir/R4"
    tags = ["fhir"]  # noqa: RUF012
    exception_handlers = FHIR_EXCEPTION_HANDLERS
    before_request = staticmethod(_negotiated)

    @get("/metadata", media_type=FHIR_JSON, summary="The CapabilityStatement (no token)")
    async def metadata(self) -> dict[str, Any]:
        return capability_statement(version("ordo"), datetime.now(UTC).date().isoformat())

    @post(
        "/",
        media_type=FHIR_JSON,
        status_code=200,
        dependencies=RESOURCE,
        summary="A transaction Bundle: one prescription, or one dispensing",
    )
    async def transaction(
        self,
        resource: NamedDependency[dict[str, Any]],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        actor, service = call.actor, call.service
        sent = transaction(resource)
        if isinstance(sent, Prescribing):
            state = await _issue(service, actor, sent, idempotency_key)
            number = display_number(state.prescription_id)
            return transaction_response(
                [f"MedicationRequest/{request_id(number, line.line_no)}" for line in state.lines]
            )
        asked, dispensation_id = await _dispense(service, actor, sent, idempotency_key)
        return transaction_response(
            [f"MedicationDispense/{dispense_id(dispensation_id, n)}" for n in asked.line_nos]
        )

    @post(
        "/MedicationRequest",
        media_type=FHIR_JSON,
        status_code=201,
        dependencies=RESOURCE,
        summary="A one-line prescription",
    )
    async def prescribe(
        self,
        resource: NamedDependency[dict[str, Any]],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[dict[str, Any]]:
        actor, service = call.actor, call.service
        state = await _issue(service, actor, single_request(resource), idempotency_key)
        created = medication_request(state, view_of(state, actor, today_of(service, actor)), 1)
        return _created(created, f"MedicationRequest/{created['id']}")

    @get(
        "/MedicationRequest/{resource_id:str}",
        media_type=FHIR_JSON,
        summary="One line of a prescription",
        response_headers=[ETAG_HEADER],
        responses=NOT_MODIFIED,
    )
    async def read_request(
        self,
        resource_id: FromPath[str],
        call: NamedDependency[Call],
        if_none_match: IfNoneMatch = None,
    ) -> Response[Any]:
        actor, service = call.actor, call.service
        number, line_no = line_of_id(resource_id)
        state = await service.read(actor, number)
        view = view_of(state, actor, today_of(service, actor))
        resource = medication_request(state, view, line_no)  # not found before any tag
        tag = entity_tag(state.version, view)  # begins with `meta.versionId`
        if held(if_none_match, tag):
            return Response(None, status_code=304, media_type=FHIR_JSON, headers={"ETag": tag})
        return Response(resource, media_type=FHIR_JSON, headers={"ETag": tag})

    @get(
        "/MedicationRequest",
        media_type=FHIR_JSON,
        summary="Lines by prescription, or the caller's own (patient, requester), newest first",
        dependencies=SEARCHING,
    )
    async def search_requests(
        self,
        *,
        call: NamedDependency[Call],
        search: NamedDependency[Search],
        count: Count = 50,
        offset: Offset = 0,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        actor, service, read_models = call.actor, call.service, call.read_models
        today = today_of(service, actor)
        if search.group is not None:
            return await _lines_of_prescription(service, actor, search.group, count, offset)
        by, own, query = search.owner(actor)

        def shown(state: Prescription, line_no: int) -> dict[str, Any]:
            return medication_request(state, view_of(state, actor, today), line_no)

        found, resume = (
            await own_lines(
                read_models.store, by, own, resume=resume_of(cursor), count=count, shown=shown
            )
            if own is not None
            else ([], None)
        )
        query["_count"] = str(count)
        following = {**query, "_cursor": cursor_of(resume)} if resume else None
        here = {**query, "_cursor": cursor} if cursor else query
        return searchset("MedicationRequest", found, None, here, following)

    @post(
        "/MedicationRequest/{resource_id:str}/$cancel",
        media_type=FHIR_JSON,
        status_code=200,
        dependencies=RESOURCE,
        summary="Cancel the whole prescription",
    )
    async def cancel(
        self,
        resource_id: FromPath[str],
        resource: NamedDependency[dict[str, Any]],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        actor, service = call.actor, call.service
        number, line_no = line_of_id(resource_id)
        state = await service.cancel(actor, number, reason_of(resource), idempotency_key)
        return medication_request(state, view_of(state, actor, today_of(service, actor)), line_no)

    @post(
        "/MedicationDispense",
        media_type=FHIR_JSON,
        status_code=201,
        dependencies=RESOURCE,
        summary="Record a one-line dispensing",
    )
    async def dispense(
        self,
        resource: NamedDependency[dict[str, Any]],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[dict[str, Any]]:
        actor, service = call.actor, call.service
        asked, dispensation_id = await _dispense(
            service, actor, single_dispense(resource), idempotency_key
        )
        (line_no,) = asked.line_nos
        state = await _after_dispensing(service, actor, asked.prescription_id)
        number = display_number(state.prescription_id)
        created = medication_dispense(state, number, dispensation_id, line_no)
        assert created is not None  # just recorded (or replayed) on this line
        return _created(created, f"MedicationDispense/{created['id']}")

    @get("/MedicationDispense", media_type=FHIR_JSON, summary="A prescription's dispensings")
    async def search_dispenses(
        self,
        call: NamedDependency[Call],
        prescription: Prescribed = None,
    ) -> dict[str, Any]:
        actor, service = call.actor, call.service
        if prescription is None:
            raise FhirError(422, "invalid_request", "search by prescription", "prescription")
        wanted = prescription.removeprefix("MedicationRequest/")
        number, line_no = prescription_or_line(wanted)
        state = await service.read(actor, number)
        found = (
            medication_dispenses(state, display_number(state.prescription_id), line_no)
            if execution_visible(state, actor)
            else []
        )
        query = {"prescription": prescription}
        return searchset("MedicationDispense", found, len(found), query, None)

    @post(
        "/MedicationDispense/{resource_id:str}/$withdraw",
        media_type=FHIR_JSON,
        status_code=200,
        dependencies=RESOURCE,
        summary="Withdraw a dispensing recorded in error: it reads entered-in-error",
        description="A dispensation's id does not name its prescription: the projections know "
        "it, and one just recorded is waited for (read-your-writes).",
    )
    async def withdraw(
        self,
        resource_id: FromPath[str],
        resource: NamedDependency[dict[str, Any]],
        call: NamedDependency[Call],
        *,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        actor, service, read_models = call.actor, call.service, call.read_models
        allow(actor, "withdraw")  # before the id and the body are read
        dispensation_id, line_no = dispensed_line_of_id(resource_id)
        reason = reason_of(resource)

        async def prescription_of(dispensation_id: str) -> str:
            number = await _prescription_of_dispensation(service, read_models, dispensation_id)
            if number is None or not await _has_dispensed(
                service, actor, number, dispensation_id, line_no
            ):
                raise FhirError(404, "not_found", f"no MedicationDispense {resource_id}")
            return number

        state = await service.withdraw_dispensation(
            actor,
            prescription_of,
            lambda pharmacy, pharmacist: Withdraw(
                pharmacy=pharmacy,
                pharmacist=pharmacist,
                dispensation_id=dispensation_id,
                reason=reason,
            ),
            idempotency_key,
        )
        withdrawn = medication_dispense(
            state, display_number(state.prescription_id), dispensation_id, line_no
        )
        assert withdrawn is not None  # the line was there before the withdrawal
        return withdrawn


async def _lines_of_prescription(
    service: PrescriptionService, actor: Actor, group: str, count: int, offset: int
) -> dict[str, Any]:
    number = group.removeprefix(f"{PRESCRIPTION_SYSTEM}|")
    state = await service.read(actor, number)
    view = view_of(state, actor, today_of(service, actor))
    found = [medication_request(state, view, line.line_no) for line in view.lines]
    query = {"group-identifier": group, "_count": str(count)}
    more = offset + count < len(found)
    return searchset(
        "MedicationRequest",
        found[offset : offset + count],
        len(found),
        {**query, "_offset": str(offset)},
        {**query, "_offset": str(offset + count)} if more else None,
    )


async def _prescription_of_dispensation(
    service: PrescriptionService, read_models: ReadModels, dispensation_id: str
) -> str | None:
    """The prescription a dispensation belongs to, as the read models know it; when they do
    not (yet), once they have caught up with the log's head: read-your-writes within the lag."""
    number = await read_models.store.prescription_of_dispensation(dispensation_id)
    if number is None:
        await read_models.caught_up(await service.ready(), CATCH_UP_SECONDS)
        number = await read_models.store.prescription_of_dispensation(dispensation_id)
    return number


async def _has_dispensed(
    service: PrescriptionService, actor: Actor, number: str, dispensation_id: str, line_no: int
) -> bool:
    """Whether that dispensation of the prescription handed over that line."""
    state = await service.read(actor, number)
    return medication_dispense(state, number, dispensation_id, line_no) is not None


def _created(resource: dict[str, Any], location: str) -> Response[dict[str, Any]]:
    return Response(resource, status_code=201, media_type=FHIR_JSON, headers={"Location": location})


async def _issue(
    service: PrescriptionService, actor: Actor, sent: Prescribing, idempotency_key: str | None
) -> Prescription:
    """The prescription, once recorded (or replayed); a refusal names the element sent."""
    try:
        return await service.issue(actor, issuing(sent.lines, sent.referenced), idempotency_key)
    except DomainError as error:
        raise refused(error, element_of(error.field, sent.lines)) from None


async def _dispense(
    service: PrescriptionService,
    actor: Actor,
    sent: list[SentDispense],
    idempotency_key: str | None,
) -> tuple[Dispensing, str]:
    """What was asked, and the id of the dispensation once recorded (or replayed)."""
    asked = dispensing(sent)
    try:
        receipt = await service.dispense(
            actor, asked.prescription_id, asked.command, idempotency_key
        )
    except DomainError as error:
        raise refused(error, dispense_element_of(error.field, sent)) from None
    return asked, receipt.dispensation_id


async def _after_dispensing(
    service: PrescriptionService, actor: Actor, prescription_id: str
) -> Prescription:
    """The prescription as the dispensing just recorded left it, as the use case decided it;
    a replayed one (`Idempotency-Key`) is read again: withdrawn since, it reads so."""
    appended = last_appended.get()
    if appended is not None and appended.state is not None:
        return appended.state
    return await service.read(actor, prescription_id)
