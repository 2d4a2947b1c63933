"""The PostgreSQL event table read as a feed: the notifications after a position, the head,
and a wake-up on its NOTIFY channel. The projection runner, the Kafka relay and the mailer
follow the log through it; the statements are the event table's own (`adapters.eventtable`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from adapters.eventtable import CHANNEL, EventTableSql
from adapters.storedevents import EventMapper
from domain.events import Event
from projections.runner import EventFeed, Notification

if TYPE_CHECKING:
    from adapters.postgres import Conn


class PostgresEventFeed(EventFeed):
    """The event store's notification log, read with asyncpg and woken by LISTEN/NOTIFY."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._sql = EventTableSql(schema)
        self._mapper = EventMapper()
        self._news = asyncio.Event()
        self._listener: Conn | None = None

    @property
    def table(self) -> str:
        return self._sql.events

    async def exists(self) -> bool:
        """Whether a server has created the event table yet."""
        return await self._pool.fetchval(self._sql.exists) is not None

    async def read(self, after: int, limit: int) -> Sequence[Notification]:
        rows = await self._pool.fetch(self._sql.notifications, after, limit)
        return [(row[0], self._decode(row[1], row[2])) for row in rows]

    async def head(self) -> int:
        head: int | None = await self._pool.fetchval(self._sql.head)
        return head or 0

    async def wait_for_news(self, seconds: float) -> None:
        if self._listener is not None and self._listener.is_closed():
            # Its server went away (a restart, a failover): listen again on a live one.
            await self.close()
        if self._listener is None:
            # Kept before LISTEN is sent: a runner cancelled in between (at shutdown) must
            # still give the connection back in close(), or closing the pool waits forever.
            self._listener = await self._pool.acquire()
            await self._listener.add_listener(CHANNEL, self._notified)
        try:
            await asyncio.wait_for(self._news.wait(), seconds)
        except TimeoutError:
            return
        finally:
            self._news.clear()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await listener.remove_listener(CHANNEL, self._notified)
            finally:
                await self._pool.release(listener)  # the pool's reset UNLISTENs in any case

    def _notified(self, *_: object) -> None:
        self._news.set()

    def _decode(self, topic: str, state: bytes) -> Event | None:
        if not self._mapper.is_prescription_event(topic):
            return None
        return self._mapper.decode(topic, state)
