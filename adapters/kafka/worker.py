"""`ordo worker`: a consumer group that applies the projection folds to PostgreSQL.

Each polled batch is folded into the states it touches and written in one transaction; the
state row carries the prescription's version, so a redelivered event (after a crash or a
rebalance) is recognised and changes nothing. Offsets are committed to Kafka only after the
database commit. A message that cannot be decoded or applied goes to the dead-letter topic
with the reason, is counted, and the worker goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from opentelemetry.trace import Span, SpanKind
from prometheus_client import Counter, Gauge

from adapters.config import KafkaSettings
from adapters.kafka.messages import UndecodableMessage, from_message
from adapters.readmodels.postgres import PostgresReadModels
from adapters.tracing import TRACER, active, end_all, parent_of, traceparent_in
from domain.events import Event
from projections.folds import fold_batch

log = structlog.get_logger("ordo.worker")
APPLIED = Counter("ordo_worker_events_applied_total", "Events applied to the views")
DEAD_LETTERS = Counter("ordo_worker_dead_letters_total", "Messages sent to the dead-letter topic")
PARTITION_LAG = Gauge("ordo_worker_lag", "Messages not yet applied, per partition", ["partition"])
MAX_POLL_RECORDS = 2000


def consumer(settings: KafkaSettings) -> KafkaConsumer:
    return KafkaConsumer(
        settings.topic,
        bootstrap_servers=settings.bootstrap,
        group_id=settings.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=min(3000, settings.session_timeout_ms // 3),
        reconnect_backoff_max_ms=1000,  # as the relay: back within a second of the broker
        client_id="ordo-worker",
    )


class Worker:
    def __init__(
        self,
        views: PostgresReadModels,
        source: KafkaConsumer,
        dead_letters: KafkaProducer,
        settings: KafkaSettings,
        after_view_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.views = views
        self.consumer = source
        self.dead_letters = dead_letters
        self.settings = settings
        # KafkaConsumer is not thread-safe: every call goes through this one thread.
        self._kafka = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-consumer")
        self._lag_checked = 0.0
        # A failpoint for crash tests: runs between the views' commit and the offsets' commit.
        self._after_view_commit = after_view_commit

    async def step(self) -> int:
        """Poll, apply, commit; returns how many messages the batch held."""
        polled: dict[TopicPartition, list[Any]] = await self._call(
            self.consumer.poll, 500, MAX_POLL_RECORDS
        )
        records = [record for batch in polled.values() for record in batch]
        if records:
            decoded = self._decoded(records)
            spans = self._applying(decoded)
            try:
                await self._apply(decoded)
            except Exception as error:
                end_all(spans, error)
                raise
            end_all(spans)
            self._after_view_commit()
            offsets = {
                tp: OffsetAndMetadata(batch[-1].offset + 1, "", -1) for tp, batch in polled.items()
            }
            await self._call(self.consumer.commit, offsets)
        await self._measure_lag()
        return len(records)

    async def run(self, stopping: asyncio.Event) -> None:
        log.info("worker consuming", topic=self.settings.topic, group=self.settings.group)
        try:
            while not stopping.is_set():
                try:
                    await self.step()
                except KafkaError as error:
                    # The broker went away: the consumer reconnects; uncommitted messages come
                    # again and are recognised by version.
                    log.warning("broker unavailable, retrying", error=str(error))
                    await asyncio.sleep(1)
        finally:
            await self._call(self.consumer.close)
            self._kafka.shutdown(wait=False)

    def _decoded(self, records: Sequence[Any]) -> list[tuple[Any, Event]]:
        decoded = []
        for record in records:
            try:
                event, _ = from_message(record.value)
            except UndecodableMessage as error:
                self._dead_letter(record, f"undecodable: {error}")
                continue
            decoded.append((record, event))
        return decoded

    def _applying(self, decoded: list[tuple[Any, Event]]) -> list[Span]:
        """A span for each traced message of the batch, a child of its publication's: the
        batch's events are applied together, so each span lasts the whole batch's apply."""
        if not active():
            return []
        return [
            TRACER.start_span(
                f"apply {record.topic}",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.destination.partition.id": str(record.partition),
                    "messaging.kafka.offset": record.offset,
                    "messaging.batch.message_count": len(decoded),
                    "ordo.event.type": type(event).__name__,
                },
            )
            for record, event in decoded
            if (parent := parent_of(traceparent_in(record.headers))) is not None
        ]

    async def _apply(self, decoded: list[tuple[Any, Event]]) -> None:
        try:
            await self._apply_events([event for _, event in decoded])
        except (ValueError, TypeError):
            # Something in the batch cannot be applied: find it, one message at a time.
            for record, event in decoded:
                try:
                    await self._apply_events([event])
                except (ValueError, TypeError) as error:
                    self._dead_letter(record, f"cannot be applied: {error}")

    async def _apply_events(self, events: list[Event]) -> None:
        if not events:
            return
        async with self.views.pool.acquire() as conn, conn.transaction():
            ids = {event.prescription_id for event in events}
            states = await self.views.states_in(conn, ids, for_update=True)
            await self.views.write_rows(conn, list(fold_batch(states, events).values()))
        APPLIED.inc(len(events))

    def _dead_letter(self, record: Any, reason: str) -> None:
        headers = [
            ("reason", reason.encode()[:1000]),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        self.dead_letters.send(
            self.settings.dead_letter_topic, key=record.key, value=record.value, headers=headers
        ).get(timeout=30)
        DEAD_LETTERS.inc()
        log.warning("dead letter", reason=reason, partition=record.partition, offset=record.offset)

    async def _measure_lag(self) -> None:
        if time.monotonic() - self._lag_checked < 1.0:
            return
        self._lag_checked = time.monotonic()
        assigned = await self._call(self.consumer.assignment)
        ends = await self._call(self.consumer.end_offsets, list(assigned)) if assigned else {}
        positions = {tp: await self._call(self.consumer.position, tp) for tp in assigned}
        # A rebalance moves partitions to other workers: report only the ones this one holds.
        PARTITION_LAG.clear()
        for tp, position in positions.items():
            PARTITION_LAG.labels(str(tp.partition)).set(max(ends.get(tp, 0) - position, 0))

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._kafka, function, *args)
