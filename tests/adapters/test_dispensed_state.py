"""The prescription a dispensing leaves, handed back with what it appended (adapters/service.py
`dispense`, `adapters.unit_of_work.last_appended`): the FHIR answer is built from it, never
from a second read. On the event store in memory."""

from __future__ import annotations

from adapters.store import Write
from adapters.unit_of_work import last_appended
from domain.prescription import fold
from tests.adapters.givens import PHARMACY_A, PHARMACY_B, dispensing, issued, service_on
from tests.adapters.memory_store import MemoryEventStore


async def test_a_dispensing_that_lost_a_race_hands_back_the_state_after_its_own_append() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)

    async def pharmacy_a_first(_: Write) -> None:
        await service.dispense(PHARMACY_A, number, dispensing(2))

    store.interpose(pharmacy_a_first)
    receipt = await service.dispense(PHARMACY_B, number, dispensing(1))

    appended = last_appended.get()
    stored = fold(await store.events_of(number))
    assert appended is not None and appended.state is not None and stored is not None
    assert appended.state.version == stored.version == 3
    assert appended.state.dispensations == stored.dispensations
    assert appended.state.dispensations[-1].dispensation_id == receipt.dispensation_id
    assert appended.state.remaining(1) == receipt.lines[0].remaining == 0


async def test_a_replayed_dispensing_hands_back_no_state_to_be_read_again() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)
    await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")

    await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")

    appended = last_appended.get()
    assert appended is not None and appended.state is None
