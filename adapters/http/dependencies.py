"""What a route handler is given: the caller, and the services the composition root built.

Every handler asks for these by name (`actor`, `service`, `conversations`, ...); the
application's state holds the one instance of each (adapters/bootstrap.py), and these
providers are the only code that reads it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from adapters.access import AccessLogStore
from adapters.auth import TokenVerifier
from adapters.catalogue import LiveCatalogue
from adapters.http.lists import provide_lists
from adapters.http.pages import provide_page
from adapters.messaging.service import ConversationService
from adapters.readmodels import ReadModels
from adapters.service import PrescriptionService
from adapters.webhooks.subscriptions import Subscriptions
from domain.actors import Actor
from domain.calendar import local_day


async def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    verifier: TokenVerifier = request.app.state.verifier
    actor = await verifier.caller(request.headers.get("authorization"))
    request.state.actor = actor  # for the request log line
    return actor


def provide_service(state: State) -> PrescriptionService:
    service: PrescriptionService = state.service
    return service


def provide_subscriptions(state: State) -> Subscriptions:
    subscriptions: Subscriptions = state.subscriptions
    return subscriptions


def provide_conversations(state: State) -> ConversationService:
    conversations: ConversationService = state.conversations
    return conversations


def provide_read_models(state: State) -> ReadModels:
    read_models: ReadModels = state.read_models
    return read_models


def provide_catalogue(state: State) -> LiveCatalogue:
    catalogue: LiveCatalogue = state.catalogue
    return catalogue


def provide_access_log(state: State) -> AccessLogStore:
    store: AccessLogStore = state.access_log.store
    return store


def today_of(service: PrescriptionService, actor: Actor | None = None) -> date:
    """Today where the caller is: a pharmacy's own calendar, else France's (Paris)."""
    now = service.clock()
    if actor is not None and actor.role == "pharmacist" and actor.finess:
        return local_day(now.at, actor.finess)
    return now.today


# Every handler may ask for these by name; Litestar builds only those a handler asks for.
DEPENDENCIES = {
    "actor": Provide(provide_actor),
    "service": Provide(provide_service, sync_to_thread=False),
    "conversations": Provide(provide_conversations, sync_to_thread=False),
    "subscriptions": Provide(provide_subscriptions, sync_to_thread=False),
    "read_models": Provide(provide_read_models, sync_to_thread=False),
    "catalogue": Provide(provide_catalogue, sync_to_thread=False),
    "access_log": Provide(provide_access_log, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
    "lists": Provide(provide_lists, sync_to_thread=False),
}
