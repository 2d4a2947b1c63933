"""Prescribing under an `Idempotency-Key` (adapters/service.py `issue`), on the event store in
memory: a retry, even one that overtakes the first request, registers one prescription and
answers it to both, the retry with what the first appended where it landed (its receipt's); the
same key with another prescription is refused; another prescriber's
key is another request."""

from __future__ import annotations

import pytest

from adapters.store import Write
from adapters.unit_of_work import last_appended
from domain.actors import Actor
from domain.errors import DomainError
from tests.adapters.givens import PEOPLE, PRESCRIBER, prescription_of, service_on
from tests.adapters.memory_store import MemoryEventStore

# The same subject as PRESCRIBER: a prescriber is told apart by their RPPS.
OTHER_PRESCRIBER = Actor(role="prescriber", subject="dr", rpps=PEOPLE.other_prescriber)


async def test_a_retry_gets_the_first_prescription_and_records_nothing() -> None:
    store = MemoryEventStore()
    service = service_on(store)

    first = await service.issue(PRESCRIBER, prescription_of(3), "lap-1")
    again = await service.issue(PRESCRIBER, prescription_of(3), "lap-1")

    assert again == first
    assert await store.last_position() == 1


async def test_a_retry_recalls_where_the_first_prescription_landed() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    await service.issue(PRESCRIBER, prescription_of(3), "lap-1")
    first = last_appended.get()

    await service.issue(PRESCRIBER, prescription_of(3), "lap-1")

    assert first is not None and [point.position for point in first.points] == [1]
    assert last_appended.get() == first


async def test_a_retry_that_overtakes_the_first_request_is_answered_once() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    overtaking = []

    async def the_retry_first(_: Write) -> None:
        overtaking.append(await service.issue(PRESCRIBER, prescription_of(3), "lap-1"))

    store.interpose(the_retry_first)
    first = await service.issue(PRESCRIBER, prescription_of(3), "lap-1")

    assert [first.prescription_id] == [state.prescription_id for state in overtaking]
    assert await store.last_position() == 1


async def test_the_same_key_with_another_prescription_is_refused() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    await service.issue(PRESCRIBER, prescription_of(3), "lap-1")

    with pytest.raises(DomainError) as refused:
        await service.issue(PRESCRIBER, prescription_of(2), "lap-1")

    assert refused.value.code == "idempotency_key_reused"
    assert await store.last_position() == 1


async def test_another_prescribers_key_is_another_request() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    first = await service.issue(PRESCRIBER, prescription_of(3), "lap-1")

    other = await service.issue(OTHER_PRESCRIBER, prescription_of(3), "lap-1")

    assert other.prescription_id != first.prescription_id
    assert await store.last_position() == 2
