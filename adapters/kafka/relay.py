"""`ordo relay`: copies the event log to Kafka, in log order, at least once, never with a gap.

The relay reads the notification log after the last position the broker acknowledged, sends
the batch with an idempotent producer (`acks=all`), waits until every message is acknowledged,
and only then records the new position in PostgreSQL. A crash between the two re-sends the
batch on restart: consumers see a duplicate (which the folds absorb by version), never a gap.
Messages are keyed by prescription, so one prescription's events stay in one partition, in
order. One relay publishes at a time (an advisory lock); a second one waits to take over.
"""

from __future__ import annotations

import asyncio
import math
from contextlib import suppress
from typing import Any

import asyncpg
import structlog
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter, Gauge

from adapters.config import KafkaSettings
from adapters.eventfeed import PostgresEventFeed
from adapters.eventtable import EventTableSql
from adapters.kafka.messages import to_message
from adapters.locks import leadership, lock_key
from adapters.tracing import TRACER, active, end_all, header_of, parent_of
from domain.events import Event

log = structlog.get_logger("ordo.relay")
PUBLISHED = Counter("ordo_relay_published_total", "Events the broker acknowledged")
RELAY_POSITION = Gauge("ordo_relay_position", "Last log position the broker acknowledged")
UNACKNOWLEDGED = Gauge(
    "ordo_relay_unacknowledged", "Events sent to the broker and not yet acknowledged"
)
BROKER_CONNECTIONS = Gauge(
    "ordo_relay_broker_connections",
    "Connections the relay's producer holds to brokers: 0 with events unacknowledged is an outage",
)
PUBLISH_FAILURES = Counter(
    "ordo_relay_publish_failures_total", "Batches that failed and are sent again"
)
ACK_TIMEOUT_SECONDS = 120


def producer(settings: KafkaSettings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        compression_type=None,
        # Back within a second of the broker (the Java client's default), not kafka-python's 30 s.
        reconnect_backoff_max_ms=1000,
        client_id="ordo-relay",
    )


def ensure_topics(settings: KafkaSettings) -> None:
    """Create the event topic and its dead-letter topic if the cluster does not have them."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="ordo-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic, settings.dead_letter_topic]
        missing = [
            NewTopic(
                name, settings.partitions if name == settings.topic else 1, settings.replication
            )
            for name in wanted
            if name not in existing
        ]
        if missing:
            with suppress(TopicAlreadyExistsError):  # another relay or worker was first
                admin.create_topics(missing)
    finally:
        admin.close()


def positions_table(schema: str) -> str:
    return f'"{schema}".ordo_relay_positions'


async def create_positions_table(pool: asyncpg.Pool, schema: str) -> None:
    # One process at a time (a standby relay starting with the leader): concurrent `CREATE
    # TABLE IF NOT EXISTS` of one table make one of them fail.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(schema, "relay-ddl"))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {positions_table(schema)} (topic text PRIMARY KEY, "
            "position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
        )


async def acknowledged_position(pool: asyncpg.Pool, schema: str, topic: str) -> int:
    """The last log position the broker acknowledged for `topic`; 0 before any relay ran."""
    try:
        position: int | None = await pool.fetchval(
            f"SELECT position FROM {positions_table(schema)} WHERE topic = $1", topic
        )
    except asyncpg.UndefinedTableError:
        return 0
    return position or 0


class Relay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        send: KafkaProducer,
        topic: str,
        batch_size: int = 5000,
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.source = PostgresEventFeed(pool, schema)
        self.producer = send
        self.topic = topic
        self.batch_size = batch_size
        self._events = EventTableSql(schema)
        # Read when /metrics is scraped: the producer's own count, so an outage shows at once.
        BROKER_CONNECTIONS.set_function(self._broker_connections)

    async def position(self) -> int:
        return await acknowledged_position(self.pool, self.schema, self.topic)

    async def publish_next(self) -> int:
        """Send the next batch and record its end once all of it is acknowledged."""
        position = await self.position()
        batch = await self.source.read(position, self.batch_size)
        if not batch:
            return 0
        reached = batch[-1][0]
        traces = await self._traces(position, reached)
        spans = {
            at: self._publishing(traces[at], at)
            for at, event in batch
            if event is not None and at in traces
        }
        futures = [self._send(event, at, spans.get(at)) for at, event in batch if event is not None]
        UNACKNOWLEDGED.set(len(futures))
        try:
            await asyncio.to_thread(self._acknowledged, futures)
        except Exception as error:
            end_all(spans.values(), error)
            raise
        end_all(spans.values())
        UNACKNOWLEDGED.set(0)
        await self.pool.execute(
            f"INSERT INTO {positions_table(self.schema)} (topic, position) VALUES ($1, $2) "
            "ON CONFLICT (topic) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
            self.topic,
            reached,
        )
        if traces:
            await self.pool.execute(self._events.forget_traces, reached)
        PUBLISHED.inc(len(futures))
        RELAY_POSITION.set(reached)
        return len(batch)

    async def _traces(self, after: int, until: int) -> dict[int, Context]:
        """The trace contexts of the batch's traced events, by log position (none unless this
        process records spans)."""
        if not active():
            return {}
        rows = await self.pool.fetch(self._events.traces_between, after, until)
        return {row[0]: parent for row in rows if (parent := parent_of(row[1])) is not None}

    def _publishing(self, parent: Context, position: int) -> Span:
        """The span of one traced event's publication, a child of its append's."""
        return TRACER.start_span(
            f"publish {self.topic}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": self.topic,
                "ordo.position": position,
            },
        )

    def _send(self, event: Event, position: int, span: Span | None) -> Any:
        key, value, headers = to_message(event, position)
        if span is not None and (header := header_of(span)) is not None:
            headers.append(header)
        return self.producer.send(self.topic, key=key, value=value, headers=headers)

    def _broker_connections(self) -> float:
        metrics = self.producer.metrics().get("producer-metrics", {})
        return float(metrics.get("connection-count", math.nan))

    def _acknowledged(self, futures: list[Any]) -> None:
        self.producer.flush(timeout=ACK_TIMEOUT_SECONDS)
        for future in futures:
            future.get(timeout=ACK_TIMEOUT_SECONDS)  # raises what the broker answered

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish until `stopping`; a failure (broker away) retries from the recorded position."""
        if not await self._event_store_created(stopping):
            return
        await create_positions_table(self.pool, self.schema)
        while not stopping.is_set():
            try:
                async with leadership(self.pool, lock_key(self.schema, f"relay:{self.topic}")):
                    log.info("relay leading", topic=self.topic, position=await self.position())
                    await self._follow(stopping)
            except Exception:
                PUBLISH_FAILURES.inc()
                log.exception("relay failed; retrying from the last acknowledged position in 1 s")
                await asyncio.sleep(1)

    async def _event_store_created(self, stopping: asyncio.Event) -> bool:
        """Wait, saying so once, until a server has created the event log's table.

        The relay may well start first (a deployment starts everything at once); that is not an
        error worth a traceback a second. False if stopped meanwhile.
        """
        said = False
        while not stopping.is_set():
            if await self.source.exists():
                if said:
                    log.info("event store found; relaying", table=self.source.table)
                return True
            if not said:
                log.info(
                    "waiting for the event store: `ordo serve` creates its tables at start",
                    table=self.source.table,
                )
                said = True
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=1.0)
        return False

    async def _follow(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if not await self.publish_next():
                await self.source.wait_for_news(1.0)
