"""Captures who called a prescription's own endpoints, and with which answer, in one place.

Keyed on the matched route (method and path template), so the handlers know nothing of it and
refused calls (403, 404, 409, 422, a body that does not decode) are recorded like the others:
the status is the one actually sent.
"""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.access.recorder import AccessRecorder, Call
from adapters.auth import TokenVerifier, UnauthenticatedError
from domain.actors import Actor

PRESCRIPTION = "/v1/prescriptions/{prescription_id}"
DISPENSATION = PRESCRIPTION + "/dispensations/{dispensation_id}"
FHIR_REQUEST = "/fhir/R4/MedicationRequest/{resource_id}"  # <prescription_id>-<line_no>

# contract.md "Audit and time travel": the endpoints whose calls are recorded, by the name the
# contract gives them (the `action` of an entry). Lists and the access log itself are not.
ACTIONS: dict[tuple[str, str], str] = {
    ("GET", PRESCRIPTION): "read",
    ("GET", PRESCRIPTION + "/qr.svg"): "qr.svg",
    ("GET", PRESCRIPTION + "/dispensable"): "dispensable",
    ("GET", PRESCRIPTION + "/events"): "events",
    ("POST", PRESCRIPTION + "/dispensations"): "dispensations",
    ("POST", DISPENSATION + "/withdrawal"): "withdrawal",
    ("POST", DISPENSATION + "/billing"): "billing",
    ("POST", PRESCRIPTION + "/cancel"): "cancel",
    ("POST", PRESCRIPTION + "/adaptations"): "adaptations",
    ("POST", PRESCRIPTION + "/transmissions"): "transmissions",
    # Issue 16's document is a read of the same data, on paper: traced like the read.
    ("GET", PRESCRIPTION + "/document.pdf"): "document.pdf",
    # The ordonnance sent to the patient's mailbox: a call on the prescription like the others.
    ("POST", PRESCRIPTION + "/send-to-patient"): "send-to-patient",
    # The FHIR door's calls on one line of a prescription: the same acts, by the same names.
    ("GET", FHIR_REQUEST): "read",
    ("POST", FHIR_REQUEST + "/$cancel"): "cancel",
}


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, recorder: AccessRecorder, verifier: TokenVerifier) -> None:
        self.app = app
        self.recorder = recorder
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        action = (
            ACTIONS.get((scope["method"], scope.get("path_template", "")))
            if scope["type"] == ScopeType.HTTP
            else None
        )
        if action is None:
            await self.app(scope, receive, send)
            return
        status, answered_at = 500, 0.0

        async def send_noting_status(message: Message) -> None:
            nonlocal status, answered_at
            if message["type"] == "http.response.start":
                status, answered_at = message["status"], time.time()
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            await self._record(scope, action, status, answered_at or time.time())

    async def _record(self, scope: Scope, action: str, status: int, at: float) -> None:
        actor = await self._actor(scope, status)
        if actor is None:
            return  # nobody identified (401)
        if actor.role == "patient" and status < 400:
            return  # a patient is answered only on their own prescription
        params = scope.get("path_params", {})
        number = (
            params.get("prescription_id") or str(params.get("resource_id", "")).rpartition("-")[0]
        )
        self.recorder.record(Call(number, at, actor, action, status))

    async def _actor(self, scope: Scope, status: int) -> Actor | None:
        """The caller, as the route resolved it; a call refused before the route asked (a body
        that does not decode) is attributed by its token, checked the same way."""
        actor = scope.get("state", {}).get("actor")
        if isinstance(actor, Actor):
            return actor
        if status == 401:
            return None
        authorization = _header(scope, b"authorization")
        try:
            return await self.verifier.caller(authorization)
        except UnauthenticatedError:
            return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
