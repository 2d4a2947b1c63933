"""Errors under /fhir: an `OperationOutcome` whose first issue carries the /v1 code."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue

PROBLEM_SYSTEM = "urn:ordo:problem"
# The issue type (http://hl7.org/fhir/issue-type) that says the same as the HTTP status.
ISSUE_TYPE = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    408: "timeout",
    409: "business-rule",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}


class FhirError(Exception):
    """A refusal to answer as an OperationOutcome: its status, /v1 code and element at fault."""

    def __init__(
        self, status: int, code: str, diagnostics: str, expression: str | None = None
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression


def invalid_element(diagnostics: str, expression: str | None) -> FhirError:
    """What the client sent cannot be what it says (422 `invalid_request`)."""
    return FhirError(422, "invalid_request", diagnostics, expression)


def operation_outcome(
    status: int, code: str, diagnostics: str, expression: str | None = None
) -> dict[str, Any]:
    issue = OperationOutcomeIssue(
        severity="error",
        code=ISSUE_TYPE.get(status, "exception" if status >= 500 else "invalid"),
        details=CodeableConcept(coding=[Coding(system=PROBLEM_SYSTEM, code=code)]),
        diagnostics=diagnostics,
        expression=[expression] if expression else None,
    )
    return emitted(OperationOutcome(issue=[issue]))


def emitted(resource: Any) -> dict[str, Any]:
    """A resource as FHIR JSON (no empty elements)."""
    dumped: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return dumped
