"""Stream reads gathered into one statement, on a real PostgreSQL.

Given prescriptions in the log, when many reads are asked at once (so that they go together),
then each gets exactly its own stream's events after its own version; and a read asked right
after another process's dispensing, while the lanes are busy with other reads, sees it.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from adapters.service import PrescriptionService
from domain.events import DispensationRecorded
from tests.integration.givens import issue, one_pack, pharmacist, started_stores

pytestmark = pytest.mark.postgres


def test_reads_asked_at_once_each_get_their_own_stream_after_their_own_version(
    postgres_url: str,
) -> None:
    async def scenario() -> None:
        async with started_stores(postgres_url) as (store,):
            service = PrescriptionService(store)
            numbers = [await issue(service, packs=4) for _ in range(40)]
            for index, number in enumerate(numbers):
                for _ in range(index % 4):
                    await service.dispense(pharmacist(1), number, one_pack().command)
            whole = {number: await store.events_of(number) for number in numbers}
            asks = [(number, random.Random(n).randint(0, 4)) for n, number in enumerate(numbers)]
            asks *= 5

            answers = await asyncio.gather(*(store.events_of(n, after) for n, after in asks))

            for (number, after), events in zip(asks, answers, strict=True):
                assert events == whole[number][after:]
            assert store.stream_reads.largest > 1, "the reads never went together"
            assert store.stream_reads.statements < len(asks)

    asyncio.run(scenario())


def test_a_read_right_after_another_process_dispensed_sees_it_while_the_lanes_are_busy(
    postgres_url: str,
) -> None:
    """Two server processes. One dispenses; the other, whose lanes are kept busy by 24 readers,
    is asked for the events after the version it knew: the dispensing is always there."""

    async def scenario() -> None:
        async with started_stores(postgres_url, count=2) as (writer, reader):
            service = PrescriptionService(writer)
            numbers = [await issue(service, packs=99) for _ in range(30)]
            busy = asyncio.Event()

            async def keep_busy(seed: int) -> None:
                chosen = random.Random(seed)
                while not busy.is_set():
                    await reader.events_of(chosen.choice(numbers))

            readers = [asyncio.create_task(keep_busy(seed)) for seed in range(24)]
            try:
                for round_ in range(60):
                    number = numbers[round_ % len(numbers)]
                    known = len(await reader.events_of(number))
                    await service.dispense(pharmacist(1), number, one_pack().command)
                    news = await reader.events_of(number, known)
                    assert [type(event) for event in news] == [DispensationRecorded]
            finally:
                busy.set()
                await asyncio.gather(*readers)
            assert reader.stream_reads.largest > 1, "the reads never went together"

    asyncio.run(scenario())


def test_the_grouped_statement_looks_each_stream_up_in_the_index_before_any_analyse(
    postgres_url: str,
) -> None:
    """A log of thousands of events the planner has no statistics for (a fresh database, or
    autovacuum not yet come by): the statement must not scan the table."""

    async def scenario() -> None:
        async with started_stores(postgres_url) as (store,):
            service = PrescriptionService(store)
            numbers = [await issue(service, packs=2) for _ in range(300)]
            async with store.pool.acquire() as conn:
                await conn.execute(
                    f"ALTER TABLE {store.sql.events} SET (autovacuum_enabled = false)"
                )
                plan = await conn.prepare("EXPLAIN " + store.sql.streams_after)
                for _ in range(7):  # past the custom plans, to the generic one
                    rows = await plan.fetch(numbers[:8], [0] * 8)
            text = "\n".join(row[0] for row in rows)
            assert "Seq Scan" not in text, text
            assert "Index" in text, text

    asyncio.run(scenario())
