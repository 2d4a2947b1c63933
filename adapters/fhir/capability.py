"""`GET /fhir/R4/metadata`: a CapabilityStatement listing exactly what this door serves."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from adapters.fhir.outcome import emitted

IG = "https://interop.esante.gouv.fr/ig/fhir/eprescription"


def _search(name: str, kind: str, doc: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "documentation": doc}


MEDICATION_REQUEST = {
    "type": "MedicationRequest",
    "supportedProfile": [f"{IG}/StructureDefinition/fr-medicationrequest"],
    "interaction": [{"code": "read"}, {"code": "create"}, {"code": "search-type"}],
    "searchParam": [
        _search("group-identifier", "token", "the prescription's lines (urn:ordo:prescription)"),
        _search("patient", "reference", "the patient's own (or patient:identifier, INS)"),
        _search("requester", "reference", "the prescriber's own, newest first"),
        _search("_count", "number", "resources per page"),
    ],
    "operation": [
        {"name": "cancel", "definition": "urn:ordo:operation:cancel", "documentation": "reason"}
    ],
}
MEDICATION_DISPENSE = {
    "type": "MedicationDispense",
    "interaction": [{"code": "create"}, {"code": "search-type"}],
    "searchParam": [
        _search("prescription", "reference", "MedicationRequest/<prescription_id>-<line_no>")
    ],
    "operation": [
        {
            "name": "withdraw",
            "definition": "urn:ordo:operation:withdraw",
            "documentation": "reason; the resource then reads entered-in-error",
        }
    ],
}


def capability_statement(software_version: str, date: str) -> dict[str, Any]:
    return emitted(
        CapabilityStatement.model_validate(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "date": date,
                "kind": "instance",
                "software": {"name": "ordo", "version": software_version},
                "implementation": {"description": "ordo, the FHIR R4 door", "url": "/fhir/R4"},
                "fhirVersion": "4.0.1",
                "format": ["application/fhir+json", "application/json"],
                "rest": [
                    {
                        "mode": "server",
                        "security": {"description": "Bearer JWT, as /v1"},
                        "interaction": [{"code": "transaction"}],
                        "resource": [MEDICATION_REQUEST, MEDICATION_DISPENSE],
                    }
                ],
            }
        )
    )
