"""`ordo mailer`: follows the log, queues the e-mails its events record, delivers them.

Like the Kafka relay, it reads the notification log after the position it has recorded and
moves that position in the same transaction as it queues the batch's e-mails (so none is lost
or queued twice), and one mailer delivers at a time (an advisory lock on PostgreSQL, a file
lock on the embedded default). Each e-mail is marked delivered right after the relay's 250:
a crash in between (the one window no SMTP client can close) sends it again on restart, under
the same `Message-ID`, for the receiving side to recognise.

A relay that cannot be reached pauses delivery with back-off (1 s, 2 s, 4 s… up to 30 s); a 4xx
for one message retries that message with back-off; a 5xx fails it with the relay's reason
(`ordo mailer status`, `ordo_mailer_failed_total`) and the rest goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

import anyio.to_thread
import structlog
from prometheus_client import Counter, Gauge, Histogram

from adapters.locks import follow_while_leading
from adapters.mailer.compose import RENDERERS, Renderer, compose
from adapters.mailer.store import OutboxStore, Queued
from adapters.mailer.transport import (
    PermanentRefusal,
    RelayUnavailable,
    TemporaryRefusal,
    Transport,
)
from domain.events import Event, Mail
from projections.runner import EventFeed

log = structlog.get_logger("ordo.mailer")
DELIVERED = Counter("ordo_mailer_delivered_total", "E-mails the relay accepted")
FAILED = Counter("ordo_mailer_failed_total", "E-mails refused for good (5xx), with a reason")
RETRIED = Counter("ordo_mailer_retries_total", "Delivery attempts postponed (4xx, relay down)")
PENDING = Gauge("ordo_mailer_pending", "E-mails queued and not yet delivered or failed")
LAG = Histogram(
    "ordo_mailer_lag_seconds",
    "From the message's event to the relay's acceptance of its e-mail",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
MAX_RELAY_PAUSE = 30.0
MAX_ATTEMPTS = 20  # a message the relay keeps deferring (4xx) fails after this many


def backoff(attempts: int, ceiling: float) -> float:
    """1 s, 2 s, 4 s… up to `ceiling`: the wait before attempt number `attempts + 1`."""
    return float(min(2 ** max(attempts - 1, 0), ceiling))


def mails_in(event: Event) -> tuple[Mail, ...]:
    """The e-mails an event causes: those of any event with a `mails` field (`MessagePosted`,
    and the ordonnance's sendings: `PrescriptionSentToPatient`, a prescriber's
    `PrescriptionTransmitted`). The extension point of the outbox."""
    mails = getattr(event, "mails", ())
    return tuple(mail for mail in mails if isinstance(mail, Mail))


class Mailer:
    def __init__(
        self,
        source: EventFeed,
        store: OutboxStore,
        transports: Sequence[Transport],
        *,
        renderers: Mapping[str, Renderer] = RENDERERS,
        batch_size: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.store = store
        # One connection to the relay each: while one waits for the relay's answer, another
        # composes; the e-mails of one batch are shared out among them.
        self.transports = transports
        self.renderers = renderers
        self.batch_size = batch_size
        self.clock = clock
        self._outages = 0
        self._paused_until = 0.0

    async def queue_next(self) -> int:
        """Queue the e-mails of the next batch of the log; returns how many events it covered."""
        position = await self.store.position()
        batch = await self.source.read(position, self.batch_size)
        if not batch:
            return 0
        queued = [
            Queued(mail=mail, written_at=event.at, position=at)
            for at, event in batch
            if event is not None
            for mail in mails_in(event)
        ]
        await self.store.enqueue(queued, batch[-1][0], expected=position)
        return len(batch)

    async def deliver_due(self) -> int:
        """Deliver what is due; returns how many were tried (0 while the relay is paused)."""
        now = self.clock()
        if now < self._paused_until:
            return 0
        due = await self.store.due(now, self.batch_size)
        shared = iter(due)  # each e-mail is taken by one connection

        async def deliver_with(transport: Transport) -> None:
            for queued in shared:
                if self._paused() or not await self._deliver(queued, transport):
                    return  # the relay is down: everything waits

        await asyncio.gather(*(deliver_with(t) for t in self.transports))
        return len(due)

    def _paused(self) -> bool:
        return self.clock() < self._paused_until

    async def _deliver(self, queued: Queued, transport: Transport) -> bool:
        mail = queued.mail
        attempts = queued.attempts + 1
        try:
            await anyio.to_thread.run_sync(self._send, queued, transport)
        except RelayUnavailable as error:
            self._outages += 1
            pause = backoff(self._outages, MAX_RELAY_PAUSE)
            self._paused_until = self.clock() + pause
            RETRIED.inc()
            log.warning("relay unavailable", reason=str(error), retry_in=pause)
            return False
        except TemporaryRefusal as error:
            RETRIED.inc()
            if attempts >= MAX_ATTEMPTS:
                await self._fail(queued, attempts, f"deferred {attempts} times: {error}")
            else:
                wait = backoff(attempts, 3600)
                await self.store.postpone(
                    mail.message_id, attempts, self.clock() + wait, str(error)
                )
            return True
        except PermanentRefusal as error:
            await self._fail(queued, attempts, str(error))
            return True
        now = self.clock()
        await self.store.delivered(mail.message_id, now)  # right after the 250: see the module
        self._outages = 0
        DELIVERED.inc()
        LAG.observe(max(now - queued.written_at.timestamp(), 0.0))
        return True

    def _send(self, queued: Queued, transport: Transport) -> None:
        try:
            message = compose(queued.mail, queued.written_at, self.renderers)
        except Exception as error:
            # An attachment that cannot be drawn now (its log unreachable, a renderer's bug)
            # holds back this e-mail alone, retried with back-off like a 4xx, never the others.
            reason = f"could not be written: {type(error).__name__}: {error}"
            raise TemporaryRefusal(reason) from error
        transport.send(message, queued.mail.sender, queued.mail.recipient)

    async def _fail(self, queued: Queued, attempts: int, reason: str) -> None:
        await self.store.failed(queued.mail.message_id, attempts, reason)
        FAILED.inc()
        log.warning(
            "e-mail refused for good",
            message_id=queued.mail.message_id,
            kind=queued.mail.kind,
            reason=reason,
        )

    async def step(self) -> int:
        queued = await self.queue_next()
        delivered = await self.deliver_due()
        return queued + delivered

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping`, while this process leads; a failure starts again."""
        await follow_while_leading("mailer", self.store, self._follow, stopping)

    async def _follow(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if await self.step():
                continue
            counts = await self.store.counts()
            PENDING.set(counts["pending"])
            await self.source.wait_for_news(await self._idle_wait())

    async def _idle_wait(self) -> float:
        """Until new events, the next retry, or the end of a relay pause (at most 1 s)."""
        now = self.clock()
        wake = [now + 1.0, self._paused_until] if self._paused_until > now else [now + 1.0]
        due = await self.store.next_due()
        if due is not None:
            wake.append(max(due, self._paused_until))
        return max(min(wake) - now, 0.01)
