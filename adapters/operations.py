"""Operating the read side from the command line: run the projector, see the lag, rebuild."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
import prometheus_client
import structlog
from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapters.bootstrap import (
    catalogue_store_for,
    failpoint,
    mailer_for,
    read_models_for,
    webhooks_for,
)
from adapters.catalogue.index import LiveCatalogue
from adapters.config import KafkaSettings, Settings
from adapters.eventfeed import PostgresEventFeed
from adapters.kafka.lag import group_lag
from adapters.kafka.relay import Relay, acknowledged_position, ensure_topics, producer
from adapters.kafka.worker import Worker, consumer
from adapters.logging import configure_logging
from adapters.postgres import open_pool
from adapters.readmodels.postgres import PostgresReadModels
from adapters.tracing import start_tracing, stop_tracing
from projections.folds import READ_MODEL_NAMES, ReadModelName

STOP_GRACE_SECONDS = 5


async def project(settings: Settings, metrics_port: int | None) -> None:
    """`ordo project`: follow the log into the views until SIGTERM or SIGINT."""

    async def work(stopping: asyncio.Event) -> None:
        async with read_models_for(settings) as read_models:
            await asyncio.gather(read_models.follow(stopping), read_models.watch_lag(stopping))

    await _until_signalled(settings, metrics_port, work)


async def mailer(settings: Settings, metrics_port: int | None) -> None:
    """`ordo mailer`: deliver the outbox's e-mails until SIGTERM or SIGINT."""

    async def work(stopping: asyncio.Event) -> None:
        catalogue = LiveCatalogue()  # its PDFs count units as the servers' do
        async with (
            catalogue_store_for(settings) as store,
            catalogue.kept_current(store, settings.catalogue_refresh_seconds),
            mailer_for(settings, catalogue=catalogue.in_force) as running,
        ):
            await running.run(stopping)

    await _until_signalled(settings, metrics_port, work)


async def webhooks(settings: Settings, metrics_port: int | None) -> None:
    """`ordo webhooks`: deliver the subscriptions' webhooks until SIGTERM or SIGINT."""

    async def work(stopping: asyncio.Event) -> None:
        async with webhooks_for(settings) as running:
            await running.run(stopping)

    await _until_signalled(settings, metrics_port, work)


@asynccontextmanager
async def postgres_pool(settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    if settings.database_url is None:
        msg = "the relay and the workers run on PostgreSQL: set ORDO_DATABASE_URL"
        raise SystemExit(msg)
    pool, schema = await open_pool(settings.database_url, 4)
    try:
        yield pool, schema
    finally:
        await pool.close()


def _kafka(settings: Settings) -> KafkaSettings:
    if settings.kafka is None:
        msg = "set ORDO_KAFKA_BOOTSTRAP=host:port"
        raise SystemExit(msg)
    return settings.kafka


async def relay(settings: Settings, metrics_port: int | None) -> None:
    """`ordo relay`: publish the log to Kafka until SIGTERM or SIGINT."""
    kafka = _kafka(settings)

    async def work(stopping: asyncio.Event) -> None:
        await _when_broker_answers(kafka)
        start_tracing("ordo-relay")
        async with postgres_pool(settings) as (pool, schema):
            send = producer(kafka)
            try:
                await Relay(pool, schema, send, kafka.topic, kafka.relay_batch_size).run(stopping)
            finally:
                send.close()
                stop_tracing()

    await _until_signalled(settings, metrics_port, work)


async def worker(settings: Settings, metrics_port: int | None) -> None:
    """`ordo worker`: apply the topic to the views until SIGTERM or SIGINT."""
    kafka = _kafka(settings)

    async def work(stopping: asyncio.Event) -> None:
        await _when_broker_answers(kafka)
        start_tracing("ordo-worker")
        async with postgres_pool(settings) as (pool, schema):
            views = PostgresReadModels(pool, schema)
            await views.create()
            dead_letters = producer(kafka)
            source = await asyncio.to_thread(consumer, kafka)
            try:
                crash = failpoint(settings, "crash_after_view_commit")
                await Worker(views, source, dead_letters, kafka, crash).run(stopping)
            finally:
                dead_letters.close()
                stop_tracing()

    await _until_signalled(settings, metrics_port, work)


async def _when_broker_answers(kafka: KafkaSettings, retry_seconds: float = 2.0) -> None:
    """Wait for the broker (and make sure the topics exist): a broker that is down at start-up
    delays the relay and the workers, it does not stop them."""
    while True:
        try:
            await asyncio.to_thread(ensure_topics, kafka)
        except KafkaError as error:
            structlog.get_logger("ordo.kafka").warning(
                "broker unavailable, retrying", error=str(error)
            )
            await asyncio.sleep(retry_seconds)
        else:
            return


async def _until_signalled(
    settings: Settings,
    metrics_port: int | None,
    work: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
) -> None:
    """Run `work` with logging and /metrics until SIGTERM or SIGINT.

    The signal sets `stopping` so that a leader finishes its batch; a process that is waiting
    (a standby for the lock, or for the broker) is cancelled after a short grace period.
    """
    configure_logging(settings.log_hash_key)
    if metrics_port:
        prometheus_client.start_http_server(metrics_port, addr=settings.metrics_host)
    stopping = asyncio.Event()
    task = asyncio.create_task(work(stopping))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        stopping.set()
        loop.call_later(STOP_GRACE_SECONDS, task.cancel)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    with suppress(asyncio.CancelledError):
        await task


async def status(settings: Settings, console: Console) -> None:
    """Per view, how far behind the log it is; with Kafka, the relay's and each partition's lag."""
    if settings.kafka is not None:
        await _kafka_status(settings, settings.kafka, console)
        return
    async with read_models_for(settings) as read_models:
        lag = await read_models.lag()
    table = Table(title="ordo projections")
    for column in ("view", "position", "log head", "lag (events)", "lag (seconds)"):
        table.add_column(column, justify="left" if column == "view" else "right")
    for view in READ_MODEL_NAMES:
        table.add_row(view, str(lag.position), str(lag.head), str(lag.events), f"{lag.seconds:.1f}")
    console.print(table)


async def _kafka_status(settings: Settings, kafka: KafkaSettings, console: Console) -> None:
    """The views are fed by the consumer group, so their lag is the relay's plus the group's."""
    async with postgres_pool(settings) as (pool, schema):
        head = await PostgresEventFeed(pool, schema).head()
        relayed = await acknowledged_position(pool, schema, kafka.topic)
    relay = Table(title=f"ordo relay → {kafka.topic}")
    for column in ("log head", "acknowledged position", "lag (events)"):
        relay.add_column(column, justify="right")
    relay.add_row(str(head), str(relayed), str(max(head - relayed, 0)))
    console.print(relay)
    try:
        partitions = await asyncio.to_thread(group_lag, kafka)
    except KafkaError as error:
        msg = f"the Kafka broker at {kafka.bootstrap} did not answer: {error}"
        raise SystemExit(msg) from error
    group = Table(
        title=f"ordo workers: consumer group {kafka.group} (views: {', '.join(READ_MODEL_NAMES)})"
    )
    for column in ("partition", "committed offset", "end offset", "lag (messages)"):
        group.add_column(column, justify="right")
    for p in partitions:
        committed = "-" if p.committed is None else str(p.committed)
        group.add_row(str(p.partition), committed, str(p.end), str(p.lag))
    group.add_row(
        "all", "", str(sum(p.end for p in partitions)), str(sum(p.lag for p in partitions))
    )
    console.print(group)


async def rebuild(settings: Settings, views: Collection[ReadModelName], console: Console) -> None:
    """Fold the whole log again beside the live views, then switch; the API keeps serving."""
    async with read_models_for(settings) as read_models:
        head = await read_models.source.head()
        started = time.perf_counter()
        with Progress(
            TextColumn("rebuilding {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} events/s"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(", ".join(views), total=head, rate="-")

            def advanced(position: int) -> None:
                rate = position / max(time.perf_counter() - started, 1e-6)
                progress.update(
                    task, completed=position, total=max(head, position), rate=f"{rate:,.0f}"
                )

            reached = await read_models.rebuild(views, advanced)
        elapsed = time.perf_counter() - started
    console.print(
        f"rebuilt {', '.join(views)} up to position {reached} in {elapsed:.1f} s "
        f"({reached / max(elapsed, 1e-6):,.0f} events/s); the live views now read from it"
    )
