"""Stream reads gathered into one statement: each reader gets its own stream's events.

The statements go to a table held in memory here (the store's real SQL runs in
tests/integration/test_stream_reads.py); what is tested is the gathering: who waits, who goes
in which statement, who hears of a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from adapters.store.stream_reads import GroupedStreamReads, Rows, StreamReadSql

SQL = StreamReadSql(one="one", many="many")
TABLE = {
    f"s{n}": [(f"topic-{n}-{v}", f"state-{n}-{v}".encode()) for v in (1, 2, 3)] for n in range(8)
}


class Database:
    """Answers the two statements from TABLE; holds each statement until released, when asked."""

    def __init__(self, *, held: bool = False) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.release = asyncio.Event()
        if not held:
            self.release.set()
        self.failure: Exception | None = None

    async def fetch(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        self.statements.append((query, args))
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        if query == "one":
            return list(TABLE.get(args[0], [])[args[1] :])
        streams, versions = args
        return [
            (index, *row)
            for index, (stream, version) in enumerate(zip(streams, versions, strict=True), 1)
            for row in TABLE.get(stream, [])[version:]
        ]


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def started(database: Database, lanes: int = 1) -> GroupedStreamReads:
    reads = GroupedStreamReads(database.fetch, SQL, lanes=lanes)
    reads.start()
    return reads


async def one_in_flight(
    stream: str = "s0",
) -> tuple[Database, GroupedStreamReads, asyncio.Task[Rows]]:
    """A store whose database holds every statement, one read of `stream` sent and held."""
    database = Database(held=True)
    reads = await started(database)
    first = asyncio.create_task(reads.events_after(stream, 0))
    await settle()
    return database, reads, first


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_read_with_none_in_flight_goes_at_once_as_the_one_stream_statement() -> None:
    async def scenario() -> None:
        database = Database()
        reads = await started(database)
        assert await reads.events_after("s1", 1) == TABLE["s1"][1:]
        assert database.statements == [("one", ("s1", 1))]
        await reads.stop()

    run(scenario)


def test_reads_asked_while_one_is_in_flight_go_together_in_the_next_statement() -> None:
    async def scenario() -> None:
        database, reads, first = await one_in_flight()
        waiting = [asyncio.create_task(reads.events_after(f"s{n}", n % 3)) for n in range(1, 7)]
        await settle()
        assert len(database.statements) == 2  # the first alone, the next six in one
        database.release.set()
        assert await first == TABLE["s0"]
        for n, task in enumerate(waiting, 1):
            assert await task == TABLE[f"s{n}"][n % 3 :]
        assert database.statements[1] == (
            "many",
            ([f"s{n}" for n in range(1, 7)], [n % 3 for n in range(1, 7)]),
        )
        assert reads.largest == 6
        await reads.stop()

    run(scenario)


def test_the_same_stream_read_twice_in_one_statement_answers_each_from_its_own_version() -> None:
    async def scenario() -> None:
        database, reads, first = await one_in_flight("s2")
        from_one = asyncio.create_task(reads.events_after("s3", 1))
        from_three = asyncio.create_task(reads.events_after("s3", 3))
        unknown = asyncio.create_task(reads.events_after("nowhere", 0))
        database.release.set()
        assert await first == TABLE["s2"]
        assert await from_one == TABLE["s3"][1:]
        assert await from_three == []
        assert await unknown == []
        await reads.stop()

    run(scenario)


def test_a_failed_statement_fails_each_of_its_readers_and_the_next_ones_are_served() -> None:
    async def scenario() -> None:
        database, reads, first = await one_in_flight()
        failing = [asyncio.create_task(reads.events_after(f"s{n}", 0)) for n in (1, 2)]
        await settle()
        database.failure = ConnectionError("the database went away")
        database.release.set()
        for task in (first, *failing):
            with pytest.raises(ConnectionError):
                await task
        database.failure = None
        assert await reads.events_after("s4", 2) == TABLE["s4"][2:]
        await reads.stop()

    run(scenario)


def test_a_reader_that_went_away_leaves_the_others_their_answers() -> None:
    async def scenario() -> None:
        database, reads, first = await one_in_flight()
        gone = asyncio.create_task(reads.events_after("s1", 0))
        kept = asyncio.create_task(reads.events_after("s2", 0))
        await settle()
        gone.cancel()
        database.release.set()
        assert await first == TABLE["s0"]
        assert await kept == TABLE["s2"]
        assert gone.cancelled()
        await reads.stop()

    run(scenario)


def test_every_lane_sends_while_another_statement_is_in_flight() -> None:
    async def scenario() -> None:
        database = Database(held=True)
        reads = await started(database, lanes=2)
        tasks = [asyncio.create_task(reads.events_after("s0", 0))]
        for n in (1, 2, 3):
            await settle()
            tasks.append(asyncio.create_task(reads.events_after(f"s{n}", 0)))
        await settle()
        # The first from its caller, the second and third by the two lanes; the fourth waits.
        assert [query for query, _ in database.statements] == ["one", "one", "one"]
        database.release.set()
        for n, task in enumerate(tasks):
            assert await task == TABLE[f"s{n}"]
        assert len(database.statements) == 4
        await reads.stop()

    run(scenario)


def test_a_stopped_store_tells_the_readers_still_waiting_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        database, reads, first = await one_in_flight()
        second = asyncio.create_task(reads.events_after("s1", 0))
        third = asyncio.create_task(reads.events_after("s2", 0))
        await settle()
        await reads.stop()
        with pytest.raises(RuntimeError, match="closing"):
            await third
        database.release.set()
        assert await first == TABLE["s0"]  # sent from its own task: the lanes' end is not its
        with pytest.raises(RuntimeError, match="closing"):
            await second
        with pytest.raises(RuntimeError, match="not started"):
            await reads.events_after("s3", 0)

    run(scenario)
