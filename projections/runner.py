"""Keeps the read models up to date from the log, batch by batch, exactly once.

The runner reads the notification log after the position its views have reached, folds the
batch into the states it touches (`projections.folds`), and hands the changed states to the
store, which writes every view's rows and the new position in one transaction. A crash
between two batches loses nothing and repeats nothing: the position and the rows it covers
are committed together. The store refuses a batch whose starting position is no longer
current, so two runners that both believe they lead can never both apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import msgspec

from domain.events import Event
from domain.prescription import Prescription
from projections.folds import READ_MODEL_NAMES, ReadModelName, fold_batch

REBUILD_BATCH = 5000

Notification = tuple[int, Event | None]  # log position, and the event (None: not ours to fold)


class EventFeed(Protocol):
    async def read(self, after: int, limit: int) -> Sequence[Notification]: ...

    async def head(self) -> int: ...

    async def wait_for_news(self, seconds: float) -> None:
        """Return when new events may have been appended, or after `seconds`."""


class ReadModelStore(Protocol):
    async def position(self) -> int: ...

    async def states(self, ids: Collection[str]) -> dict[str, Prescription]: ...

    async def apply(
        self, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        """Write the changed states' rows and `position`, if the views are still at `expected`."""


class PositionMoved(Exception):  # noqa: N818 - named after the fact it reports
    """Another runner applied a batch first: this one must re-read where the views stand."""


class ProjectionRunner:
    def __init__(
        self,
        source: EventFeed,
        store: ReadModelStore,
        *,
        batch_size: int = 2000,
        on_batch: Callable[[int], None] = lambda position: None,
    ) -> None:
        self.source = source
        self.store = store
        self.batch_size = batch_size
        self._on_batch = on_batch

    async def step(self, stop: int | None = None) -> int:
        """Apply the next batch (not beyond `stop`); returns how many notifications it covered."""
        position = await self.store.position()
        limit = self.batch_size if stop is None else min(self.batch_size, stop - position)
        if limit <= 0:
            return 0
        batch = await self.source.read(position, limit)
        if not batch:
            return 0
        events = [event for _, event in batch if event is not None]
        states = await self.store.states({event.prescription_id for event in events})
        reached = batch[-1][0]
        await self.store.apply(fold_batch(states, events), reached, expected=position)
        self._on_batch(reached)
        return len(batch)

    async def catch_up(self, stop: int | None = None) -> int:
        """Apply batches until the log (or `stop`) is reached; returns how many were covered."""
        total = 0
        while covered := await self.step(stop):
            total += covered
        return total

    async def run(self, stopping: asyncio.Event, idle_wait: float = 1.0) -> None:
        """Follow the log until `stopping` is set, woken at once by new events."""
        while not stopping.is_set():
            try:
                covered = await self.catch_up()
            except PositionMoved:
                continue
            if not covered:
                await self.source.wait_for_news(idle_wait)


class RebuildableStore(ReadModelStore, Protocol):
    async def create(self) -> None: ...

    async def drop(self) -> None: ...

    async def switch_to(self, switch: Switch) -> int:
        """Under the apply lock: catch the switch's scratch copy up to its target (at least the
        live position), make its `views` the live ones, drop the rest of it; returns the
        position reached."""


@dataclass(frozen=True)
class Switch:
    """A rebuild's last step: the scratch copy, caught up from `source` to `target`, whose
    `views` replace the live ones."""

    scratch: RebuildableStore
    source: EventFeed
    views: Collection[ReadModelName]
    target: int


async def rebuild(
    live: RebuildableStore,
    scratch: RebuildableStore,
    source: EventFeed,
    views: Collection[ReadModelName],
    on_batch: Callable[[int], None] = lambda position: None,
) -> int:
    """Build every view again from the start of the log beside the live ones, then switch.

    The inbox and the dispensing index derive from the prescriptions' states, so the scratch
    copy always folds everything; only `views` replace their live tables. Rebuilding some views
    only goes as far as the live position, so that after the switch all views stand at the same
    position; rebuilding all of them goes to the head of the log.
    """
    await scratch.drop()
    await scratch.create()
    runner = ProjectionRunner(source, scratch, batch_size=REBUILD_BATCH, on_batch=on_batch)
    everything = set(views) == set(READ_MODEL_NAMES)
    while True:
        target = await (source.head() if everything else live.position())
        if target - await scratch.position() <= REBUILD_BATCH:
            break  # what is left is caught up while the live views are locked
        await runner.catch_up(stop=target)
    return await live.switch_to(Switch(scratch, source, views, target if everything else 0))


class Lag(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    head: int
    events: int
    seconds: float


async def lag_of(source: EventFeed, store: ReadModelStore, now: datetime) -> Lag:
    """How far the views trail the log: in events, and in seconds since the oldest one unseen."""
    position, head = await store.position(), await source.head()
    oldest = next((event for _, event in await source.read(position, 20) if event), None)
    waited = (now - oldest.at).total_seconds() if oldest is not None and head > position else 0.0
    return Lag(
        position=position, head=head, events=max(head - position, 0), seconds=max(waited, 0.0)
    )
