"""MedicationRequests in, the command a /v1 body would give out (contract: "Prescribing").

One MedicationRequest per line, all with the same `subject`, `requester`, `authoredOn`, kind
and consent; each line's resource is kept as the client sent it (`lines_as_sent`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from adapters.fhir.codes import (
    CONSENT_URL,
    FINESS_SYSTEM,
    INS_SYSTEM,
    KIND_SYSTEM,
    OVERLAP_URL,
    RENDERED_DOSAGE_URL,
    RPPS_SYSTEM,
    finess_of,
    ins_of,
    product_of,
    rpps_of,
)
from adapters.fhir.outcome import FhirError, invalid_element
from adapters.fhir.references import Referenced
from adapters.fhir.structure import Valid
from domain.decisions.issuing import IssuePrescription, RequestedLine
from domain.events import NonSubstitutable, NonSubstitutionReason, PrescriptionKind
from domain.identifiers import Finess, Rpps

DAYS_IN = {"d": 1, "wk": 7, "mo": 30}  # UCUM; a month of the contract is 30 days
REASONS: dict[str, NonSubstitutionReason] = {"MTE": "MTE", "EFG": "EFG", "CIF": "CIF"}
MAX_DOSAGE = 500  # as /v1's `dosage`


class SentRequest(NamedTuple):
    """One MedicationRequest as sent, validated, and where it is in the request (FHIRPath)."""

    raw: dict[str, Any]
    request: Valid
    where: str


class Heading(NamedTuple):
    """What every line of one prescription shares."""

    patient: str
    prescriber: str
    issued_on: date | None
    kind: PrescriptionKind
    consent: bool


def issuing(
    sent: Sequence[SentRequest], referenced: Referenced
) -> Callable[[Rpps, date], IssuePrescription]:
    """The prescription these MedicationRequests make, for the prescriber who sends them."""
    headings = [_heading(line, referenced.within(line.request.contained)) for line in sent]
    for line, heading in zip(sent[1:], headings[1:], strict=True):
        _same_as_first(headings[0], heading, line.where)
    first = headings[0]
    lines = tuple(_requested(line, referenced.within(line.request.contained)) for line in sent)
    as_sent = tuple(msgspec.json.encode(line.raw).decode() for line in sent)

    def command(prescriber: Rpps, today: date) -> IssuePrescription:
        if first.prescriber != prescriber.value:
            raise FhirError(
                403, "forbidden", "the requester must be the caller", f"{sent[0].where}.requester"
            )
        return IssuePrescription(
            prescriber=prescriber,
            patient=ins_of(first.patient, f"{sent[0].where}.subject"),
            issued_on=first.issued_on or today,
            kind=first.kind,
            execution_view_consent=first.consent,
            lines=lines,
            lines_as_sent=as_sent,
        )

    return command


def _heading(line: SentRequest, referenced: Referenced) -> Heading:
    request, where = line.request, line.where
    if request.intent != "order":
        raise invalid_element("a prescription line is an 'order'", f"{where}.intent")
    patient = referenced.identifier_value(
        request.subject, "Patient", INS_SYSTEM, f"{where}.subject"
    )
    prescriber = referenced.identifier_value(
        request.requester, "Practitioner", RPPS_SYSTEM, f"{where}.requester"
    )
    consent = _flag(request.extension, CONSENT_URL, where)
    if consent is None:
        raise invalid_element(
            f"every line carries the extension {CONSENT_URL} (valueBoolean)", f"{where}.extension"
        )
    return Heading(
        patient=patient,
        prescriber=rpps_of(prescriber, f"{where}.requester").value,
        issued_on=_authored_on(line.raw.get("authoredOn"), where),
        kind="secure" if _is_secure(request) else "standard",
        consent=consent,
    )


def _same_as_first(first: Heading, heading: Heading, where: str) -> None:
    for name, element in (
        ("patient", "subject"),
        ("prescriber", "requester"),
        ("issued_on", "authoredOn"),
        ("kind", "category"),
        ("consent", "extension"),
    ):
        if getattr(first, name) != getattr(heading, name):
            raise invalid_element(
                f"every line of one prescription has the same {element}", f"{where}.{element}"
            )


def _requested(line: SentRequest, referenced: Referenced) -> RequestedLine:
    request, where = line.request, line.where
    concept, medication = referenced.medication(
        request.medicationCodeableConcept, request.medicationReference, f"{where}.medication"
    )
    dispense = request.dispenseRequest
    repeat = None
    if request.dosageInstruction and request.dosageInstruction[0].timing:
        repeat = request.dosageInstruction[0].timing.repeat
    bounds = f"{where}.dosageInstruction[0].timing.repeat.boundsDuration"
    return RequestedLine(
        product=product_of(concept, medication),
        quantity=_packs(request, where),
        dosage=_dosage(request, where),
        duration_days=_days(repeat.boundsDuration if repeat else None, bounds),
        fraction_days=(
            _days(dispense.dispenseInterval, f"{where}.dispenseRequest.dispenseInterval")
            if dispense and dispense.dispenseInterval
            else None
        ),
        overlap_allowed=bool(_flag(request.extension, OVERLAP_URL, where)),
        non_substitutable=_non_substitutable(request.substitution, where),
        designated_finess=_designated(dispense, referenced, where),
    )


def _designated(dispense: Valid | None, referenced: Referenced, where: str) -> Finess | None:
    """The pharmacy named on the line (CSS L162-4-2): `dispenseRequest.performer`, an
    Organization by its FINESS (`1` + FINESS), in the reference or the resource it points to."""
    if dispense is None or dispense.performer is None:
        return None
    expression = f"{where}.dispenseRequest.performer"
    found = referenced.identifier_value(
        dispense.performer, "Organization", FINESS_SYSTEM, expression
    )
    return finess_of(found, expression)


def _non_substitutable(substitution: Valid | None, where: str) -> NonSubstitutable | None:
    """`substitution.allowedBoolean` false is the "non substituable" mention, its reason
    `substitution.reason.coding[0].code` (MTE, EFG or CIF)."""
    if substitution is None or substitution.allowedBoolean is not False:
        return None
    codings = substitution.reason.coding if substitution.reason else None
    reason = REASONS.get((codings[0].code or "") if codings else "")
    if reason is None:
        raise FhirError(
            422,
            "non_substitution_reason_invalid",
            "a line not to substitute gives its reason as substitution.reason.coding[0].code: "
            "MTE, EFG or CIF",
            f"{where}.substitution.reason",
        )
    return NonSubstitutable(reason=reason)


def _packs(request: Valid, where: str) -> int:
    """Packs over the whole life of the line: the quantity, then once more per repeat."""
    dispense = request.dispenseRequest
    expression = f"{where}.dispenseRequest.quantity.value"
    if dispense is None or dispense.quantity is None or dispense.quantity.value is None:
        raise invalid_element("the number of packs is missing", expression)
    packs = whole_number(dispense.quantity.value, "the number of packs", expression)
    return packs * (1 + (dispense.numberOfRepeatsAllowed or 0))


def _days(duration: Valid | None, expression: str) -> int:
    if duration is None or duration.value is None:
        raise invalid_element("the duration is missing", expression)
    factor = DAYS_IN.get(duration.code or duration.unit or "")
    if factor is None:
        raise invalid_element("a duration is in d, wk or mo (UCUM)", f"{expression}.code")
    return whole_number(duration.value * factor, "a duration in days", f"{expression}.value")


def whole_number(value: Decimal | int | float, what: str, expression: str) -> int:
    if value != int(value):
        raise invalid_element(f"{what} is a whole number", expression)
    return int(value)


def _dosage(request: Valid, where: str) -> str:
    rendered = next(
        (e.valueMarkdown for e in request.extension or [] if e.url == RENDERED_DOSAGE_URL), None
    )
    text = rendered or (request.dosageInstruction[0].text if request.dosageInstruction else None)
    if not text:
        raise invalid_element(
            "the dosage is the renderedDosageInstruction extension or dosageInstruction[0].text",
            f"{where}.dosageInstruction[0].text",
        )
    if len(text) > MAX_DOSAGE:
        raise invalid_element(
            f"the dosage is {MAX_DOSAGE} characters at most", f"{where}.dosageInstruction[0].text"
        )
    return str(text)


def _flag(extensions: list[Valid] | None, url: str, where: str) -> bool | None:
    found = [e for e in extensions or [] if e.url == url]
    if not found:
        return None
    if found[0].valueBoolean is None:
        raise invalid_element(f"the extension {url} is a valueBoolean", f"{where}.extension")
    return bool(found[0].valueBoolean)


def _is_secure(request: Valid) -> bool:
    return any(
        coding.system == KIND_SYSTEM and coding.code == "secure"
        for category in request.category or []
        for coding in category.coding or []
    )


DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def _authored_on(text: Any, where: str) -> date | None:
    """The day written in `authoredOn` (the prescriber's own date, not converted to UTC)."""
    if text is None:
        return None
    day = DATE.match(str(text))
    if day is None:
        raise invalid_element("authoredOn gives the day (YYYY-MM-DD)", f"{where}.authoredOn")
    return date.fromisoformat(day.group(1))


FIELD_OF_LINE = re.compile(r"^lines\[(?P<index>\d+)\](?:\.(?P<rest>.*))?$")
ELEMENT_OF_FIELD = {
    "product": "medicationCodeableConcept",
    "quantity": "dispenseRequest.quantity.value",
    "dosage": "dosageInstruction[0].text",
    "duration_days": "dosageInstruction[0].timing.repeat.boundsDuration",
    "fraction_days": "dispenseRequest.dispenseInterval",
    "narcotic": "medicationCodeableConcept",
    "assimilated": "medicationCodeableConcept",
    "overlap_allowed": "extension",
    "non_substitutable": "substitution.reason",
    "designated_finess": "dispenseRequest.performer",
}
ELEMENT_OF_HEADING = {"issued_on": "authoredOn", "kind": "category", "patient.ins": "subject"}


def element_of(field: str | None, sent: Sequence[SentRequest]) -> str | None:
    """A /v1 field named by a refusal (`lines[1].quantity`) as the element sent (FHIRPath)."""
    if field is None:
        return None
    line = FIELD_OF_LINE.match(field)
    if line is None:
        heading = ELEMENT_OF_HEADING.get(field)
        return f"{sent[0].where}.{heading}" if heading else None
    index = int(line.group("index"))
    request = sent[index] if index < len(sent) else sent[0]
    rest = (line.group("rest") or "").split(".")[0]
    element = ELEMENT_OF_FIELD.get(rest)
    if element == "medicationCodeableConcept" and request.request.medicationReference:
        element = "medicationReference"  # the product is the Medication it refers to
    return f"{request.where}.{element}" if element else request.where
