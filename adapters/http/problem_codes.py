"""The problems each /v1 operation can answer, exactly: the codes of its use case (its decision
in `domain/decisions`, its checks in `adapters/service.py`) and those of the way to it (the
token, the rate limit, the body, the unit of work). `adapters.http.openapi` states them in the
OpenAPI document; `tests/api/conftest.py` checks every problem the API tests provoke is listed.
"""

from __future__ import annotations

from litestar.openapi.spec import Operation
from litestar.openapi.spec.responses import Responses

from adapters.http.problems import STATUS_OF

Problems = frozenset[tuple[int, str]]


def answers_besides_problems(operation: Operation) -> Responses:
    """The operation's documented answers but its 4xx and 5xx, which the problems it lists
    replace (in /v1's OpenAPI document as in FHIR's)."""
    return {
        status: response
        for status, response in (operation.responses or {}).items()
        if not status.startswith(("4", "5"))
    }


def _domain(*codes: str) -> Problems:
    """Codes of the domain, at their status (`STATUS_OF`)."""
    return frozenset((STATUS_OF[code], code) for code in codes)


# Any call: a bearer token, and the per-caller rate limit.
CALLED = frozenset({(401, "unauthenticated"), (429, "rate_limited")})
# A use case some roles only may ask for (adapters/permissions.py).
RESTRICTED = _domain("forbidden")
# A JSON body: its shape (400), stalled (408), too large (413).
SENT = frozenset({(400, "invalid_request"), (408, "request_timeout"), (413, "payload_too_large")})
# A prescription named in the path: unknown, mistyped, or not the caller's.
NAMED = _domain("not_found")
# A page of a list: `limit` out of bounds (400), a cursor this server did not give (422).
PAGED = frozenset({(400, "invalid_request"), (422, "invalid_request")})
# An append through the unit of work, lost to other writers again and again.
APPENDED = frozenset({(503, "busy")})
# An `Idempotency-Key` on a command: the same key with another request.
RETRIED = _domain("idempotency_key_reused")
# A command on a prescription through the unit of work, retry-safe.
COMMAND = CALLED | RESTRICTED | SENT | NAMED | APPENDED | RETRIED
DISPENSABLE = _domain("prescription_cancelled", "prescription_expired", "already_dispensed")
ON_A_PRESCRIPTION = "/v1/prescriptions/{prescription_id}"
DISPENSATION = f"{ON_A_PRESCRIPTION}/dispensations/{{dispensation_id}}"
LIST = CALLED | RESTRICTED | PAGED

_ANSWERED: dict[tuple[str, str], Problems] = {
    ("POST", "/v1/prescriptions"): CALLED
    | RESTRICTED
    | SENT
    | APPENDED
    | RETRIED
    | _domain(
        "invalid_request",
        "unknown_product",
        "non_substitution_reason_invalid",
        "hospital_use_only",
    ),
    ("GET", ON_A_PRESCRIPTION): CALLED | NAMED | _domain("invalid_request"),  # as_of
    ("GET", f"{ON_A_PRESCRIPTION}/qr.svg"): CALLED | NAMED,
    ("GET", f"{ON_A_PRESCRIPTION}/document.pdf"): CALLED | RESTRICTED | NAMED,
    ("GET", f"{ON_A_PRESCRIPTION}/events"): CALLED
    | RESTRICTED
    | NAMED
    | _domain("invalid_request"),  # as_of
    ("GET", f"{ON_A_PRESCRIPTION}/dispensable"): CALLED
    | RESTRICTED
    | NAMED
    | _domain("invalid_request"),  # at
    ("GET", f"{ON_A_PRESCRIPTION}/access-log"): CALLED | RESTRICTED | NAMED | PAGED,
    ("POST", f"{ON_A_PRESCRIPTION}/dispensations"): COMMAND
    | DISPENSABLE
    | _domain(
        "invalid_request",
        "quantity_exceeds_remaining",
        "quantity_exceeds_allowed_now",
        "narcotic_overlap",
        "designated_pharmacy_only",
        "exceptional_supply_not_allowed",
        "substitution_not_allowed",
        "substitution_excluded",
        "non_substitution_reason_invalid",
        "lot_required",
        "unknown_product",
    ),
    ("POST", f"{DISPENSATION}/billing"): COMMAND
    | _domain(
        "invalid_request",
        "already_billed",
        "billing_exceeds_dispensed",
        "invoice_number_used",
        "dispensation_withdrawn",
    ),
    ("POST", f"{DISPENSATION}/withdrawal"): COMMAND
    | _domain("invalid_request", "already_billed", "withdrawal_window_closed"),
    ("POST", f"{ON_A_PRESCRIPTION}/adaptations"): COMMAND
    | _domain("invalid_request", "prescription_cancelled"),
    ("POST", f"{ON_A_PRESCRIPTION}/cancel"): COMMAND | _domain("prescription_cancelled"),
    ("PUT", f"{ON_A_PRESCRIPTION}/execution-view-consent"): CALLED
    | RESTRICTED
    | SENT
    | NAMED
    | APPENDED,
    ("POST", f"{ON_A_PRESCRIPTION}/transmissions"): COMMAND
    | DISPENSABLE
    | _domain("invalid_request"),  # the FINESS
    ("POST", f"{ON_A_PRESCRIPTION}/send-to-patient"): COMMAND | _domain("prescription_cancelled"),
    # Anyone but the conversation's parties is told it does not exist: never forbidden.
    ("POST", "/v1/conversations/{conversation_id}/messages"): CALLED
    | SENT
    | NAMED
    | APPENDED
    | RETRIED
    | _domain("conversation_closed"),
    # Webhooks: a pharmacist's or a prescriber's; another's subscription is unknown to them.
    ("POST", "/v1/subscriptions"): CALLED
    | RESTRICTED
    | SENT
    | RETRIED
    | _domain("invalid_request"),
    ("GET", "/v1/subscriptions/{subscription_id}"): CALLED | RESTRICTED | NAMED,
    ("DELETE", "/v1/subscriptions/{subscription_id}"): CALLED | RESTRICTED | NAMED,
    ("GET", "/v1/prescribers/me/prescriptions"): LIST,
    ("GET", "/v1/patients/me/prescriptions"): LIST,
    ("GET", "/v1/pharmacies/me/inbox"): LIST,
    ("GET", "/v1/pharmacies/me/conversations"): LIST,
    ("GET", "/v1/patients/me/conversations"): LIST,
    # Any role reads the catalogue; a CIP13 of the wrong form is invalid, an unknown one absent.
    ("GET", "/v1/products/{cip13}"): CALLED | _domain("not_found", "invalid_request"),
    ("POST", "/v1/reconciliation/batches"): CALLED
    | RESTRICTED
    | frozenset({(408, "request_timeout"), (413, "payload_too_large")})
    | frozenset({(415, "unsupported_media_type")}),
    ("GET", "/v1/reconciliation/batches/{batch_id}"): CALLED | RESTRICTED | NAMED,
    ("GET", "/v1/reconciliation/batches/{batch_id}/items"): CALLED
    | RESTRICTED
    | NAMED
    | frozenset({(400, "invalid_request")}),  # outcome
}

# The database behind an operation, unreachable just now (a restart, a failover to a standby):
# 503 with `Retry-After`, nothing acknowledged. Only the catalogue is read from memory.
IN_MEMORY = {("GET", "/v1/products/{cip13}")}
UNREACHABLE = frozenset({(503, "database_unavailable")})
PROBLEMS_OF: dict[tuple[str, str], Problems] = {
    operation: problems if operation in IN_MEMORY else problems | UNREACHABLE
    for operation, problems in _ANSWERED.items()
}


def problems_of(method: str, path: str) -> Problems:
    """The problems of one operation; a new operation names them here first."""
    try:
        return PROBLEMS_OF[method, path]
    except KeyError:
        msg = f"{method} {path}: list its problems in adapters/http/problem_codes.py PROBLEMS_OF"
        raise KeyError(msg) from None
