"""A prescription's line as a MedicationRequest: what the client sent, unchanged, plus what the
server manages (`id`, `meta`, `groupIdentifier`, `status`, the consent in force and
`urn:ordo:remaining`), masked for a prescriber under the patient's opposition as /v1 masks it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from adapters.fhir.codes import (
    CONSENT_URL,
    KIND_SYSTEM,
    NON_SUBSTITUTION_SYSTEM,
    OVERLAP_URL,
    PRESCRIPTION_SYSTEM,
    REMAINING_UNITS_URL,
    REMAINING_URL,
    UCUM,
    concept_of,
    identifier,
    patient_identifier,
    pharmacy_identifier,
    rpps_identifier,
)
from adapters.fhir.outcome import FhirError, emitted
from domain.events import PrescribedLine
from domain.identifiers import InvalidIdentifier, PrescriptionNumber
from domain.prescription import Prescription
from domain.views import LineView, PrescriptionView

STATUS_OF = {
    "active": "active",
    "partially_dispensed": "active",
    "dispensed": "completed",
    "cancelled": "cancelled",
    "expired": "stopped",
}
SERVER_EXTENSIONS = {REMAINING_URL, REMAINING_UNITS_URL, CONSENT_URL}


def request_id(prescription_id: str, line_no: int) -> str:
    return f"{prescription_id}-{line_no}"


def line_of_id(resource_id: str) -> tuple[str, int]:
    """`<prescription_id>-<line_no>` split in two; anything else is no MedicationRequest."""
    number, _, line = resource_id.rpartition("-")
    if not number or not line.isdigit() or len(line) > 4:
        raise FhirError(404, "not_found", f"no MedicationRequest {resource_id}")
    return number, int(line)


def prescription_or_line(resource_id: str) -> tuple[str, int | None]:
    """A whole prescription by its number, or one of its lines (`<prescription_id>-<line_no>`)."""
    try:
        PrescriptionNumber.parse(resource_id)
    except InvalidIdentifier:
        return line_of_id(resource_id)
    return resource_id, None


def medication_request(state: Prescription, view: PrescriptionView, line_no: int) -> dict[str, Any]:
    line = next((line for line in view.lines if line.line_no == line_no), None)
    if line is None:
        raise FhirError(404, "not_found", f"the prescription has no line {line_no}")
    sent = state.lines_as_sent
    resource = (
        msgspec.json.decode(sent[line_no - 1]) if len(sent) >= line_no else _written(state, line)
    )
    resource.update(
        id=request_id(view.prescription_id, line_no),
        meta={**resource.get("meta", {}), **_meta(state)},
        groupIdentifier=identifier(PRESCRIPTION_SYSTEM, view.prescription_id),
        status=STATUS_OF[view.status],
        extension=_extensions(resource.get("extension", []), view, line),
    )
    return resource  # validated once, when it was sent (or written from the state's own values)


def _extensions(sent: list[Any], view: PrescriptionView, line: LineView) -> list[Any]:
    kept = [e for e in sent if not (isinstance(e, dict) and e.get("url") in SERVER_EXTENSIONS)]
    managed: list[Any] = [{"url": CONSENT_URL, "valueBoolean": view.execution_view_consent}]
    if line.remaining is not None:
        managed.append({"url": REMAINING_URL, "valueInteger": line.remaining})
    if line.remaining_units is not None:
        managed.append({"url": REMAINING_UNITS_URL, "valueInteger": line.remaining_units})
    return kept + managed


def _meta(state: Prescription) -> dict[str, Any]:
    return {"versionId": str(state.version), "lastUpdated": last_updated(state).isoformat()}


def last_updated(state: Prescription) -> datetime:
    """When the prescription last changed, of what the state records the instant of."""
    instants = [state.issued_at, *(d.recorded_at for d in state.dispensations)]
    instants += [d.withdrawn_at for d in state.dispensations if d.withdrawn_at]
    instants += [state.cancelled_at] if state.cancelled_at else []
    return max(instants)


def _written(state: Prescription, line: PrescribedLine) -> dict[str, Any]:
    """A line prescribed through /v1, in FHIR: what ordo knows of it."""
    days = {"value": line.duration_days, "unit": "d", "system": UCUM, "code": "d"}
    dispense: dict[str, Any] = {"quantity": {"value": line.quantity}}
    if line.fraction_days is not None:
        dispense["dispenseInterval"] = {**days, "value": line.fraction_days}
    if line.designated_finess is not None:
        dispense["performer"] = {"identifier": pharmacy_identifier(line.designated_finess)}
    written: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "intent": "order",
        "medicationCodeableConcept": emitted(concept_of(line.product)),
        "subject": {"identifier": patient_identifier(state.patient_ins)},
        "requester": {"identifier": rpps_identifier(state.prescriber_rpps)},
        "authoredOn": state.issued_on.isoformat(),
        "dosageInstruction": [
            {"text": line.dosage, "timing": {"repeat": {"boundsDuration": days}}}
        ],
        "dispenseRequest": dispense,
    }
    if state.kind == "secure":
        written["category"] = [{"coding": [{"system": KIND_SYSTEM, "code": "secure"}]}]
    if line.overlap_allowed:
        written["extension"] = [{"url": OVERLAP_URL, "valueBoolean": True}]
    if line.non_substitutable is not None:
        reason = {"system": NON_SUBSTITUTION_SYSTEM, "code": line.non_substitutable.reason}
        written["substitution"] = {"allowedBoolean": False, "reason": {"coding": [reason]}}
    return written
