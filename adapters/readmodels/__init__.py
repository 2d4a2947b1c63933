"""The read side: where the read models live (PostgreSQL or SQLite), and the runner feeding them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime

import structlog
from prometheus_client import Gauge

from adapters.config import Settings
from adapters.eventfeed import PostgresEventFeed
from adapters.librarylog import LibraryLog
from adapters.postgres import open_pool
from adapters.readmodels.postgres import PostgresReadModels
from adapters.readmodels.sqlite import SqliteEventFeed, SqliteReadModels
from projections.folds import READ_MODEL_NAMES, ReadModelName
from projections.runner import EventFeed, Lag, ProjectionRunner, lag_of, rebuild

log = structlog.get_logger("ordo.projections")
POSITION = Gauge("ordo_projection_position", "Log position the views have applied", ["view"])
LAG_EVENTS = Gauge(
    "ordo_projection_lag_events", "Events appended but not yet in the views", ["view"]
)
LAG_SECONDS = Gauge(
    "ordo_projection_lag_seconds", "Age of the oldest event not yet in the views", ["view"]
)


CAUGHT_UP_POLL_SECONDS = 0.05


class ReadModels:
    """The read models' tables (`store`: the lists, inboxes and states the API reads) and the
    log they follow (`source`)."""

    def __init__(
        self,
        store: PostgresReadModels | SqliteReadModels,
        source: PostgresEventFeed | SqliteEventFeed,
        close: Callable[[], object],
    ) -> None:
        self.store = store
        self.source = source
        self._close = close

    async def catch_up(
        self, batch_size: int = 2000, on_batch: Callable[[int], None] = lambda position: None
    ) -> int:
        """Apply what the log holds beyond the read models, here (the caller leads); returns
        how many notifications that covered."""
        runner = ProjectionRunner(self.source, self.store, batch_size=batch_size, on_batch=on_batch)
        return await runner.catch_up()

    async def caught_up(self, head: int, patience: float) -> int:
        """Wait until the read models have applied the log up to `head` (another process, or
        this one's runner, applies it), at most `patience` seconds; returns where they stand.

        Polled: the read models' position has no event to await across processes."""
        deadline = time.monotonic() + patience
        while (position := await self.store.position()) < head and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(CAUGHT_UP_POLL_SECONDS)
        return position

    async def follow(self, stopping: asyncio.Event) -> None:
        """Be the runner while this process leads; a standby waits for the leader to die.

        A failure (the database restarting, say) is logged and the runner starts again from
        the position its views committed, so it neither skips nor repeats an event.
        """
        while not stopping.is_set():
            try:
                async with self.store.leadership():
                    log.info("projection runner leading")
                    await ProjectionRunner(self.source, self.store).run(stopping, idle_wait=0.5)
            except Exception:
                log.exception("projection runner failed; restarting in 1 s")
                await asyncio.sleep(1)

    async def watch_lag(self, stopping: asyncio.Event, every: float = 1.0) -> None:
        while not stopping.is_set():
            try:
                self.record(await self.lag())
            except Exception as error:  # the database restarting: measured again next time
                log.warning("projection_lag_unknown", error=type(error).__name__)
            await asyncio.sleep(every)

    async def lag(self) -> Lag:
        return await lag_of(self.source, self.store, datetime.now(UTC))

    def record(self, lag: Lag) -> None:
        for view in READ_MODEL_NAMES:
            POSITION.labels(view).set(lag.position)
            LAG_EVENTS.labels(view).set(lag.events)
            LAG_SECONDS.labels(view).set(lag.seconds)

    async def rebuild(
        self, views: Collection[ReadModelName], on_batch: Callable[[int], None]
    ) -> int:
        return await rebuild(self.store, self.store.scratch(), self.source, views, on_batch)

    async def close(self) -> None:
        result = self._close()
        if asyncio.iscoroutine(result):
            await result


async def open_read_models(settings: Settings, event_log: LibraryLog) -> ReadModels:
    """PostgreSQL when the event log is there too (asyncpg), else SQLite beside it."""
    if settings.database_url is None:
        tables = SqliteReadModels(settings.data_dir / "views.sqlite3")
        await tables.create()
        return ReadModels(tables, SqliteEventFeed(event_log), tables.db.close)
    pool, schema = await open_pool(settings.database_url, settings.db_pool_size)
    source = PostgresEventFeed(pool, schema)
    pg_tables = PostgresReadModels(pool, schema)
    await pg_tables.create()

    async def close() -> None:
        await source.close()
        await pool.close()

    return ReadModels(pg_tables, source, close)


__all__ = ["EventFeed", "ReadModels", "open_read_models"]
