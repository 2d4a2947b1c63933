"""The problems each /fhir operation can answer (as OperationOutcomes), exactly: those of its
/v1 twin's use case (`adapters.http.problem_codes`), and those of the FHIR door itself (content
negotiation, the resource's structure and mapping). `adapters.http.fhir_openapi` states them in
the OpenAPI document; `tests/api/conftest.py` checks every outcome the API tests provoke is listed.
"""

from __future__ import annotations

from adapters.http.problem_codes import (
    CALLED,
    NAMED,
    RESTRICTED,
    UNREACHABLE,
    Problems,
    problems_of,
)

PREFIX = "/fhir/R4"
# Any /fhir call: `_format` or `Accept` asking for anything but JSON.
NEGOTIATED = frozenset({(406, "not_acceptable")})
# A resource sent: not JSON (415); its structure (400) or its mapping (422) at fault.
RESOURCE = frozenset(
    {(415, "unsupported_media_type"), (400, "invalid_request"), (422, "invalid_request")}
)
PRESCRIBING = problems_of("POST", "/v1/prescriptions")
DISPENSING = problems_of("POST", "/v1/prescriptions/{prescription_id}/dispensations")
WITHDRAWING = problems_of(
    "POST", "/v1/prescriptions/{prescription_id}/dispensations/{dispensation_id}/withdrawal"
)
CANCELLING = problems_of("POST", "/v1/prescriptions/{prescription_id}/cancel")
# A search: its parameters out of bounds (400) or missing, or a cursor not given here (422).
SEARCHED = frozenset({(400, "invalid_request"), (422, "invalid_request")})

_ANSWERED: dict[tuple[str, str], Problems] = {
    ("GET", f"{PREFIX}/metadata"): frozenset({(429, "rate_limited")}),
    # One prescription, or one dispensing (a line of another prescription: 404).
    ("POST", PREFIX): PRESCRIBING | DISPENSING | RESOURCE,
    ("POST", f"{PREFIX}/MedicationRequest"): PRESCRIBING | RESOURCE,
    ("GET", f"{PREFIX}/MedicationRequest/{{resource_id}}"): CALLED | NAMED | UNREACHABLE,
    # By group-identifier (a prescription: 404 if not the caller's), or the caller's own lists.
    ("GET", f"{PREFIX}/MedicationRequest"): CALLED | RESTRICTED | NAMED | SEARCHED | UNREACHABLE,
    ("POST", f"{PREFIX}/MedicationRequest/{{resource_id}}/$cancel"): CANCELLING | RESOURCE,
    ("POST", f"{PREFIX}/MedicationDispense"): DISPENSING | RESOURCE,
    ("GET", f"{PREFIX}/MedicationDispense"): CALLED | NAMED | SEARCHED | UNREACHABLE,
    ("POST", f"{PREFIX}/MedicationDispense/{{resource_id}}/$withdraw"): WITHDRAWING | RESOURCE,
}
FHIR_PROBLEMS_OF: dict[tuple[str, str], Problems] = {
    operation: problems | NEGOTIATED for operation, problems in _ANSWERED.items()
}


def fhir_problems_of(method: str, path: str) -> Problems:
    """The problems of one /fhir operation; a new operation names them here first."""
    try:
        return FHIR_PROBLEMS_OF[method, path]
    except KeyError:
        msg = f"{method} {path}: list its problems in adapters/http/fhir_problem_codes.py"
        raise KeyError(msg) from None
