"""Receipts over HTTP: the `Ordo-Receipt` header of an answer that recorded something receipted,
and the published keys at `/.well-known/jwks.json` (no token: anyone may check a receipt)."""

from __future__ import annotations

import time
from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.openapi.spec import OpenAPI, OpenAPIHeader, OpenAPIResponse, OpenAPIType, Schema
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from adapters.receipts import HEADER, KeyRing, receipt_claims
from adapters.unit_of_work import last_appended

# The operations whose 201 carries a receipt (and their /fhir equivalents, see docs/fhir.md).
RECEIPTED = (
    "/v1/prescriptions",
    "/v1/prescriptions/{prescription_id}/dispensations",
    "/v1/prescriptions/{prescription_id}/dispensations/{dispensation_id}/billing",
)
RECEIPT_HEADER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING),
    description=(
        "The signed receipt of what was recorded and where in the log (compact JWS, EdDSA or "
        "ES256); keys at /.well-known/jwks.json"
    ),
)


def document_receipts(document: OpenAPI) -> None:
    """The `Ordo-Receipt` header in the OpenAPI document's 201 answers that carry it."""
    for path in RECEIPTED:
        item = (document.paths or {}).get(path)
        operation = item.post if item is not None else None
        created = (operation.responses or {}).get("201") if operation is not None else None
        if isinstance(created, OpenAPIResponse):
            created.headers = {**(created.headers or {}), HEADER: RECEIPT_HEADER}


@get("/.well-known/jwks.json", include_in_schema=False)
async def receipt_keys(state: State) -> dict[str, Any]:
    ring: KeyRing = state.receipts
    return ring.jwks()


def receipt_header(ring: KeyRing, issuer: str) -> BeforeMessageSendHookHandler:
    """A `before_send` hook: a success (201, or a FHIR transaction's 200) whose request appended
    a prescribing, a dispensing or a billing gets its receipt, signed once the append is durable
    (the answer is being sent)."""

    async def add_receipt(message: Message, _: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        appended = last_appended.get()
        if appended is None:
            return
        last_appended.set(None)
        if not 200 <= message["status"] < 300:  # 201, or a FHIR transaction's 200
            return
        now = int(time.time())
        for event, point in zip(appended.events, appended.points, strict=True):
            claims = receipt_claims(event, point, issuer, now)
            if claims is not None:
                token = ring.sign(claims).encode()
                message["headers"] = [*message.get("headers", []), (HEADER.lower().encode(), token)]
                return

    return add_receipt
