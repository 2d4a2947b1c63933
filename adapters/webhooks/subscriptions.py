"""Subscribing (contract.md "Push to the pharmacy's and the prescriber's software"): a pharmacist
subscribes their pharmacy, a prescriber themself; a URL checked, a secret drawn, shown once (and
again to a retry under the same `Idempotency-Key`), stored sealed."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec

from adapters.permissions import allow
from adapters.webhooks.routing import Kind, Owner
from adapters.webhooks.signing import SecretBox, new_secret
from adapters.webhooks.store import Failure, Stored, Subscription, WebhookStore
from domain.actors import Actor
from domain.errors import DomainError


class UrlRefused(ValueError):  # noqa: N818 - named after the fact it reports
    """A receiver's URL that is not `https` (unless ORDO_WEBHOOKS_ALLOW_HTTP), or has no host."""


def check_url(url: str, *, allow_http: bool) -> str:
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise UrlRefused(f"a webhook URL must be {' or '.join(schemes)} with a host: {url!r}")
    return url


class Subscribed(msgspec.Struct, frozen=True, kw_only=True):
    subscription: Subscription
    secret: str


class SubscriptionState(msgspec.Struct, frozen=True, kw_only=True):
    subscription: Subscription
    deliveries: dict[str, int]
    failures: list[Failure]


async def subscribe(
    store: WebhookStore,
    box: SecretBox,
    owner: tuple[Owner, str],
    url: str,
    kinds: Sequence[Kind],
    *,
    allow_http: bool = False,
    idempotency_key: str | None = None,
) -> tuple[Subscription, str]:
    """The new subscription and its secret; a retry under `idempotency_key` gets the first."""
    asked = Subscription(
        subscription_id="sub_" + secrets.token_hex(12),
        owner=owner[0],
        owner_id=owner[1],
        url=check_url(url, allow_http=allow_http),
        kinds=tuple(dict.fromkeys(kinds)),
    )
    kept = await store.subscribe(asked, box.seal(new_secret()), idempotency_key)
    first = kept.subscription
    if (first.url, first.kinds) != (asked.url, asked.kinds):
        raise DomainError("idempotency_key_reused", "this Idempotency-Key came with another body")
    return first, box.open(kept.sealed_secret)


def owner_of(actor: Actor) -> tuple[Owner, str]:
    """A pharmacist's subscriptions are their pharmacy's; a prescriber's, their own."""
    allow(actor, "subscribe")
    if actor.role == "pharmacist" and actor.finess:
        return "pharmacy", actor.finess
    if actor.role == "prescriber" and actor.rpps:
        return "prescriber", actor.rpps
    raise DomainError("forbidden", "the token names no pharmacy (FINESS) nor prescriber (RPPS)")


class Subscriptions:
    """The use cases of `/v1/subscriptions`."""

    def __init__(self, store: WebhookStore, box: SecretBox, *, allow_http: bool) -> None:
        self.store = store
        self.box = box
        self.allow_http = allow_http

    async def create(
        self, actor: Actor, url: str, kinds: Sequence[Kind], idempotency_key: str | None = None
    ) -> Subscribed:
        owner = owner_of(actor)
        try:
            subscription, secret = await subscribe(
                self.store,
                self.box,
                owner,
                url,
                kinds,
                allow_http=self.allow_http,
                idempotency_key=idempotency_key,
            )
        except UrlRefused as refused:
            raise DomainError("invalid_request", str(refused), field="url") from refused
        return Subscribed(subscription=subscription, secret=secret)

    async def read(self, actor: Actor, subscription_id: str) -> SubscriptionState:
        found = await self._owned(actor, subscription_id)
        deliveries, failures = await self.store.deliveries(subscription_id, 20)
        return SubscriptionState(
            subscription=found.subscription, deliveries=deliveries, failures=failures
        )

    async def delete(self, actor: Actor, subscription_id: str) -> None:
        await self._owned(actor, subscription_id)
        await self.store.unsubscribe(subscription_id)

    async def _owned(self, actor: Actor, subscription_id: str) -> Stored:
        """The caller's active subscription; anyone else's is unknown to them (404)."""
        owner = owner_of(actor)
        found = await self.store.subscription(subscription_id)
        if found is None or not found.active or owner != _owner(found.subscription):
            raise DomainError("not_found", "no such subscription")
        return found


def _owner(subscription: Subscription) -> tuple[Owner, str]:
    return subscription.owner, subscription.owner_id
