"""Under /fhir every answer is FHIR JSON: errors are OperationOutcomes (never problem+json), with
the status /v1 gives the same refusal, and content negotiation is a FHIR server's."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from adapters.auth import UnauthenticatedError
from adapters.fhir.outcome import FhirError, operation_outcome
from adapters.http.problems import (
    CODE_OF_STATUS,
    DATABASE_RETRY_AFTER,
    STATUS_OF,
    http_error,
    unavailable_detail,
)
from adapters.http.schemas import BadBody
from adapters.postgres import database_unavailable
from adapters.unit_of_work import ContentionError
from domain.errors import DomainError

FHIR_JSON = "application/fhir+json"
JSON_FORMATS = {"json", FHIR_JSON, "application/json", "application/json+fhir"}
ACCEPTED_MEDIA = ("application/fhir+json", "application/json", "application/*", "*/*")
log = structlog.get_logger("ordo.fhir")


def outcome(
    status: int,
    code: str,
    diagnostics: str,
    expression: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    return Response(
        operation_outcome(status, code, diagnostics, expression),
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers,
    )


def refused(error: DomainError, expression: str | None = None) -> FhirError:
    """A /v1 refusal in FHIR: same status, same code, the element at fault."""
    return FhirError(STATUS_OF[error.code], error.code, error.detail, expression)


def negotiate(request: Request[Any, Any, Any]) -> None:
    """JSON only: `_format` and `Accept` asking for anything else get 406, a body that is not
    JSON 415 (FHIR's http.html#mime-type)."""
    wanted = request.query_params.get("_format")
    if wanted is not None and wanted not in JSON_FORMATS:
        raise FhirError(406, "not_acceptable", f"_format {wanted} is not served: JSON only")
    accept = request.headers.get("accept")
    if accept and not any(media in accept for media in ACCEPTED_MEDIA):
        raise FhirError(406, "not_acceptable", f"{accept} is not served: application/fhir+json")
    sent = request.headers.get("content-type")
    if request.method == "POST" and sent and "json" not in sent.split(";")[0]:
        raise FhirError(415, "unsupported_media_type", f"{sent}: application/fhir+json expected")


def _fhir_error(_: Request[Any, Any, Any], error: FhirError) -> Response[Any]:
    return outcome(error.status, error.code, error.diagnostics, error.expression)


def _domain_error(_: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    return outcome(STATUS_OF[error.code], error.code, error.detail, error.field)


def _unauthenticated(_: Request[Any, Any, Any], error: UnauthenticatedError) -> Response[Any]:
    return outcome(401, "unauthenticated", str(error), headers={"WWW-Authenticate": "Bearer"})


def _bad_body(_: Request[Any, Any, Any], error: BadBody) -> Response[Any]:
    return outcome(400, "invalid_request", error.detail, error.field)


def _validation(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    return outcome(400, "invalid_request", str(error.detail))


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """What Litestar and the middleware refuse (401, 404, 405, 408, 413, 429, ...), in FHIR with
    the /v1 code."""
    status = error.status_code
    code = CODE_OF_STATUS.get(status, "internal_error" if status >= 500 else "invalid_request")
    detail = f"no route {request.method} {request.url.path}" if status == 404 else str(error.detail)
    return outcome(status, code, detail, headers=error.headers)


def route_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """No route (404, 405) is answered before any controller: FHIR's way under /fhir."""
    if request.url.path.startswith("/fhir/"):
        return _http_error(request, error)
    return http_error(request, error)


def _contention(_: Request[Any, Any, Any], error: ContentionError) -> Response[Any]:
    return outcome(503, "busy", str(error), headers={"Retry-After": "1"})


def _unexpected(_: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    if database_unavailable(error):
        return outcome(
            503,
            "database_unavailable",
            unavailable_detail(error),
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    log.error("unhandled error", exc_info=error)
    return outcome(500, "internal_error", "an unexpected error occurred; it was logged")


FHIR_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    FhirError: _fhir_error,
    DomainError: _domain_error,
    UnauthenticatedError: _unauthenticated,
    BadBody: _bad_body,
    ValidationException: _validation,
    HTTPException: _http_error,
    ContentionError: _contention,
    Exception: _unexpected,
}
