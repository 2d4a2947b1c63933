"""Every error as `application/problem+json` (RFC 9457) with the contract's stable `code`."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from adapters.auth import UnauthenticatedError
from adapters.http.schemas import BadBody
from adapters.postgres import database_unavailable
from adapters.unit_of_work import ContentionError
from domain.errors import DomainError

STATUS_OF = {
    "invalid_request": 422,
    "not_found": 404,
    "forbidden": 403,
    "already_dispensed": 409,
    "quantity_exceeds_remaining": 409,
    "prescription_cancelled": 409,
    "prescription_expired": 409,
    "already_billed": 409,
    "billing_exceeds_dispensed": 422,
    "idempotency_key_reused": 422,
    "quantity_exceeds_allowed_now": 409,
    "narcotic_overlap": 409,
    "designated_pharmacy_only": 409,
    "exceptional_supply_not_allowed": 409,
    "hospital_use_only": 422,
    "withdrawal_window_closed": 409,
    "invoice_number_used": 409,
    "dispensation_withdrawn": 409,
    "substitution_not_allowed": 422,
    "unknown_product": 422,
    "conversation_closed": 409,
    "substitution_excluded": 422,
    "non_substitution_reason_invalid": 422,
    "lot_required": 422,
    # The database cannot be reached (restarting, failing over): nothing was acknowledged.
    "database_unavailable": 503,
}
# Seconds a client waits before retrying when the database is unavailable: a failover's.
DATABASE_RETRY_AFTER = "2"
CODE_OF_STATUS = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "route_not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("ordo.http")


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    # quantity_exceeds_allowed_now, narcotic_overlap, designated_pharmacy_only,
    # exceptional_supply_not_allowed: the most that may be dispensed now.
    max_quantity: int | None = None


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    headers: Any = None,
    max_quantity: int | None = None,
) -> Response[Problem]:
    body = Problem(
        type=f"https://ordo.example/problems/{code}",
        title=code.replace("_", " ").capitalize(),
        status=status,
        detail=detail,
        code=code,
        field=field,
        max_quantity=max_quantity,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error(_: Request[Any, Any, Any], error: DomainError) -> Response[Problem]:
    return problem(
        STATUS_OF[error.code],
        error.code,
        error.detail,
        field=error.field,
        max_quantity=error.max_quantity,
    )


def unauthenticated(_: Request[Any, Any, Any], error: UnauthenticatedError) -> Response[Problem]:
    return problem(401, "unauthenticated", str(error), headers={"WWW-Authenticate": "Bearer"})


def bad_body(_: Request[Any, Any, Any], error: BadBody) -> Response[Problem]:
    return problem(400, "invalid_request", error.detail, field=error.field)


def validation_error(_: Request[Any, Any, Any], error: ValidationException) -> Response[Problem]:
    """msgspec's message names the field (`… - at $.lines[0].quantity`); pass it on."""
    messages = [
        f"{item.get('message', '')} (at {item.get('key')})"
        if item.get("key")
        else str(item.get("message"))
        for item in (error.extra if isinstance(error.extra, list) else [])
        if isinstance(item, dict)
    ]
    return problem(400, "invalid_request", "; ".join(messages) or str(error.detail))


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Problem]:
    status = error.status_code
    code = CODE_OF_STATUS.get(status, "internal_error" if status >= 500 else "invalid_request")
    detail = f"no route {request.method} {request.url.path}" if status == 404 else str(error.detail)
    return problem(status, code, detail, headers=error.headers)


def contention(_: Request[Any, Any, Any], error: ContentionError) -> Response[Problem]:
    return problem(503, "busy", str(error), headers={"Retry-After": "1"})


def unavailable_detail(error: Exception) -> str:
    log.warning("database_unavailable", error=type(error).__name__, detail=str(error)[:200])
    return f"the database cannot be reached just now ({type(error).__name__}); retry later"


def unexpected(_: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    if database_unavailable(error):
        return problem(
            503,
            "database_unavailable",
            unavailable_detail(error),
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    log.error("unhandled error", exc_info=error)
    return problem(500, "internal_error", "an unexpected error occurred; it was logged")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    UnauthenticatedError: unauthenticated,
    BadBody: bad_body,
    ValidationException: validation_error,
    HTTPException: http_error,
    ContentionError: contention,
    Exception: unexpected,
}
