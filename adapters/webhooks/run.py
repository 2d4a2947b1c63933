"""`ordo webhooks`: follows the log, queues the pushes its events cause, delivers them.

Like the mailer, it reads the notification log after the position it has recorded and moves that
position in the same transaction as it queues the batch's deliveries (so none is lost or queued
twice), and one deliverer runs at a time (a file lock beside its store). A delivery is marked
delivered right after the receiver's 2xx: a crash in between sends it again on restart, under
the same `webhook-id`, for the receiver to recognise.

A subscription's deliveries go in log order, each after the one before, on a connection of its
own kept alive (`Senders`); the subscriptions go side by side. One that is not answered with a
2xx is attempted again with back-off (1 s, 2 s, 4 s… up to an hour), holding back those after
it, then fails with the last reason (`ordo_webhooks_failed_total`) and the next goes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import structlog
from prometheus_client import Counter, Gauge, Histogram

from adapters.locks import follow_while_leading
from adapters.mailer.run import backoff
from adapters.webhooks.routing import Watch, body_of, follow
from adapters.webhooks.signing import SecretBox, signed_headers
from adapters.webhooks.store import Due, Queued, WebhookStore
from projections.runner import EventFeed

log = structlog.get_logger("ordo.webhooks")
DELIVERED = Counter("ordo_webhooks_delivered_total", "Deliveries a receiver answered with a 2xx")
FAILED = Counter("ordo_webhooks_failed_total", "Deliveries given up after an hour of back-off")
RETRIED = Counter("ordo_webhooks_retries_total", "Delivery attempts postponed")
PENDING = Gauge("ordo_webhooks_pending", "Deliveries queued and not yet delivered or failed")
LAG = Histogram(
    "ordo_webhooks_lag_seconds",
    "From the event to the receiver's 2xx",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
MAX_WAIT = 3600.0
MAX_ATTEMPTS = 13  # 1 s, 2 s… 2048 s, then an hour: the last attempt ends the back-off
IDLE_CLIENT_SECONDS = 300.0  # a subscription's connection kept this long after its last delivery


@dataclass
class _Sender:
    """One subscription's HTTP client, and when a delivery last used it."""

    client: httpx.AsyncClient
    used: float = 0.0


class Senders:
    """One HTTP client per subscription, opened at its first delivery: a subscription's
    deliveries, one after the other, reuse one connection, and a request never looks through
    the other subscriptions' connections (one shared pool costs about half as much CPU again
    per delivery: BENCHMARKS.md, `webhooks`). They share one TLS context: each of its own
    would load the certificate authorities again, per subscription."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._tls = httpx.create_ssl_context()
        self._open: dict[str, _Sender] = {}

    def of(self, subscription_id: str) -> httpx.AsyncClient:
        sender = self._open.get(subscription_id)
        if sender is None:
            one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            client = httpx.AsyncClient(timeout=self.timeout, limits=one, verify=self._tls)
            sender = self._open[subscription_id] = _Sender(client)
        sender.used = self._clock()
        return sender.client

    async def close_idle(self) -> int:
        """Close the clients no delivery used for `IDLE_CLIENT_SECONDS`: a deleted
        subscription's, or one waiting out a long back-off (its next delivery opens another).
        Returns how many were closed."""
        since = self._clock() - IDLE_CLIENT_SECONDS
        idle = [key for key, sender in self._open.items() if sender.used < since]
        for key in idle:
            await self._open.pop(key).client.aclose()
        return len(idle)

    async def aclose(self) -> None:
        senders, self._open = list(self._open.values()), {}
        for sender in senders:
            await sender.client.aclose()


class Deliverer:
    def __init__(
        self,
        source: EventFeed,
        store: WebhookStore,
        box: SecretBox,
        senders: Senders,
        *,
        batch_size: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.store = store
        self.box = box
        self.senders = senders
        self.batch_size = batch_size
        self.clock = clock

    async def queue_next(self) -> int:
        """Queue the pushes of the next batch of the log; returns how many events it covered."""
        position = await self.store.position()
        batch = await self.source.read(position, self.batch_size)
        if not batch:
            return 0
        events = [(at, event) for at, event in batch if event is not None]
        before = await self.store.watches({event.prescription_id for _, event in events})
        watches = dict(before)
        queued = []
        for at, event in events:
            key = event.prescription_id
            watches[key], pushed = follow(watches.get(key, Watch()), event)
            written_at = event.at.timestamp()
            queued += [
                Queued(push=p, position=at, written_at=written_at, body=body_of(p, event))
                for p in pushed
            ]
        changed = {key: w for key, w in watches.items() if before.get(key) != w}
        await self.store.enqueue(queued, changed, batch[-1][0], expected=position)
        return len(batch)

    async def deliver_due(self) -> int:
        """Each subscription's due deliveries in order, the subscriptions side by side."""
        due = await self.store.due(self.clock(), self.batch_size)
        by_subscription = itertools.groupby(
            sorted(due, key=lambda d: d.subscription_id), key=lambda d: d.subscription_id
        )
        await asyncio.gather(*(self._deliver_in_order(list(run)) for _, run in by_subscription))
        return len(due)

    async def _deliver_in_order(self, run: list[Due]) -> None:
        for due in run:  # sorted by log position within a subscription
            if not await self._deliver(due):
                return  # the next ones wait for this one

    async def _deliver(self, due: Due) -> bool:
        """One attempt; True when the subscription may go on to its next delivery."""
        attempts = due.attempts + 1
        reason = await self._post(due)
        now = self.clock()
        if reason is None:
            await self.store.delivered(due.webhook_id, now)  # right after the 2xx: see the module
            DELIVERED.inc()
            LAG.observe(max(now - due.written_at, 0.0))
            return True
        if attempts >= MAX_ATTEMPTS:
            await self.store.failed(due.webhook_id, attempts, reason)
            FAILED.inc()
            log.warning("webhook given up", webhook_id=due.webhook_id, reason=reason)
            return True
        RETRIED.inc()
        wait = backoff(attempts, MAX_WAIT)
        await self.store.postpone(due.webhook_id, attempts, now + wait, reason)
        return False

    async def _post(self, due: Due) -> str | None:
        """The reason the receiver did not take it, or None for a 2xx."""
        at = datetime.now(UTC)  # the receiver checks it against its own clock
        headers = signed_headers(self.box.open(due.sealed_secret), due.webhook_id, at, due.body)
        try:
            client = self.senders.of(due.subscription_id)
            response = await client.post(due.url, content=due.body, headers=headers)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"

    async def step(self) -> int:
        queued = await self.queue_next()
        delivered = await self.deliver_due()
        return queued + delivered

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping`, while this process leads; a failure starts again."""
        await follow_while_leading("webhooks", self.store, self._follow, stopping)

    async def _follow(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if await self.step():
                continue
            PENDING.set((await self.store.counts())["pending"])
            await self.senders.close_idle()
            await self.source.wait_for_news(await self._idle_wait())

    async def _idle_wait(self) -> float:
        """Until new events or the next retry, at most 1 s."""
        now = self.clock()
        due = await self.store.next_due()
        wake = now + 1.0 if due is None else min(now + 1.0, due)
        return max(wake - now, 0.01)
