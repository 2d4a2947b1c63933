"""Stream reads gathered into one query each: the read side's counterpart of group commit.

Every read and every command asks PostgreSQL for a stream's events after the version its cached
state holds (usually none: the round trip only proves the cache current). Under load most of
a read's cost is that round trip's fixed part: taking a pooled connection, asyncpg's protocol,
PostgreSQL's executor. So the reads waiting at one moment go as one statement, the streams and
versions as two arrays, and each caller gets its own stream's rows back.

Freshness is the same as one query per read: a read joins a statement only before it is sent,
so whatever was committed before the read was asked for is in its answer. A few lanes (tasks)
send statements at once, so a statement in flight never holds the next one back for its whole
round trip; each lane takes every read waiting when it is free. A read asked while none is in
flight goes at once from its caller's task (a lone client pays no hop to a lane), and a lone
read goes as the one-stream query, whose plan is the simplest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

LANES = 2  # statements in flight at once per process
MAX_READS = 256  # streams per statement: bounds one statement's arrays
Rows = list[tuple[str, bytes]]  # (topic, state) of a stream's events, in version order


@dataclass(frozen=True)
class StreamReadSql:
    one: str  # $1 the stream, $2 the version after which: topic, state
    many: str  # $1 the streams, $2 the versions: the read's index (1-based), topic, state


@dataclass
class StreamRead:
    stream: str
    after_version: int
    done: asyncio.Future[Rows]

    def answer(self, outcome: Rows | BaseException) -> None:
        if self.done.done():  # the caller went away (cancelled): nobody to tell
            return
        if isinstance(outcome, BaseException):
            self.done.set_exception(outcome)
        else:
            self.done.set_result(outcome)


class GroupedStreamReads:
    """The process's stream reads, sent by a few lanes, each taking every read waiting."""

    def __init__(
        self,
        fetch: Callable[..., Coroutine[Any, Any, list[Any]]],
        sql: StreamReadSql,
        lanes: int = LANES,
        max_reads: int = MAX_READS,
    ) -> None:
        self._fetch = fetch  # (query, *args) → rows, on a pooled connection, retried once
        self._sql = sql
        self._lanes = lanes
        self._max_reads = max_reads
        self._waiting: deque[StreamRead] = deque()
        self._news = asyncio.Event()  # set: a read may be waiting
        self._tasks: list[asyncio.Task[None]] = []
        self._sending = 0  # statements in flight
        self.statements = 0  # statements sent, for tests and benchmarks
        self.largest = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._lane(), name=f"ordo-stream-reads-{index}")
            for index in range(self._lanes)
        ]

    async def stop(self) -> None:
        """Stop the lanes; a read still waiting is told the store is closing."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while self._waiting:
            self._waiting.popleft().answer(RuntimeError("the event store is closing"))

    async def events_after(self, stream: str, after_version: int) -> Rows:
        if not self._tasks:
            msg = "the event store is not started"
            raise RuntimeError(msg)
        if not self._sending and not self._waiting:
            return await self._alone(stream, after_version)
        read = StreamRead(stream, after_version, asyncio.get_running_loop().create_future())
        self._waiting.append(read)
        self._news.set()
        return await read.done

    async def _alone(self, stream: str, after_version: int) -> Rows:
        self._sending += 1
        try:
            return await self._one(stream, after_version)
        finally:
            self._sending -= 1

    async def _one(self, stream: str, after_version: int) -> Rows:
        rows = await self._fetch(self._sql.one, stream, after_version)
        self.statements += 1
        return [(row[0], row[1]) for row in rows]

    async def _lane(self) -> None:
        while True:
            await self._news.wait()
            batch = [
                self._waiting.popleft() for _ in range(min(len(self._waiting), self._max_reads))
            ]
            if not self._waiting:
                self._news.clear()
            if batch:
                self._sending += 1
                try:
                    await self._send(batch)
                finally:
                    self._sending -= 1

    async def _send(self, batch: list[StreamRead]) -> None:
        try:
            answers = await self._answers(batch)
        except asyncio.CancelledError:  # the store is closing under the statement
            for read in batch:
                read.answer(RuntimeError("the event store is closing"))
            raise
        except Exception as error:  # every reader of the statement hears of it
            for read in batch:
                read.answer(error)
            return
        self.largest = max(self.largest, len(batch))
        for read, rows in zip(batch, answers, strict=True):
            read.answer(rows)

    async def _answers(self, batch: list[StreamRead]) -> list[Rows]:
        if len(batch) == 1:
            return [await self._one(batch[0].stream, batch[0].after_version)]
        answers: list[Rows] = [[] for _ in batch]
        rows = await self._fetch(
            self._sql.many, [read.stream for read in batch], [read.after_version for read in batch]
        )
        self.statements += 1
        for row in rows:
            answers[row[0] - 1].append((row[1], row[2]))
        return answers
