"""The messaging use cases on the event store in memory: a race is decided again, all or none.

Given a prescription (and a conversation), when a transmission or a message is decided while a
competing writer appends in between, then it is decided again against the new state, and what
its lost attempt would have appended (a conversation, a message) is nowhere in the log.
"""

from __future__ import annotations

import pytest

from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.service import ConversationService
from adapters.store import Write
from domain.errors import DomainError
from domain.events import (
    ConversationClosed,
    ConversationEvent,
    MessagePosted,
    PrescriptionSentToPatient,
)
from domain.identifiers import Finess
from tests.adapters.givens import (
    PATIENT,
    PEOPLE,
    PHARMACY_A,
    PRESCRIBER,
    clock,
    dispensing,
    issued,
    service_on,
)
from tests.adapters.memory_store import MemoryEventStore


def conversations_on(store: MemoryEventStore) -> ConversationService:
    return ConversationService(
        store, MssanteDirectory(None), "ne-pas-repondre@ordo.mssante.fr", clock=clock
    )


def conversation_of(write: Write) -> str:
    """The conversation a transmission's append opens."""
    return next(e.conversation_id for e in write.events if isinstance(e, ConversationEvent))


async def test_a_message_racing_the_pharmacys_closing_finds_the_conversation_closed() -> None:
    store = MemoryEventStore()
    conversations = conversations_on(store)
    number = await issued(service_on(store), 3)
    opened = await conversations.transmit(PATIENT, number, Finess(PEOPLE.pharmacy), "Bonjour")
    conversation = opened.conversation_id
    assert conversation is not None

    async def the_pharmacy_closes(_: Write) -> None:
        await conversations.post(PHARMACY_A, conversation, "FIN", "Prête.")

    store.interpose(the_pharmacy_closes)
    with pytest.raises(DomainError) as refused:
        await conversations.post(PATIENT, conversation, "Question", "Et demain ?")

    assert refused.value.code == "conversation_closed"
    stream = await store.events_of(conversation)
    assert isinstance(stream[-1], ConversationClosed)
    assert [e.sender for e in stream if isinstance(e, MessagePosted)] == ["patient", "pharmacy"]


async def test_a_transmission_racing_a_dispensing_opens_one_conversation() -> None:
    store = MemoryEventStore()
    service, conversations = service_on(store), conversations_on(store)
    number = await issued(service, 3)
    lost = []

    async def a_pharmacy_dispenses(write: Write) -> None:
        lost.append(conversation_of(write))
        await service.dispense(PHARMACY_A, number, dispensing(1))

    store.interpose(a_pharmacy_dispenses)
    transmitted = await conversations.transmit(PATIENT, number, Finess(PEOPLE.pharmacy), "Bonjour")

    assert transmitted.state.version == 3
    assert transmitted.conversation_id is not None
    assert transmitted.conversation_id not in lost
    assert await store.events_of(lost[0]) == []
    assert len(await store.events_of(transmitted.conversation_id)) == 2  # opened, first message


async def test_an_ordonnance_sent_to_the_patient_while_a_pharmacy_dispenses_is_sent_once() -> None:
    store = MemoryEventStore()
    service, conversations = service_on(store), conversations_on(store)
    number = await issued(service, 3)

    async def a_pharmacy_dispenses(_: Write) -> None:
        await service.dispense(PHARMACY_A, number, dispensing(1))

    store.interpose(a_pharmacy_dispenses)
    state = await conversations.send_to_patient(PRESCRIBER, number, "Votre ordonnance")

    assert state.version == 3
    sent = [e for e in await store.events_of(number) if isinstance(e, PrescriptionSentToPatient)]
    assert [e.version for e in sent] == [3]
    assert len(sent[0].mails) == 1
