"""The prescriptions' use cases on the event store in memory: races, retries and replays.

Given what is stored, when a command is decided while a competing writer appends in between
(`MemoryEventStore.interpose`), then the command is decided again against the new state: it
gets its result if it still may, its domain error otherwise, and the log holds each fact once.
"""

from __future__ import annotations

from itertools import cycle

import pytest

from adapters.service import PrescriptionService
from adapters.store import Write
from adapters.unit_of_work import MAX_ATTEMPTS, ContentionError
from domain.coverage import coverage_stream_of
from domain.errors import DomainError
from domain.events import DispensationRecorded, ExecutionViewConsentChanged, PrescriptionIssued
from tests.adapters.givens import (
    PATIENT,
    PEOPLE,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    billing,
    clock,
    dispensing,
    issued,
    narcotic_prescription_of,
    prescription_of,
    service_on,
    withdrawal,
)
from tests.adapters.memory_store import MemoryEventStore


def dispensations(events: list[object]) -> list[DispensationRecorded]:
    return [event for event in events if isinstance(event, DispensationRecorded)]


async def test_the_pharmacy_that_loses_the_race_is_decided_again_and_gets_what_remains() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)

    async def pharmacy_a_first(_: Write) -> None:
        await service.dispense(PHARMACY_A, number, dispensing(2))

    store.interpose(pharmacy_a_first)
    receipt = await service.dispense(PHARMACY_B, number, dispensing(1))

    assert receipt.lines[0].remaining == 0
    assert receipt.dispensed_elsewhere
    assert store.refused == 1
    stored = dispensations(list(await store.events_of(number)))
    assert [(d.finess, d.version) for d in stored] == [
        (PHARMACY_A.finess, 2),
        (PHARMACY_B.finess, 3),
    ]


async def test_the_pharmacy_that_loses_the_race_gets_its_error_when_nothing_remains() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)

    async def pharmacy_a_takes_all(_: Write) -> None:
        await service.dispense(PHARMACY_A, number, dispensing(3))

    store.interpose(pharmacy_a_takes_all)
    with pytest.raises(DomainError) as refused:
        await service.dispense(PHARMACY_B, number, dispensing(1))

    assert refused.value.code == "already_dispensed"
    assert [d.finess for d in dispensations(list(await store.events_of(number)))] == [
        PHARMACY_A.finess
    ]


async def test_a_billing_racing_another_for_one_invoice_number_finds_it_used() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    first, second = await issued(service, 1), await issued(service, 1)
    on_first = await service.dispense(PHARMACY_A, first, dispensing(1))
    on_second = await service.dispense(PHARMACY_A, second, dispensing(1))

    async def first_billed_with_that_number(_: Write) -> None:
        await service.bill(PHARMACY_A, first, billing(on_first.dispensation_id, "F-0001"))

    store.interpose(first_billed_with_that_number)
    with pytest.raises(DomainError) as refused:
        await service.bill(PHARMACY_A, second, billing(on_second.dispensation_id, "F-0001"))

    assert refused.value.code == "invoice_number_used"
    assert store.refused == 1  # another prescription's stream: only the claim told them apart
    assert len(await store.events_of(second)) == 2  # issued, dispensed: not billed


async def test_a_narcotic_dispensing_racing_another_for_the_patient_meets_its_coverage() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    first = (await service.issue(PRESCRIBER, narcotic_prescription_of(4))).prescription_id
    second = (await service.issue(PRESCRIBER, narcotic_prescription_of(4))).prescription_id

    async def the_first_covers_28_days(_: Write) -> None:
        await service.dispense(PHARMACY_A, first, dispensing(4))

    store.interpose(the_first_covers_28_days)
    with pytest.raises(DomainError) as refused:
        await service.dispense(PHARMACY_B, second, dispensing(1))

    assert refused.value.code == "narcotic_overlap"
    assert store.refused == 1  # on the patient's coverage stream alone
    coverage = await store.coverage(coverage_stream_of(PEOPLE.patient))
    assert [period.prescription_id for period in coverage.periods] == [first]
    assert len(await store.events_of(second)) == 1


async def test_a_retry_with_the_same_key_and_body_gets_the_first_receipt() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)

    first = await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")
    again = await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")

    assert again == first
    assert len(dispensations(list(await store.events_of(number)))) == 1


async def test_a_retry_that_overtakes_the_first_request_is_answered_once() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)
    overtaking = []

    async def the_clients_retry_first(_: Write) -> None:
        overtaking.append(await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1"))

    store.interpose(the_clients_retry_first)
    first = await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")

    assert [first] == overtaking
    assert len(dispensations(list(await store.events_of(number)))) == 1


async def test_a_key_used_again_with_another_body_is_refused_and_nothing_stored() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)
    await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")

    with pytest.raises(DomainError) as refused:
        await service.dispense(PHARMACY_A, number, dispensing(2), "lgo-1")

    assert refused.value.code == "idempotency_key_reused"
    assert len(await store.events_of(number)) == 2
    assert await store.last_position() == 2


async def test_a_key_belongs_to_its_caller_another_pharmacy_with_it_is_another_request() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)

    mine = await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")
    theirs = await service.dispense(PHARMACY_B, number, dispensing(1), "lgo-1")
    mine_again = await service.dispense(PHARMACY_A, number, dispensing(1), "lgo-1")

    assert theirs.dispensation_id != mine.dispensation_id
    assert mine_again == mine
    assert len(dispensations(list(await store.events_of(number)))) == 2


async def test_a_billing_retried_with_its_key_replays_the_first_view() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 1)
    dispensed = await service.dispense(PHARMACY_A, number, dispensing(1))

    first = await service.bill(
        PHARMACY_A, number, billing(dispensed.dispensation_id, "F-0001"), "bill-1"
    )
    again = await service.bill(
        PHARMACY_A, number, billing(dispensed.dispensation_id, "F-0001"), "bill-1"
    )

    assert again == first
    assert len(await store.events_of(number)) == 3


async def test_a_command_that_always_loses_the_race_gives_up_with_contention() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)
    opposition = cycle([False, True])

    async def the_patient_changes_their_mind(_: Write) -> None:
        await service.change_consent(PATIENT, number, next(opposition))

    store.interpose(the_patient_changes_their_mind, turns=MAX_ATTEMPTS)
    with pytest.raises(ContentionError):
        await service.dispense(PHARMACY_A, number, dispensing(1))

    assert store.refused == MAX_ATTEMPTS
    assert dispensations(list(await store.events_of(number))) == []


async def test_a_number_already_drawn_is_drawn_again() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    taken = []

    async def another_prescriber_draws_the_same(write: Write) -> None:
        drawn = write.events[0]
        assert isinstance(drawn, PrescriptionIssued)
        taken.append(drawn.prescription_id)
        await store.append(Write([drawn]))

    store.interpose(another_prescriber_draws_the_same)
    state = await service.issue(PRESCRIBER, prescription_of(3))

    assert state.prescription_id not in taken
    assert len(await store.events_of(taken[0])) == 1
    assert len(await store.events_of(state.prescription_id)) == 1


async def test_a_consent_changed_while_a_pharmacy_dispenses_is_recorded_after_it() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)

    async def a_pharmacy_dispenses(_: Write) -> None:
        await service.dispense(PHARMACY_A, number, dispensing(1))

    store.interpose(a_pharmacy_dispenses)
    state = await service.change_consent(PATIENT, number, consent=False)

    assert not state.execution_view_consent
    assert len(state.dispensations) == 1
    events = await store.events_of(number)
    assert isinstance(events[-1], ExecutionViewConsentChanged)
    assert events[-1].version == 3


async def test_a_withdrawal_racing_a_dispensing_elsewhere_withdraws_against_the_new_state() -> None:
    store = MemoryEventStore()
    service = service_on(store)
    number = await issued(service, 3)
    mine = await service.dispense(PHARMACY_A, number, dispensing(2))

    async def pharmacy_b_dispenses(_: Write) -> None:
        await service.dispense(PHARMACY_B, number, dispensing(1))

    store.interpose(pharmacy_b_dispenses)
    state = await service.withdraw(PHARMACY_A, number, withdrawal(mine.dispensation_id))

    assert store.refused == 1
    assert state.version == 4
    assert [d.withdrawn for d in state.dispensations] == [True, False]


async def test_the_failpoint_runs_after_each_durable_append_never_after_a_refused_one() -> None:
    store = MemoryEventStore()
    durable = []
    service = PrescriptionService(store, clock=clock, after_append=lambda: durable.append(1))
    number = await issued(service, 3)

    async def pharmacy_a_first(_: Write) -> None:
        await service.dispense(PHARMACY_A, number, dispensing(1))

    store.interpose(pharmacy_a_first)
    await service.dispense(PHARMACY_B, number, dispensing(1))

    assert store.refused == 1
    assert len(durable) == store.appends == 3  # issued, A's dispensing, B's
