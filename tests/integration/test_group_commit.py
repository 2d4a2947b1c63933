"""Group commit on a real PostgreSQL: each command keeps its own outcome, the log stays whole.

Given prescriptions in the store, when many commands are appended at once (so that the writer
gathers them into groups), then each command commits or is refused exactly as a serial run of
the same decisions would allow, and a reader following the notification log sees every
position exactly once, in order.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from adapters.eventfeed import PostgresEventFeed
from adapters.postgres import asyncpg_target, connection_settings
from adapters.service import PrescriptionService
from adapters.store import ConflictError, EventStore, Write
from adapters.store.postgres import PostgresEventStore
from adapters.verify import PostgresLogRows, verify_chain
from domain.errors import DomainError
from domain.events import DispensationRecorded, Event
from domain.identifiers import Finess, Rpps
from tests.integration.givens import PEOPLE, issue, one_pack, pharmacist

pytestmark = pytest.mark.postgres


async def dispensing_event(
    service: PrescriptionService, number: str, index: int
) -> DispensationRecorded:
    """A one-pack dispensing decided on the prescription as it stands (not appended)."""
    from domain.decisions import dispensing  # noqa: PLC0415

    state = await service.read(pharmacist(index), number)
    command = one_pack().command(Finess(pharmacist(index).finess or ""), Rpps(PEOPLE.pharmacist))
    decided = dispensing.dispense(state, command, str(uuid.uuid4()), service.clock(), None)
    return decided.recorded


class StaleReads:
    """The store, but the first read of each planted prescription misses its newest event: the
    decision made on it carries a stale expected version into a group."""

    def __init__(self, store: PostgresEventStore, planted: set[str]) -> None:
        self._store = store
        self._planted = set(planted)
        self.served_stale = 0

    def __getattr__(self, name: str) -> Any:  # every other method of the store, as it is
        return getattr(self._store, name)

    async def events_of(self, stream_id: str, after_version: int = 0) -> list[Event]:
        events = await self._store.events_of(stream_id, after_version)
        if stream_id in self._planted and len(events) > 1:
            self._planted.discard(stream_id)
            self.served_stale += 1
            return events[:-1]
        return events


async def stored_dispensations(store: PostgresEventStore) -> Counter[str]:
    rows = await store.read(
        "fetch",
        f"SELECT originator_id, topic FROM {store.sql.events} WHERE topic LIKE 'Dispensation%'",
    )
    return Counter(row[0] for row in rows if row[1].startswith("DispensationRecorded"))


def test_200_commands_on_50_prescriptions_with_planted_stale_versions(postgres_url: str) -> None:
    async def scenario() -> None:
        store = PostgresEventStore(postgres_url)
        await store.start()
        try:
            setup = PrescriptionService(store, cached_states=0)
            numbers = [await issue(setup, packs=3) for _ in range(50)]
            # One pack out already on half of them, so a stale read has something to miss.
            for number in numbers[::2]:
                await setup.dispense(pharmacist(99), number, one_pack().command)
            stale = StaleReads(store, set(numbers[::2]))
            service = PrescriptionService(stale, cached_states=0)

            async def dispense(index: int, number: str) -> str:
                try:
                    await service.dispense(pharmacist(index), number, one_pack().command)
                except DomainError as error:
                    return error.code
                return "201"

            commands = [(i, numbers[i % 50]) for i in range(200)]
            random.Random(11).shuffle(commands)
            outcomes = await asyncio.gather(*(dispense(i, n) for i, n in commands))

            # Serially: 150 packs, 25 of them already out, 200 asks of one: 125 granted.
            assert Counter(outcomes) == {"201": 125, "already_dispensed": 75}
            assert stale.served_stale == 25
            stored = await stored_dispensations(store)
            assert stored == dict.fromkeys(numbers, 3)  # nothing lost, nothing doubled
            assert store.committer.largest_group > 1, "the commands were never grouped"
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_stale_command_is_refused_alone_and_the_rest_of_its_group_commits(
    postgres_url: str,
) -> None:
    async def scenario() -> None:
        store = PostgresEventStore(postgres_url)
        await store.start()
        try:
            service = PrescriptionService(store, cached_states=0)
            numbers = [await issue(service, packs=5) for _ in range(20)]
            fresh = [await dispensing_event(service, n, i) for i, n in enumerate(numbers)]
            # The odd ones are taken by someone else first: their decisions are now stale.
            for number in numbers[1::2]:
                await service.dispense(pharmacist(98), number, one_pack().command)
            groups_before = store.committer.groups

            results = await asyncio.gather(
                *(store.append(Write([event])) for event in fresh), return_exceptions=True
            )

            assert store.committer.groups == groups_before + 1, "one group for the 20 appends"
            assert [isinstance(r, list) for r in results] == [i % 2 == 0 for i in range(20)]
            assert all(isinstance(r, ConflictError) for r in results[1::2])
            stored = await stored_dispensations(store)
            assert stored == dict.fromkeys(numbers, 1)
            # The group's chain skips the refused commands' rows: its landed rows follow one
            # another, and the whole log's chain holds.
            landed = [point for r in results if isinstance(r, list) for point in r]
            assert [p.position for p in landed] == list(
                range(landed[0].position, landed[0].position + 10)
            )
            broken, check = await verify_chain(PostgresLogRows(store.pool, store.sql.schema))
            assert broken is None and check.checked == 20 + 10 + 10
        finally:
            await store.close()

    asyncio.run(scenario())


async def follow(log: PostgresEventFeed, stop: asyncio.Event, seen: list[int]) -> None:
    """The projection runner's reader: after the last position seen, in pages."""
    position = 0
    while True:
        page = await log.read(position, 500)
        seen.extend(p for p, _ in page)
        if page:
            position = page[-1][0]
        elif stop.is_set() and position >= await log.head():
            return
        else:
            await asyncio.sleep(0.001)


async def write_many(stores: Sequence[EventStore], prescriptions: int, writers: int) -> None:
    services = [PrescriptionService(store) for store in stores]
    todo = iter(range(prescriptions))

    async def writer(service: PrescriptionService) -> None:
        for _ in todo:
            await issue(service, packs=1)

    await asyncio.gather(*(writer(services[i % len(services)]) for i in range(writers)))


def test_a_reader_following_the_log_sees_every_position_once_in_order(postgres_url: str) -> None:
    async def scenario() -> None:
        # Two stores: two server processes' writers, racing for the table lock.
        stores = [PostgresEventStore(postgres_url), PostgresEventStore(postgres_url)]
        for store in stores:
            await store.start()
        dsn, schema = asyncpg_target(postgres_url)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            stop, seen = asyncio.Event(), list[int]()
            reader = asyncio.create_task(follow(PostgresEventFeed(pool, schema), stop, seen))
            await write_many(stores, prescriptions=10_000, writers=64)
            stop.set()
            await asyncio.wait_for(reader, 60)

            stored = [
                r[0]
                for r in await pool.fetch(
                    f'SELECT notification_id FROM "{schema}".ordo_events ORDER BY notification_id'
                )
            ]
            assert len(stored) == 10_000
            assert seen == stored  # every position, once, in order
            assert max(s.committer.largest_group for s in stores) > 1
        finally:
            await pool.close()
            for store in stores:
                await store.close()

    asyncio.run(scenario())


def test_a_cached_prescription_is_brought_up_to_date_before_a_decision(
    postgres_url: str,
) -> None:
    """Two server processes: each caches what it folded. What the other appended since is read
    (the events after the cached version) before deciding, so the last pack is given once."""

    async def scenario() -> None:
        stores = [PostgresEventStore(postgres_url), PostgresEventStore(postgres_url)]
        for store in stores:
            await store.start()
        try:
            one, other = (PrescriptionService(store) for store in stores)
            number = await issue(one, packs=2)
            await one.read(pharmacist(1), number)  # cached by `one` at version 1
            await other.dispense(pharmacist(2), number, one_pack().command)

            receipt = await one.dispense(pharmacist(1), number, one_pack().command)
            with pytest.raises(DomainError) as refused:
                await one.dispense(pharmacist(1), number, one_pack().command)

            assert receipt.lines[0].remaining == 0
            assert refused.value.code == "already_dispensed"
            assert one._states.get(number) is not None  # the cache was used
        finally:
            for store in stores:
                await store.close()

    asyncio.run(scenario())


async def sessions_waiting_for_the_lock(admin: asyncpg.Connection, ours: str) -> int:
    return int(
        await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = $1 AND wait_event_type = 'Lock'",
            ours,
        )
    )


def test_a_group_whose_connection_is_lost_acknowledges_none_of_its_commands(
    postgres_url: str,
) -> None:
    """The group's call is at the database (held behind someone else's table lock) when its
    connection is cut: every command of the group fails, none is acknowledged or stored."""

    async def scenario() -> None:
        store = PostgresEventStore(postgres_url)
        await store.start()
        dsn, _ = asyncpg_target(postgres_url)
        admin, ours = await asyncpg.connect(dsn), connection_settings()["application_name"]
        try:
            service = PrescriptionService(store, cached_states=0)
            numbers = [await issue(service, packs=5) for _ in range(10)]
            decided = [await dispensing_event(service, n, i) for i, n in enumerate(numbers)]
            holding = admin.transaction()
            await holding.start()
            await admin.execute(f"LOCK TABLE {store.sql.events} IN EXCLUSIVE MODE")
            appends = asyncio.gather(
                *(store.append(Write([event])) for event in decided), return_exceptions=True
            )
            while not await sessions_waiting_for_the_lock(admin, ours):  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # a lock wait in the database has no event to await
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1",
                ours,
            )
            lost = await appends
            await holding.rollback()

            assert all(isinstance(r, Exception) for r in lost), lost
            assert not any(isinstance(r, ConflictError) for r in lost)  # an error, not a race
            assert await stored_dispensations(store) == {}
            # The pool replaces the dead connections: the same decisions commit on a retry.
            await asyncio.gather(*(store.append(Write([event])) for event in decided))
            assert await stored_dispensations(store) == dict.fromkeys(numbers, 1)
        finally:
            await admin.close()
            await store.close()

    asyncio.run(scenario())
