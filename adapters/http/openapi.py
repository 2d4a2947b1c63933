"""What Litestar cannot infer for the OpenAPI document, stated once at start-up.

The bodies are decoded leniently on purpose (an INS pasted with spaces, "2a" in lower case), and
the rules that bound a quantity or a duration live in the domain, so the schemas Litestar
derives from the structs say neither. This module adds to the document, from the domain's own
constants:

- the patterns, lengths, bounds and enums the server enforces (on the canonical forms);
- exactly the problems each operation can answer (`adapters.http.problem_codes`), as
  `application/problem+json` `Problem`s, each status with its codes;
- OpenAPI links (issue -> read, dispense, …; dispense -> billing, withdrawal), so that a client
  generator, and a stateful fuzzer, can chain the calls.
"""

from __future__ import annotations

from dataclasses import replace
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.openapi.spec import (
    Link,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

from adapters.http.problem_codes import Problems, answers_besides_problems, problems_of
from adapters.http.problems import PROBLEM_JSON
from adapters.http.schemas import Body
from domain.checks import MAX_LINES, MAX_PACKS_PER_LINE
from domain.decisions.billing import MAX_AMOUNT_CENTS
from domain.decisions.issuing import MAX_DURATION_DAYS
from domain.events import Product

INS = r"^[12378][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{8}$"
RPPS = r"^[0-9]{11}$"
FINESS = r"^[0-9]{9}$"
CIP13 = r"^3400[0-9]{9}$"
UCD = r"^(?:[0-9]{7}|[0-9]{13})$"  # UCD7 or UCD13
PRESCRIPTION_NUMBER = r"^[0-9A-HJKMNP-TV-Z]{20}$"
NOT_BLANK = r"\S"
LINE_NO = {"minimum": 1, "maximum": MAX_LINES}
PACKS = {"minimum": 1, "maximum": MAX_PACKS_PER_LINE}
LINES = {"min_items": 1, "max_items": MAX_LINES}

# component -> property -> what the server checks (canonical forms: it also accepts spaces).
CONSTRAINTS: dict[str, dict[str, dict[str, Any]]] = {
    "PatientBody": {"ins": {"pattern": INS, "min_length": 15, "max_length": 15}},
    "IssueBody": {"lines": LINES},
    "PrescriptionLineBody": {
        "quantity": PACKS,
        "duration_days": {"minimum": 1, "maximum": MAX_DURATION_DAYS},
        "dosage": {"min_length": 1, "pattern": NOT_BLANK},
        "fraction_days": {"minimum": 1, "maximum": MAX_DURATION_DAYS - 1},
    },
    "Product": {"label": {"min_length": 1, "pattern": NOT_BLANK}},
    "DispenseBody": {"lines": LINES},
    "DispenseLineBody": {"line_no": LINE_NO, "quantity": PACKS},
    "BillBody": {
        "invoice_number": {"min_length": 1, "pattern": NOT_BLANK},
        "lines": LINES,
    },
    "BillLineBody": {
        "line_no": LINE_NO,
        "quantity": PACKS,
        "amount_cents": {"minimum": 0, "maximum": MAX_AMOUNT_CENTS},
    },
    "WithdrawalBody": {"reason": {"min_length": 1, "pattern": NOT_BLANK}},
    "AdaptationBody": {
        "line_no": LINE_NO,
        "description": {"min_length": 1, "pattern": NOT_BLANK},
        "prescriber_rpps": {"pattern": RPPS},
    },
    "TransmissionBody": {"finess": {"pattern": FINESS}},
}
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "prescription_id": {"pattern": PRESCRIPTION_NUMBER, "min_length": 20, "max_length": 20},
    "cip13": {"pattern": CIP13},
}
# An identifier in the path is also taken with spaces, dashes or in lower case; say so.
PATH_DESCRIPTIONS = {
    "prescription_id": "The prescription number: 20 Crockford base32 symbols (the last a check "
    "symbol); also accepted grouped with dashes or spaces, in any case",
}

# Where the created resource's identifier is in a 201's body, and the operations it leads to.
LinkTargets = dict[str, tuple[str, dict[str, str]]]
LINKS: dict[tuple[str, str], LinkTargets] = {
    ("POST", "/v1/prescriptions"): {
        name: (
            path,
            {"prescription_id": "$response.body#/prescription_id"},
        )
        for name, path in {
            "read": "GET /v1/prescriptions/{prescription_id}",
            "dispense": "POST /v1/prescriptions/{prescription_id}/dispensations",
            "dispensable": "GET /v1/prescriptions/{prescription_id}/dispensable",
            "history": "GET /v1/prescriptions/{prescription_id}/events",
            "cancel": "POST /v1/prescriptions/{prescription_id}/cancel",
            "transmit": "POST /v1/prescriptions/{prescription_id}/transmissions",
            "send_to_patient": "POST /v1/prescriptions/{prescription_id}/send-to-patient",
            "adapt": "POST /v1/prescriptions/{prescription_id}/adaptations",
            "qr_code": "GET /v1/prescriptions/{prescription_id}/qr.svg",
            "consent": "PUT /v1/prescriptions/{prescription_id}/execution-view-consent",
        }.items()
    },
    ("POST", "/v1/prescriptions/{prescription_id}/dispensations"): {
        name: (
            path,
            {
                "prescription_id": "$request.path.prescription_id",
                "dispensation_id": "$response.body#/dispensation_id",
            },
        )
        for name, path in {
            "bill": "POST /v1/prescriptions/{prescription_id}/dispensations/"
            "{dispensation_id}/billing",
            "withdraw": "POST /v1/prescriptions/{prescription_id}/dispensations/"
            "{dispensation_id}/withdrawal",
        }.items()
    },
}
PROBLEM_TITLES = {
    400: "The body or a parameter is not of the expected shape",
    401: "No valid bearer token",
    403: "The caller's role may not do this",
    404: "Not found (unknown, or not the caller's)",
    408: "The request body did not arrive in time",
    409: "The prescription's state refuses it",
    413: "The body is too large",
    415: "The body is not of the media type expected",
    422: "Well-formed, but a rule refuses it",
    429: "Too many calls from this caller: retry after `Retry-After` seconds",
    503: "Busy, or the database unavailable: retry after `Retry-After` seconds",
}
# What a code's answer also carries, said beside it.
CODE_NOTES = {
    "quantity_exceeds_allowed_now": "with max_quantity",
    "narcotic_overlap": "with max_quantity",
    "designated_pharmacy_only": "with max_quantity (0)",
    "exceptional_supply_not_allowed": "with max_quantity",
}
RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=1),
    description="Seconds to wait before retrying",
)


def complete_document(document: OpenAPI) -> OpenAPI:
    """Add the constraints, problems and links to `document` (in place, and returned)."""
    schemas = document.components.schemas if document.components else None
    if schemas:
        _constrain(schemas)
    operations = dict(_operations(document))
    for (method, path), operation in operations.items():
        if path.startswith("/v1/"):
            _declare_problems(operation, problems_of(method, path))
            _constrain_path_parameters(operation)
    for source, links in LINKS.items():
        if source in operations:
            _link(operations[source], links, operations)
    return document


def _operations(document: OpenAPI) -> list[tuple[tuple[str, str], Operation]]:
    found = []
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                found.append(((method.upper(), path), operation))
    return found


def closed_bodies() -> set[str]:
    """The request bodies that refuse unknown fields (400), as their structs say."""
    structs: list[type[msgspec.Struct]] = [Product, *Body.__subclasses__()]
    return {kind.__name__ for kind in structs if kind.__struct_config__.forbid_unknown_fields}


def _constrain(schemas: dict[str, Schema]) -> None:
    for component in closed_bodies():
        if component in schemas:
            schemas[component].additional_properties = False
    for component, properties in CONSTRAINTS.items():
        schema = schemas.get(component)
        if schema is None or schema.properties is None:
            continue
        for name, constraints in properties.items():
            if name in schema.properties:
                schema.properties[name] = _with(schema.properties[name], constraints)
    if "Product" in schemas:
        schemas["Product"] = _product_by_system(schemas["Product"])


def _product_by_system(product: Schema) -> Schema:
    """A pack (CIP13) or a unit (UCD) has its code; a substance (DCI) is its label alone."""
    properties = dict(product.properties or {})
    string = Schema(type=OpenAPIType.STRING)
    code_of = {
        "CIP13": Schema(type=OpenAPIType.STRING, pattern=CIP13, description="The pack's CIP13"),
        "UCD": Schema(type=OpenAPIType.STRING, pattern=UCD, description="UCD7 or UCD13"),
        "DCI": Schema(one_of=[Schema(type=OpenAPIType.NULL)], description="None: the label"),
    }
    variants: list[Schema | Reference] = [
        replace(
            product,
            title=None,
            properties={
                **properties,
                "system": replace(string, const=system),
                "code": code,
            },
            required=sorted({"system", "label", *(["code"] if system != "DCI" else [])}),
        )
        for system, code in code_of.items()
    ]
    return Schema(
        title=product.title,
        description="A medicine as written: a pack (CIP13) or a unit (UCD) by its code, a "
        "substance (DCI) by its name in `label`, with no code",
        one_of=variants,
    )


def _with(schema: Schema | Reference, constraints: dict[str, Any]) -> Schema | Reference:
    """`schema` with `constraints`; on an optional field (`oneOf [T, null]`), on its T."""
    if isinstance(schema, Reference):
        return schema
    if schema.one_of:
        schema.one_of = [
            _with(choice, constraints)
            if isinstance(choice, Schema) and choice.type != "null"
            else choice
            for choice in schema.one_of
        ]
        return schema
    return replace(schema, **constraints)


def _constrain_path_parameters(operation: Operation) -> None:
    for parameter in operation.parameters or []:
        if isinstance(parameter, Reference) or parameter.param_in != "path":
            continue
        constraints = PATH_PARAMETERS.get(parameter.name)
        if constraints and isinstance(parameter.schema, Schema):
            parameter.schema = replace(parameter.schema, **constraints)
        if parameter.name in PATH_DESCRIPTIONS and not parameter.description:
            parameter.description = PATH_DESCRIPTIONS[parameter.name]


def _declare_problems(operation: Operation, problems: Problems) -> None:
    """Each status the operation can answer a problem with, naming its codes; none other."""
    responses = answers_besides_problems(operation)
    for status in sorted({status for status, _ in problems}):
        codes = sorted(code for answered, code in problems if answered == status)
        declared = (operation.responses or {}).get(str(status))
        # The handler's own words on this problem, if it has any (Litestar's default words for
        # a status are no handler's), name the codes too.
        title = (
            declared.description
            if isinstance(declared, OpenAPIResponse)
            and declared.description not in {None, "", HTTPStatus(status).description}
            else PROBLEM_TITLES[status]
        )
        responses[str(status)] = _problem_response(status, title, codes)
    operation.responses = responses


def _problem_response(status: int, title: str, codes: list[str]) -> OpenAPIResponse:
    listed = ", ".join(
        f"`{code}` ({CODE_NOTES[code]})" if code in CODE_NOTES else f"`{code}`" for code in codes
    )
    named = all(f"`{code}`" in title for code in codes)
    return OpenAPIResponse(
        description=title if named else f"{title}: {listed}",
        content={
            PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))
        },
        headers={"Retry-After": RETRY_AFTER} if status in {429, 503} else None,
    )


def _link(
    source: Operation,
    links: LinkTargets,
    operations: dict[tuple[str, str], Operation],
) -> None:
    created = next(
        (
            response
            for status, response in (source.responses or {}).items()
            if status.startswith("2") and isinstance(response, OpenAPIResponse)
        ),
        None,
    )
    if created is None:
        return
    created.links = created.links or {}
    for name, (target, parameters) in links.items():
        method, _, path = target.partition(" ")
        operation = operations.get((method, path))
        if operation is not None and operation.operation_id:
            created.links[name] = Link(
                operation_id=operation.operation_id, parameters=dict(parameters)
            )
