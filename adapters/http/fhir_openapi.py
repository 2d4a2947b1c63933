"""The FHIR routes in the OpenAPI document: FHIR JSON bodies, and each refusal an operation can
answer (its statuses and codes, `adapters.http.fhir_problem_codes`) an `OperationOutcome`
(`application/fhir+json`), as `adapters.http.openapi` does for /v1's problems."""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

from adapters.http.fhir_outcomes import FHIR_JSON
from adapters.http.fhir_problem_codes import fhir_problems_of
from adapters.http.problem_codes import Problems, answers_besides_problems

PREFIX = "/fhir/R4"
STRING = OpenAPIType.STRING
OUTCOME = Reference(ref="#/components/schemas/OperationOutcome")
OUTCOME_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="OperationOutcome",
    description="FHIR R4 OperationOutcome: `issue[0].details.coding[0]` is the /v1 code "
    "(system `urn:ordo:problem`), `issue[0].expression` the element at fault",
    required=["resourceType", "issue"],
    properties={
        "resourceType": Schema(type=OpenAPIType.STRING, const="OperationOutcome"),
        "issue": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
    },
)
RESOURCE = Schema(
    type=OpenAPIType.OBJECT,
    description="A FHIR R4 resource (JSON): Bundle, MedicationRequest, MedicationDispense or "
    "Parameters, as the operation says",
    required=["resourceType"],
    properties={"resourceType": Schema(type=OpenAPIType.STRING)},
)
OUTCOMES = {
    400: "Not FHIR JSON of the expected resource (unknown element, wrong datatype)",
    401: "No valid bearer token",
    403: "The caller's role may not do this, or the requester is not the caller",
    404: "No such resource (or not the caller's)",
    406: "Only JSON is served (_format, Accept)",
    408: "The request body did not arrive in time",
    409: "The prescription's state refuses it (the /v1 code)",
    413: "The body is too large",
    415: "The body is not JSON",
    422: "Well-formed, but a rule refuses it (the /v1 code)",
    429: "Too many calls from this caller: retry after `Retry-After` seconds",
    503: "Busy or database unavailable: retry after `Retry-After` seconds",
}
# Per operation: what its body holds (None: no body) and what a success answers.
PARAMETERS_REASON = "`Parameters` with `reason` (valueString)"
EXCHANGES: dict[tuple[str, str], tuple[str | None, str]] = {
    ("get", "/fhir/R4/metadata"): (None, "The CapabilityStatement"),
    ("post", "/fhir/R4"): (
        "A `transaction` Bundle: the MedicationRequests of one prescription (with the Patient, "
        "Practitioner, Medication and Organization they reference), or the MedicationDispenses of "
        "one dispensing",
        "A `transaction-response` Bundle, each entry `201 Created` with its `location` "
        "(`MedicationRequest/<prescription_id>-<line_no>` or "
        "`MedicationDispense/<dispensation_id>-<line_no>`); all or nothing",
    ),
    ("post", "/fhir/R4/MedicationRequest"): (
        "One MedicationRequest: a one-line prescription",
        "The MedicationRequest as read; `Location` `MedicationRequest/<prescription_id>-1`",
    ),
    ("get", "/fhir/R4/MedicationRequest/{resource_id}"): (
        None,
        "The MedicationRequest as sent, with `id`, `meta`, `groupIdentifier`, `status` and the "
        "extension `urn:ordo:remaining` (`urn:ordo:remaining-units` too on a line counted in "
        "units); its `ETag` begins with `meta.versionId` (send it back in `If-None-Match`: 304 "
        "while this caller would be shown the same)",
    ),
    ("get", "/fhir/R4/MedicationRequest"): (
        None,
        "A `searchset` Bundle of MedicationRequests, with `link` self (and next)",
    ),
    ("post", "/fhir/R4/MedicationRequest/{resource_id}/$cancel"): (
        PARAMETERS_REASON,
        "The MedicationRequest, `status` `cancelled`",
    ),
    ("post", "/fhir/R4/MedicationDispense"): (
        "One MedicationDispense: `authorizingPrescription`, `quantity.value`, "
        "`medicationCodeableConcept`, `whenHandedOver`",
        "The MedicationDispense recorded; `Location` "
        "`MedicationDispense/<dispensation_id>-<line_no>`",
    ),
    ("get", "/fhir/R4/MedicationDispense"): (
        None,
        "A `searchset` Bundle of MedicationDispenses (empty for a prescriber under the "
        "patient's opposition)",
    ),
    ("post", "/fhir/R4/MedicationDispense/{resource_id}/$withdraw"): (
        PARAMETERS_REASON,
        "The MedicationDispense, `status` `entered-in-error`",
    ),
}
RETRY_AFTER: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER))
}


def complete_fhir_document(document: OpenAPI) -> OpenAPI:
    """FHIR bodies and OperationOutcomes on every /fhir operation (in place, and returned)."""
    if document.components is not None:
        schemas = document.components.schemas if document.components.schemas else {}
        schemas["OperationOutcome"] = OUTCOME_SCHEMA
        document.components.schemas = schemas
    for path, item in (document.paths or {}).items():
        if not path.startswith(PREFIX):
            continue
        for method in ("get", "post"):
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                _exchanges(operation, *EXCHANGES[(method, path)])
                _as_fhir(operation, fhir_problems_of(method.upper(), path))
                if path.endswith("/metadata"):
                    operation.security = []
    return document


def _exchanges(operation: Operation, body: str | None, answer: str) -> None:
    """The body as a FHIR resource, and the success answer, said in words."""
    if isinstance(operation.request_body, RequestBody):
        operation.request_body = RequestBody(
            content={FHIR_JSON: OpenAPIMediaType(schema=RESOURCE)},
            required=True,
            description=body,
        )
    for status, response in (operation.responses or {}).items():
        if status in {"200", "201"} and isinstance(response, OpenAPIResponse):
            response.description = answer
            if status == "201":
                response.headers = {"Location": OpenAPIHeader(schema=Schema(type=STRING))}


def _as_fhir(operation: Operation, problems: Problems) -> None:
    """Each status the operation can refuse with, naming its codes; none other."""
    responses = answers_besides_problems(operation)
    for status in sorted({status for status, _ in problems}):
        codes = ", ".join(f"`{code}`" for code in sorted(c for s, c in problems if s == status))
        responses[str(status)] = OpenAPIResponse(
            description=f"{OUTCOMES[status]}: {codes}",
            content={FHIR_JSON: OpenAPIMediaType(schema=OUTCOME)},
            headers=RETRY_AFTER if status in {429, 503} else None,
        )
    operation.responses = responses
