"""What a POST holds: one resource, or a `transaction` Bundle of them (with, for prescribing,
the Patient, Practitioner, Medication and Organization resources the lines reference)."""

from __future__ import annotations

from typing import Any, NamedTuple

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest

from adapters.fhir.dispensing import SentDispense
from adapters.fhir.outcome import invalid_element
from adapters.fhir.parsing import bundle_entries, resource_type, validated
from adapters.fhir.prescribing import SentRequest
from adapters.fhir.references import Referenced
from adapters.fhir.structure import Valid

REFERENCED_KINDS = {"Patient", "Practitioner", "Medication", "Organization"}


class Prescribing(NamedTuple):
    lines: list[SentRequest]
    referenced: Referenced


def single_request(data: dict[str, Any]) -> Prescribing:
    resource_type(data, "MedicationRequest")
    sent = SentRequest(data, validated(MedicationRequest, data), "MedicationRequest")
    return Prescribing([sent], Referenced({}))


def single_dispense(data: dict[str, Any]) -> list[SentDispense]:
    resource_type(data, "MedicationDispense")
    return [SentDispense(data, validated(MedicationDispense, data), "MedicationDispense")]


def transaction(data: dict[str, Any]) -> Prescribing | list[SentDispense]:
    """A Bundle of MedicationRequests (one prescription) or of MedicationDispenses (one
    dispensing), validated whole before anything is decided."""
    resource_type(data, "Bundle")
    raw = [
        entry.get("resource") if isinstance(entry, dict) else None
        for entry in bundle_entries(data, "resource")
    ]
    bundle = validated(Bundle, data)
    kinds = {item.get("resourceType") for item in raw if isinstance(item, dict)}
    if "MedicationDispense" in kinds:
        return _dispenses(bundle, raw)
    return _requests(bundle, raw)


def _requests(bundle: Valid, raw: list[Any]) -> Prescribing:
    lines: list[SentRequest] = []
    by_url: dict[str, Any] = {}
    for index, entry in enumerate(bundle.entry or []):
        where = _created_at(entry, index)
        kind = entry.resource.get_resource_type() if entry.resource else None
        if kind == "MedicationRequest":
            lines.append(SentRequest(raw[index], entry.resource, where))
        elif kind in REFERENCED_KINDS:
            by_url.update(_addresses(entry, kind))
        else:
            raise invalid_element(f"a {kind} has no place in a prescription", where)
    if not lines:
        raise invalid_element("the Bundle has no MedicationRequest", "Bundle.entry")
    return Prescribing(lines, Referenced(by_url))


def _created_at(entry: Valid, index: int) -> str:
    """Where the entry's resource is (FHIRPath); a transaction here only creates (POST)."""
    if entry.request is not None and entry.request.method != "POST":
        raise invalid_element(
            "a transaction here only creates: request.method POST",
            f"Bundle.entry[{index}].request.method",
        )
    return f"Bundle.entry[{index}].resource"


def _addresses(entry: Valid, kind: str) -> dict[str, Valid]:
    """How the lines may refer to an entry: its fullUrl, or Type/id."""
    found = {entry.fullUrl: entry.resource} if entry.fullUrl else {}
    if entry.resource.id:
        found[f"{kind}/{entry.resource.id}"] = entry.resource
    return found


def _dispenses(bundle: Valid, raw: list[Any]) -> list[SentDispense]:
    sent: list[SentDispense] = []
    for index, entry in enumerate(bundle.entry or []):
        where = _created_at(entry, index)
        if entry.resource is None or entry.resource.get_resource_type() != "MedicationDispense":
            raise invalid_element("a dispensing's Bundle holds only MedicationDispenses", where)
        sent.append(SentDispense(raw[index], entry.resource, where))
    return sent
