"""MedicationDispenses in, the /v1 dispensing command out; a dispensing's lines back out as
MedicationDispenses (contract: "Dispensing"). The caller is the performer and the pharmacy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from adapters.fhir.codes import (
    concept_of,
    pharmacy_identifier,
    product_of,
    rpps_identifier,
)
from adapters.fhir.medication_request import line_of_id, request_id
from adapters.fhir.outcome import FhirError, emitted, invalid_element
from adapters.fhir.prescribing import whole_number
from adapters.fhir.structure import Valid
from domain.decisions.dispensing import Dispense, DispenseLine
from domain.events import DispensedLine
from domain.identifiers import Finess, Rpps
from domain.prescription import Dispensation, Prescription

COMPLETED, ENTERED_IN_ERROR = "completed", "entered-in-error"


class SentDispense(NamedTuple):
    raw: dict[str, Any]
    dispense: Valid
    where: str


class Dispensing(NamedTuple):
    """The prescription dispensed from, its lines asked (in the order sent), and the command
    for the pharmacy that dispenses."""

    prescription_id: str
    line_nos: tuple[int, ...]
    command: Callable[[Finess, Rpps], Dispense]


def dispensing(sent: Sequence[SentDispense]) -> Dispensing:
    prescribed = [_prescribed_line(line) for line in sent]
    number = prescribed[0][0]
    for (other, _), line in zip(prescribed[1:], sent[1:], strict=True):
        if other != number:
            raise invalid_element(
                "every MedicationDispense of one dispensing is for one prescription",
                f"{line.where}.authorizingPrescription",
            )
    handed_over = {_moment(line.dispense.whenHandedOver) for line in sent}
    if len(handed_over) > 1:
        raise invalid_element(
            "every line of one dispensing is handed over at once", f"{sent[1].where}.whenHandedOver"
        )
    lines = tuple(_line(line, line_no) for line, (_, line_no) in zip(sent, prescribed, strict=True))
    as_sent = tuple(msgspec.json.encode(line.raw).decode() for line in sent)
    at = _moment(sent[0].dispense.whenHandedOver)

    def command(pharmacy: Finess, pharmacist: Rpps) -> Dispense:
        return Dispense(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            lines=lines,
            dispensed_at=_instant(at, f"{sent[0].where}.whenHandedOver"),
            lines_as_sent=as_sent,
        )

    return Dispensing(number, tuple(line.line_no for line in lines), command)


def _prescribed_line(line: SentDispense) -> tuple[str, int]:
    expression = f"{line.where}.authorizingPrescription"
    authorizing = line.dispense.authorizingPrescription or []
    reference = authorizing[0].reference if len(authorizing) == 1 else None
    if reference is None or not reference.startswith("MedicationRequest/"):
        raise invalid_element(
            "one authorizingPrescription, MedicationRequest/<prescription_id>-<line_no>",
            expression,
        )
    try:
        return line_of_id(reference.removeprefix("MedicationRequest/"))
    except FhirError:
        raise invalid_element(f"{reference} is no line of a prescription", expression) from None


def _line(line: SentDispense, line_no: int) -> DispenseLine:
    dispense, where = line.dispense, line.where
    if dispense.quantity is None or dispense.quantity.value is None:
        raise invalid_element("the number of packs is missing", f"{where}.quantity.value")
    concept, lot, element = _medication(dispense, where)
    return DispenseLine(
        line_no=line_no,
        quantity=whole_number(
            dispense.quantity.value, "the number of packs", f"{where}.quantity.value"
        ),
        product=product_of(concept, f"{where}.{element}") if concept else None,
        lot=msgspec.UNSET if lot is None else lot,
    )


def _medication(dispense: Valid, where: str) -> tuple[Valid | None, str | None, str]:
    """The pack handed over, its lot and the element naming it: `medicationCodeableConcept`,
    or `medicationReference` to a contained Medication (its `code`, its `batch.lotNumber`)."""
    reference = dispense.medicationReference
    if reference is None:
        return dispense.medicationCodeableConcept, None, "medicationCodeableConcept"
    expression = f"{where}.medicationReference"
    target = (reference.reference or "").removeprefix("#")
    for contained in dispense.contained or []:
        if contained.get_resource_type() == "Medication" and contained.id == target:
            lot = contained.batch.lotNumber if contained.batch else None
            return contained.code, lot, "medicationReference"
    raise invalid_element("medicationReference names no contained Medication (#<id>)", expression)


def _moment(value: Any) -> Any:
    """A dateTime with its time as a datetime, whichever validated it (the Structs keep the
    string sent, the models read it); a day, a month or a year stays as it is."""
    if isinstance(value, str) and "T" in value:
        return datetime.fromisoformat(value)
    return value


def _instant(value: Any, expression: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise invalid_element("whenHandedOver is an instant with its offset", expression)
    return value


def dispense_id(dispensation_id: str, line_no: int) -> str:
    return f"{dispensation_id}-{line_no}"


def dispensed_line_of_id(resource_id: str) -> tuple[str, int]:
    """`<dispensation_id>-<line_no>` split in two; anything else is no MedicationDispense."""
    dispensation_id, _, line = resource_id.rpartition("-")
    if not dispensation_id or not line.isdigit() or len(line) > 4:
        raise FhirError(404, "not_found", f"no MedicationDispense {resource_id}")
    return dispensation_id, int(line)


def medication_dispenses(
    state: Prescription, prescription_id: str, line_no: int | None
) -> list[dict[str, Any]]:
    """Every dispensed line of the prescription (of one line if given), withdrawn ones as
    `entered-in-error`."""
    return [
        _resource(state, prescription_id, dispensation, index)
        for dispensation in state.dispensations
        for index, line in enumerate(dispensation.lines)
        if line_no is None or line.line_no == line_no
    ]


def medication_dispense(
    state: Prescription, prescription_id: str, dispensation_id: str, line_no: int
) -> dict[str, Any] | None:
    """The MedicationDispense of one line of one dispensation (None: no such line there)."""
    for dispensation in state.dispensations:
        if dispensation.dispensation_id == dispensation_id:
            for index, line in enumerate(dispensation.lines):
                if line.line_no == line_no:
                    return _resource(state, prescription_id, dispensation, index)
    return None


def _resource(
    state: Prescription, prescription_id: str, dispensation: Dispensation, index: int
) -> dict[str, Any]:
    line = dispensation.lines[index]
    sent = dispensation.lines_as_sent
    resource = (
        msgspec.json.decode(sent[index])
        if index < len(sent)
        else _written(state, prescription_id, dispensation, index)
    )
    resource.update(
        id=dispense_id(dispensation.dispensation_id, line.line_no),
        meta={
            **resource.get("meta", {}),
            "lastUpdated": (dispensation.withdrawn_at or dispensation.recorded_at).isoformat(),
        },
        status=ENTERED_IN_ERROR if dispensation.withdrawn else COMPLETED,
    )
    return resource  # validated once, when it was sent (or written from the state's own values)


def _written(
    state: Prescription, prescription_id: str, dispensation: Dispensation, index: int
) -> dict[str, Any]:
    """A line dispensed through /v1, in FHIR: what ordo knows of it."""
    line = dispensation.lines[index]
    prescribed = state.line(line.line_no)
    substituted = prescribed is not None and prescribed.prescribed.product != line.product
    return {
        "resourceType": "MedicationDispense",
        "status": COMPLETED,
        **_medication_of(line),
        "authorizingPrescription": [
            {"reference": f"MedicationRequest/{request_id(prescription_id, line.line_no)}"}
        ],
        "performer": [
            {"actor": {"identifier": rpps_identifier(dispensation.pharmacist_rpps)}},
            {"actor": {"identifier": pharmacy_identifier(dispensation.finess)}},
        ],
        "quantity": {"value": line.quantity},
        "whenHandedOver": dispensation.dispensed_at.isoformat(),
        "substitution": {"wasSubstituted": substituted},
    }


def _medication_of(line: DispensedLine) -> dict[str, Any]:
    """The pack handed over; with its lot, as a contained Medication with `batch.lotNumber`."""
    concept = emitted(concept_of(line.product))
    if line.lot is None:
        return {"medicationCodeableConcept": concept}
    medication = {
        "resourceType": "Medication",
        "id": MEDICATION_ID,
        "code": concept,
        "batch": {"lotNumber": line.lot},
    }
    return {"contained": [medication], "medicationReference": {"reference": f"#{MEDICATION_ID}"}}


MEDICATION_ID = "medication"
DISPENSE_ELEMENT_OF_FIELD = {
    "quantity": "quantity",
    "product": "medicationCodeableConcept",
    "line_no": "authorizingPrescription",
    "lot": "medicationReference",
}


def dispense_element_of(field: str | None, sent: Sequence[SentDispense]) -> str | None:
    """A /v1 field named by a refusal (`lines[0].quantity`) as the element sent (FHIRPath)."""
    if field is None:
        return None
    if field == "dispensed_at":
        return f"{sent[0].where}.whenHandedOver"
    head, _, rest = field.partition("].")
    index = head.removeprefix("lines[")
    if not index.isdigit() or int(index) >= len(sent):
        return None
    line = sent[int(index)]
    element = DISPENSE_ELEMENT_OF_FIELD.get(rest.split(".")[0], "authorizingPrescription")
    if element == "medicationCodeableConcept" and line.dispense.medicationReference is not None:
        element = "medicationReference"
    return f"{line.where}.{element}"
