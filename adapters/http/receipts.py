"""Receipts over HTTP: the `Ordo-Receipt` header of a 201 that recorded something receipted,
and the published keys at `/.well-known/jwks.json` (no token: anyone may check a receipt)."""

from __future__ import annotations

import time
from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from adapters.receipts import HEADER, KeyRing, receipt_claims
from adapters.unit_of_work import last_appended


@get("/.well-known/jwks.json", include_in_schema=False)
async def receipt_keys(state: State) -> dict[str, Any]:
    ring: KeyRing = state.receipts
    return ring.jwks()


def issuer_of(scope: Scope) -> str:
    """The server as the caller reached it: its scheme and Host."""
    headers = dict(scope.get("headers", []))
    host = headers.get(b"host", b"").decode("latin-1") or "localhost"
    return f"{scope.get('scheme', 'http')}://{host}"


def receipt_header(ring: KeyRing) -> BeforeMessageSendHookHandler:
    """A `before_send` hook: a 201 whose request appended a prescribing, a dispensing or a
    billing gets its receipt, signed once the append is durable (the answer is being sent)."""

    async def add_receipt(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        appended = last_appended.get()
        if appended is None:
            return
        last_appended.set(None)
        if message["status"] != 201:
            return
        issuer, now = issuer_of(scope), int(time.time())
        for event, point in zip(appended.events, appended.points, strict=True):
            claims = receipt_claims(event, point, issuer, now)
            if claims is not None:
                token = ring.sign(claims).encode()
                message["headers"] = [*message.get("headers", []), (HEADER.lower().encode(), token)]
                return

    return add_receipt
