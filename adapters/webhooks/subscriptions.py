"""Subscribing: a URL checked, a secret drawn, shown once and stored sealed."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from adapters.webhooks.routing import Kind, Owner
from adapters.webhooks.signing import SecretBox, new_secret
from adapters.webhooks.store import SqliteWebhooks, Subscription


class UrlRefused(ValueError):  # noqa: N818 - named after the fact it reports
    """A receiver's URL that is not `https` (unless ORDO_WEBHOOKS_ALLOW_HTTP), or has no host."""


def check_url(url: str, *, allow_http: bool) -> str:
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise UrlRefused(f"a webhook URL must be {' or '.join(schemes)} with a host: {url!r}")
    return url


async def subscribe(
    store: SqliteWebhooks,
    box: SecretBox,
    owner: tuple[Owner, str],
    url: str,
    kinds: Sequence[Kind],
    *,
    allow_http: bool = False,
) -> tuple[Subscription, str]:
    """The new subscription and its secret, the one time it is shown."""
    subscription = Subscription(
        subscription_id="sub_" + secrets.token_hex(12),
        owner=owner[0],
        owner_id=owner[1],
        url=check_url(url, allow_http=allow_http),
        kinds=tuple(dict.fromkeys(kinds)),
    )
    secret = new_secret()
    await store.subscribe(subscription, box.seal(secret))
    return subscription, secret
