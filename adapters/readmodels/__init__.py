"""The read side: where the views live (PostgreSQL or SQLite) and the runner that feeds them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from datetime import UTC, datetime

import asyncpg
import structlog
from prometheus_client import Gauge

from adapters.config import Settings
from adapters.eventstore import EventLog
from adapters.readmodels.postgres import (
    PostgresLog,
    PostgresViews,
    asyncpg_target,
    connection_settings,
)
from adapters.readmodels.sqlite import SqliteLog, SqliteViews
from projections.folds import VIEW_NAMES, ViewName
from projections.runner import Lag, LogSource, ProjectionRunner, lag_of, rebuild

log = structlog.get_logger("ordo.projections")
POSITION = Gauge("ordo_projection_position", "Log position the views have applied", ["view"])
LAG_EVENTS = Gauge(
    "ordo_projection_lag_events", "Events appended but not yet in the views", ["view"]
)
LAG_SECONDS = Gauge(
    "ordo_projection_lag_seconds", "Age of the oldest event not yet in the views", ["view"]
)


class ReadModels:
    def __init__(
        self,
        views: PostgresViews | SqliteViews,
        source: PostgresLog | SqliteLog,
        scratch: Callable[[], PostgresViews | SqliteViews],
        close: Callable[[], object],
    ) -> None:
        self.views = views
        self.source = source
        self._scratch = scratch
        self._close = close

    async def follow(self, stopping: asyncio.Event) -> None:
        """Be the runner while this process leads; a standby waits for the leader to die.

        A failure (the database restarting, say) is logged and the runner starts again from
        the position its views committed, so it neither skips nor repeats an event.
        """
        while not stopping.is_set():
            try:
                async with self.views.leadership():
                    log.info("projection runner leading")
                    await ProjectionRunner(self.source, self.views).run(stopping, idle_wait=0.5)
            except Exception:
                log.exception("projection runner failed; restarting in 1 s")
                await asyncio.sleep(1)

    async def watch_lag(self, stopping: asyncio.Event, every: float = 1.0) -> None:
        while not stopping.is_set():
            self.record(await self.lag())
            await asyncio.sleep(every)

    async def lag(self) -> Lag:
        return await lag_of(self.source, self.views, datetime.now(UTC))

    def record(self, lag: Lag) -> None:
        for view in VIEW_NAMES:
            POSITION.labels(view).set(lag.position)
            LAG_EVENTS.labels(view).set(lag.events)
            LAG_SECONDS.labels(view).set(lag.seconds)

    async def rebuild(self, views: Collection[ViewName], on_batch: Callable[[int], None]) -> int:
        return await rebuild(self.views, self._scratch(), self.source, views, on_batch)

    async def close(self) -> None:
        result = self._close()
        if asyncio.iscoroutine(result):
            await result


async def open_read_models(settings: Settings, event_log: EventLog) -> ReadModels:
    """PostgreSQL when the event log is there too (asyncpg), else SQLite beside it."""
    if settings.database_url is None:
        views = SqliteViews(settings.data_dir / "views.sqlite3")
        await views.create()
        return ReadModels(views, SqliteLog(event_log), views.scratch, views.db.close)
    dsn, schema = asyncpg_target(settings.database_url)
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=settings.db_pool_size, server_settings=connection_settings()
    )
    source = PostgresLog(pool, schema)
    pg_views = PostgresViews(pool, schema)
    await pg_views.create()

    async def close() -> None:
        await source.close()
        await pool.close()

    return ReadModels(pg_views, source, lambda: PostgresViews(pool, schema, "_next"), close)


__all__ = ["LogSource", "ReadModels", "open_read_models"]
