"""`/v1/subscriptions`: webhooks to the pharmacy's and the prescriber's software (contract.md
"Push to the pharmacy's and the prescriber's software"); `ordo webhooks` delivers them."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from adapters.http.call import Call
from adapters.http.problems import Problem
from adapters.http.routes import IdempotencyKey
from adapters.http.schemas import Body, strict_body
from adapters.webhooks.routing import Kind
from adapters.webhooks.store import Failure
from adapters.webhooks.subscriptions import SubscriptionState


class SubscribeBody(Body, frozen=True, kw_only=True):
    url: Annotated[
        str, msgspec.Meta(max_length=2000, description="Where to POST: https (422 otherwise)")
    ]
    events: Annotated[tuple[Kind, ...], msgspec.Meta(min_length=1, max_length=4)]


class SubscribedView(msgspec.Struct, frozen=True, kw_only=True):
    """The secret is shown here only (and to a retry under the same Idempotency-Key)."""

    subscription_id: str
    url: str
    events: tuple[Kind, ...]
    secret: str


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    subscription_id: str
    url: str
    events: tuple[Kind, ...]
    deliveries: dict[str, int]  # pending, delivered, failed
    failures: list[Failure]  # the latest ones given up, with the receiver's last answer


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type="application/problem+json")


FORBIDDEN = _problem("`forbidden`: for a pharmacist (their pharmacy) or a prescriber")
NOT_FOUND = _problem("`not_found`: unknown, deleted, or another's")


class SubscriptionsController(Controller):
    path = "/v1/subscriptions"
    tags = ["webhooks"]  # noqa: RUF012

    @post(
        "/",
        status_code=201,
        summary="Subscribe to webhooks",
        description="Each matching event is POSTed to `url` as JSON, signed by the Standard "
        "Webhooks rules (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the "
        "`secret` answered here once; at least once, in log order, retried with back-off up to "
        "an hour. A pharmacist subscribes their pharmacy (the transmissions to it, the patient's "
        "messages, and for what was sent to it: cancellations, a dispensing elsewhere), a "
        "prescriber themself (cancellations of their prescriptions, and their dispensings "
        "unless the patient opposes).",
        dependencies={"payload": strict_body(SubscribeBody)},
        responses={403: FORBIDDEN, 422: _problem("`invalid_request`: a URL that is not https")},
    )
    async def subscribe(
        self,
        payload: NamedDependency[SubscribeBody],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> SubscribedView:
        actor, subscriptions = call.actor, call.subscriptions
        made = await subscriptions.create(actor, payload.url, payload.events, idempotency_key)
        s = made.subscription
        return SubscribedView(
            subscription_id=s.subscription_id, url=s.url, events=s.kinds, secret=made.secret
        )

    @get(
        "/{subscription_id:str}",
        summary="Read a subscription and its deliveries",
        responses={403: FORBIDDEN, 404: NOT_FOUND},
    )
    async def read(
        self,
        subscription_id: FromPath[str],
        call: NamedDependency[Call],
    ) -> SubscriptionView:
        actor, subscriptions = call.actor, call.subscriptions
        return _view(await subscriptions.read(actor, subscription_id))

    @delete(
        "/{subscription_id:str}",
        summary="Delete a subscription: nothing more is queued for it",
        responses={403: FORBIDDEN, 404: NOT_FOUND},
    )
    async def delete(
        self,
        subscription_id: FromPath[str],
        call: NamedDependency[Call],
    ) -> None:
        actor, subscriptions = call.actor, call.subscriptions
        await subscriptions.delete(actor, subscription_id)


def _view(state: SubscriptionState) -> SubscriptionView:
    s = state.subscription
    return SubscriptionView(
        subscription_id=s.subscription_id,
        url=s.url,
        events=s.kinds,
        deliveries=state.deliveries,
        failures=state.failures,
    )
