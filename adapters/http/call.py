"""`Call`: who calls, and the application's services, given to every route handler as one
dependency (adapters/http/dependencies.py says why one)."""

from __future__ import annotations

from typing import Any, cast

from litestar import Request
from litestar.datastructures import State

from adapters.access import AccessLogStore
from adapters.auth import TokenVerifier
from adapters.catalogue import LiveCatalogue
from adapters.messaging.service import ConversationService
from adapters.readmodels import ReadModels
from adapters.reconciliation import Reconciliation
from adapters.service import PrescriptionService
from adapters.webhooks.subscriptions import Subscriptions
from domain.actors import Actor


class Call:
    """One request's caller, and the application's services it may use."""

    __slots__ = ("_state", "actor")

    def __init__(self, actor: Actor, state: State) -> None:
        self.actor = actor
        self._state = state

    @property
    def service(self) -> PrescriptionService:
        return cast("PrescriptionService", self._state.service)

    @property
    def conversations(self) -> ConversationService:
        return cast("ConversationService", self._state.conversations)

    @property
    def subscriptions(self) -> Subscriptions:
        return cast("Subscriptions", self._state.subscriptions)

    @property
    def read_models(self) -> ReadModels:
        return cast("ReadModels", self._state.read_models)

    @property
    def catalogue(self) -> LiveCatalogue:
        return cast("LiveCatalogue", self._state.catalogue)

    @property
    def access_log(self) -> AccessLogStore:
        return cast("AccessLogStore", self._state.access_log.store)

    @property
    def reconciliation(self) -> Reconciliation:
        return cast("Reconciliation", self._state.reconciliation)


async def provide_call(request: Request[Any, Any, Any]) -> Call:
    state = request.app.state
    verifier: TokenVerifier = state.verifier
    actor = await verifier.caller(request.headers.get("authorization"))
    request.state.actor = actor  # for the request log line
    return Call(actor, state)
