"""Structured JSON logs, one line per request, with no health identifier in clear.

Patients' INS never reach a log line: fields that carry one are replaced by a keyed hash (so
support can still correlate lines about the same patient without learning who it is), and any
INS-shaped text left in a message is hashed the same way. Routes are logged as templates
(`/v1/prescriptions/{prescription_id}`): a prescription number opens the prescription, so it
is a secret too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.tracing import add_trace_id
from domain.actors import Actor

SENSITIVE_FIELDS = frozenset({"ins", "patient_ins", "prescription_id"})
# 13-character NIR body (department may be 2A/2B) with or without its 2-digit key.
INS_SHAPED = re.compile(r"\b\d{5}(?:\d{2}|2[ABab])\d{6}(?:\d{2})?\b")


def keyed_hash(key: bytes, value: str) -> str:
    return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


class RedactHealthIdentifiers:
    """structlog processor: hashes identifying fields and INS-shaped text."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for name, value in event.items():
            if name in SENSITIVE_FIELDS and isinstance(value, str):
                event[name] = keyed_hash(self._key, value)
            elif isinstance(value, str):
                event[name] = INS_SHAPED.sub(lambda m: keyed_hash(self._key, m.group()), value)
        return event


def configure_logging(hash_key: bytes, level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            RedactHealthIdentifiers(hash_key),
            add_trace_id,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )


def actor_fields(actor: Actor) -> dict[str, str | None]:
    """What identifies a caller in logs: role and professional numbers, never a patient's INS."""
    return {"role": actor.role, "rpps": actor.rpps, "finess": actor.finess}


class RequestLogMiddleware:
    """Gives each request an id (echoed as X-Request-Id) and logs it once it is answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("ordo.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, status, time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id")

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        actor = scope.get("state", {}).get("actor")
        self.log.info(
            "request",
            method=scope.get("method"),
            route=scope.get("path_template") or "unmatched",
            status=status,
            latency_ms=round(seconds * 1000, 2),
            **(actor_fields(actor) if isinstance(actor, Actor) else {}),
        )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", text) else None
    return None
