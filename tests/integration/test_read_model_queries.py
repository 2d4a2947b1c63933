"""The read models' stores, on both dialects, rendered from one description of their tables:
what they offer their other readers (the stored states by id, which reconciliation decodes
itself; every state in number order, for scripts; waiting for the log's head), the guards of a
batch (a stale starting position, an older state), a rebuild, and rows that follow the
description."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime

import pytest

from adapters.config import Settings
from adapters.librarylog import LibraryLog, open_library_log
from adapters.readmodels import ReadModels, open_read_models
from adapters.readmodels.rows import state_decoder
from adapters.readmodels.tables import TABLES, ColumnType
from domain.events import Event, PrescriptionIssued
from domain.prescription import Prescription, fold
from projections.folds import READ_MODEL_NAMES
from projections.runner import PositionMoved
from tests.integration.logs import PHARMACY, a_busy_day


@asynccontextmanager
async def a_log_and_its_read_models(
    settings: Settings,
) -> AsyncIterator[tuple[LibraryLog, ReadModels]]:
    log = open_library_log(settings.database_url, settings.data_dir)
    read_models = await open_read_models(settings, log)
    try:
        yield log, read_models
    finally:
        await read_models.close()
        log.close()


def issued_ids(events: list[Event]) -> list[str]:
    return [e.prescription_id for e in events if isinstance(e, PrescriptionIssued)]


def test_all_states_streams_every_prescription_in_number_order_batch_by_batch(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with a_log_and_its_read_models(settings) as (log, read_models):
            events = a_busy_day(23)
            log.append(events)
            await read_models.catch_up()

            streamed = [state async for state in read_models.store.all_states(batch=5)]

            ids = sorted(issued_ids(events))
            assert [state.prescription_id for state in streamed] == ids
            assert streamed == [(await read_models.store.states(ids))[id_] for id_ in ids]

    asyncio.run(scenario())


def test_encoded_states_are_the_stored_states_undecoded_for_the_ids_asked_only(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with a_log_and_its_read_models(settings) as (log, read_models):
            events = a_busy_day(6)
            log.append(events)
            await read_models.catch_up()
            ids = issued_ids(events)

            encoded = await read_models.store.encoded_states([ids[0], ids[4], "unknown"])

            assert set(encoded) == {ids[0], ids[4]}
            decoded = {id_: state_decoder.decode(state) for id_, state in encoded.items()}
            assert decoded == await read_models.store.states([ids[0], ids[4]])
            assert await read_models.store.encoded_states([]) == {}

    asyncio.run(scenario())


def test_caught_up_returns_the_head_once_a_runner_elsewhere_applied_it(settings: Settings) -> None:
    async def scenario() -> None:
        async with a_log_and_its_read_models(settings) as (log, read_models):
            log.append(a_busy_day(10))
            head = await read_models.source.head()

            async def another_runner() -> None:
                await asyncio.sleep(0.2)
                await read_models.catch_up()

            runner = asyncio.create_task(another_runner())
            assert await read_models.caught_up(head, patience=30) == head
            await runner

    asyncio.run(scenario())


def test_caught_up_gives_up_after_its_patience_and_says_where_the_read_models_stand(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with a_log_and_its_read_models(settings) as (log, read_models):
            log.append(a_busy_day(3))
            await read_models.catch_up()
            reached = await read_models.source.head()
            log.append(a_busy_day(3))  # nobody applies these
            head = await read_models.source.head()

            started = time.monotonic()
            assert await read_models.caught_up(head, patience=0.3) == reached < head
            assert time.monotonic() - started >= 0.3

    asyncio.run(scenario())


EXPECTED_TYPES: dict[ColumnType, type] = {
    "text": str,
    "int": int,
    "bigint": int,
    "bool": bool,
    "time": datetime,
    "day": date,
    "bytes": bytes,
}


def test_every_table_gets_rows_in_the_order_and_types_of_its_description() -> None:
    events = a_busy_day(14)  # dispensed, some withdrawn: every table has rows
    states: list[Prescription] = []
    for id_ in issued_ids(events):
        state = fold([e for e in events if e.prescription_id == id_])
        assert state is not None
        states.append(state)

    for table in TABLES.values():
        rows = [row for state in states for row in table.rows_of(state)]
        if table.name == "conversations":
            assert rows == []  # a busy day holds no conversation: see the API tests
            continue
        assert rows, table.name
        for row in rows:
            assert len(row) == len(table.columns), table.name
            for column, value in zip(table.columns, row, strict=True):
                expected = EXPECTED_TYPES[column.type]
                assert isinstance(value, expected) or (value is None and column.nullable), (
                    f"{table.name}.{column.name}: {value!r} is not {expected.__name__}"
                )
                assert column.type == "bool" or not isinstance(value, bool), column.name


def test_a_batch_from_a_position_the_read_models_left_is_refused_and_writes_nothing(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with a_log_and_its_read_models(settings) as (log, read_models):
            log.append(a_busy_day(2))
            await read_models.catch_up()
            reached = await read_models.store.position()
            unseen = fold(a_busy_day(1))
            assert unseen is not None

            with pytest.raises(PositionMoved):
                await read_models.store.apply(
                    {unseen.prescription_id: unseen}, reached + 5, expected=reached - 1
                )

            assert await read_models.store.position() == reached
            assert await read_models.store.states([unseen.prescription_id]) == {}

    asyncio.run(scenario())


def test_an_older_state_never_replaces_a_newer_one(settings: Settings) -> None:
    async def scenario() -> None:
        async with a_log_and_its_read_models(settings) as (log, read_models):
            events = a_busy_day(1)
            log.append(events)
            await read_models.catch_up()
            (issued, *_) = events
            older = fold([issued])
            assert older is not None
            reached = await read_models.store.position()
            newest = (await read_models.store.states([older.prescription_id]))[
                older.prescription_id
            ]

            await read_models.store.apply(
                {older.prescription_id: older}, reached + 1, expected=reached
            )

            stored = await read_models.store.states([older.prescription_id])
            assert stored[older.prescription_id] == newest != older

    asyncio.run(scenario())


def test_a_rebuild_folds_the_log_again_into_a_copy_then_switches_to_it_and_drops_the_rest(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        async with a_log_and_its_read_models(settings) as (log, read_models):
            log.append(a_busy_day(12))
            await read_models.catch_up()
            head = await read_models.source.head()
            before = await inbox_of_the_pharmacy(read_models)
            assert before

            # One table: rebuilt up to where the others stand.
            assert await read_models.rebuild(["inbox"], lambda position: None) == head
            assert await inbox_of_the_pharmacy(read_models) == before

            # Every table lost: rebuilt from the start of the log up to its head.
            await read_models.store.drop()
            await read_models.store.create()
            assert await inbox_of_the_pharmacy(read_models) == []
            assert await read_models.rebuild(READ_MODEL_NAMES, lambda position: None) == head
            assert await inbox_of_the_pharmacy(read_models) == before
            assert await read_models.store.position() == head
            assert await read_models.store.scratch().position() == 0  # the copy is gone

    asyncio.run(scenario())


async def inbox_of_the_pharmacy(read_models: ReadModels) -> list[object]:
    return list(await read_models.store.inbox_page(PHARMACY.value, date.today(), None, 100))
