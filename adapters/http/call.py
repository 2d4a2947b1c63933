"""`Call`: who calls, and the application's services, given to every route handler as one
dependency (adapters/http/dependencies.py says why one)."""

from __future__ import annotations

from typing import Any

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
        service: PrescriptionService = self._state.service
        return service

    @property
    def conversations(self) -> ConversationService:
        conversations: ConversationService = self._state.conversations
        return conversations

    @property
    def subscriptions(self) -> Subscriptions:
        subscriptions: Subscriptions = self._state.subscriptions
        return subscriptions

    @property
    def read_models(self) -> ReadModels:
        read_models: ReadModels = self._state.read_models
        return read_models

    @property
    def catalogue(self) -> LiveCatalogue:
        catalogue: LiveCatalogue = self._state.catalogue
        return catalogue

    @property
    def access_log(self) -> AccessLogStore:
        store: AccessLogStore = self._state.access_log.store
        return store

    @property
    def reconciliation(self) -> Reconciliation:
        reconciliation: Reconciliation = self._state.reconciliation
        return reconciliation


async def provide_call(request: Request[Any, Any, Any]) -> Call:
    state = request.app.state
    verifier: TokenVerifier = state.verifier
    actor = await verifier.caller(request.headers.get("authorization"))
    request.state.actor = actor  # for the request log line
    return Call(actor, state)
