"""The use cases of secure messaging: transmit a prescription (which opens a conversation), post
a message in a conversation.

Each appends in one transaction everything it decides: the transmission with the conversation
it opens and its first message, or a message with the conversation's closing. The e-mails are
inside the `MessagePosted` events, so the log is the outbox: what was recorded will be delivered
(`adapters.mailer`), and nothing is delivered that was not recorded.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence

import msgspec
import structlog

from adapters.messaging import ordonnance
from adapters.messaging.directory import MssanteDirectory
from adapters.permissions import allow
from adapters.service import MAX_ATTEMPTS, NOT_FOUND, ContentionError, paris_clock
from adapters.store import ConflictError, EventStore, Write
from domain.actors import Actor
from domain.calendar import Moment
from domain.conversation import (
    CONVERSATION_NOT_FOUND,
    Addresses,
    open_conversation,
    patient_address,
    post,
    posting_of,
)
from domain.conversation_state import Conversation, fold_conversation
from domain.decisions import sending
from domain.events import ConversationEvent, Event, MessagePosted, PrescriptionTransmitted
from domain.identifiers import Finess, InvalidIdentifier, PrescriptionNumber
from domain.prescription import Prescription, fold

log = structlog.get_logger("ordo.messaging")


class Transmitted(msgspec.Struct, frozen=True, kw_only=True):
    """A transmission's outcome: the prescription now, and the conversation it opened (the
    patient's; a prescriber's sending opens none: conversations are the patient's)."""

    state: Prescription
    conversation_id: str | None
    pharmacy_mailbox: bool  # False: the pharmacy has no BAL ORG (a patient is told so)


class Posted(msgspec.Struct, frozen=True, kw_only=True):
    conversation: Conversation
    message: MessagePosted


class ConversationService:
    def __init__(
        self,
        store: EventStore,
        directory: MssanteDirectory,
        postmaster: str,
        clock: Callable[[], Moment] = paris_clock,
        after_append: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.postmaster = postmaster
        self.clock = clock
        self._after_append = after_append

    async def transmit(
        self, actor: Actor, prescription_id: str, pharmacy: Finess, message: str
    ) -> Transmitted:
        """The patient sends their prescription to a pharmacy, which opens a new conversation
        each time; or the prescriber who wrote it does (a hospital at discharge, an EHPAD's
        doctor), which puts it in the pharmacy's inbox. Anyone else learns nothing (404)."""
        allow(actor, "transmit")
        for _ in range(MAX_ATTEMPTS):
            state = await self._prescription(prescription_id)
            if actor.role == "prescriber":
                if not actor.wrote(state.prescriber_rpps):
                    raise NOT_FOUND
                sent = self._with_ordonnance(
                    state, sending.transmit(state, pharmacy, message, self.clock(), "prescriber")
                )
                if await self._try_append([sent]):
                    return self._sent_by_prescriber(state, sent)
                continue
            if not actor.is_patient(state.patient_ins):
                raise NOT_FOUND
            transmitted = sending.transmit(state, pharmacy, message, self.clock())
            addresses = self._addresses(state, pharmacy.value)
            conversation_id = str(uuid.uuid4())
            first = posting_of(actor, str(uuid.uuid4()), _transmission_subject(state), message)
            opened, posted = open_conversation(
                state, transmitted, conversation_id, first, addresses
            )
            if await self._try_append([transmitted, opened, posted]):
                log.info(
                    "conversation opened",
                    conversation_id=conversation_id,
                    finess=pharmacy.value,
                    pharmacy_mailbox=addresses.pharmacy is not None,
                )
                after = fold([transmitted], state)
                assert after is not None
                return Transmitted(
                    state=after,
                    conversation_id=conversation_id,
                    pharmacy_mailbox=addresses.pharmacy is not None,
                )
        raise ContentionError(f"{MAX_ATTEMPTS} attempts lost to concurrent writers, retry later")

    def _with_ordonnance(
        self, state: Prescription, sent: PrescriptionTransmitted
    ) -> PrescriptionTransmitted:
        """The prescriber's sending carries the ordonnance to the BAL ORG, when the pharmacy
        has one (the inbox has it either way)."""
        bal_org = self.directory.bal_org(sent.finess)
        if bal_org is None:
            return sent
        mail = ordonnance.to_pharmacy(
            state, sent.version, sent.message, sent.finess, bal_org, self.postmaster
        )
        return msgspec.structs.replace(sent, mails=(mail,))

    def _sent_by_prescriber(
        self, state: Prescription, sent: PrescriptionTransmitted
    ) -> Transmitted:
        log.info("sent to a pharmacy by its prescriber", finess=sent.finess, mails=len(sent.mails))
        after = fold([sent], state)
        assert after is not None
        return Transmitted(state=after, conversation_id=None, pharmacy_mailbox=bool(sent.mails))

    async def send_to_patient(
        self, actor: Actor, prescription_id: str, message: str
    ) -> Prescription:
        """The prescriber who wrote it sends the ordonnance to the patient's Mon espace santé
        mailbox, for a patient who wants no paper. Another prescriber learns nothing (404)."""
        allow(actor, "send_to_patient")
        for _ in range(MAX_ATTEMPTS):
            state = await self._prescription(prescription_id)
            if not actor.wrote(state.prescriber_rpps):
                raise NOT_FOUND
            sent = sending.send_to_patient(state, message, self.clock())
            mail = ordonnance.to_patient(state, sent.version, message, self.postmaster)
            sent = msgspec.structs.replace(sent, mails=(mail,))
            if await self._try_append([sent]):
                log.info("ordonnance sent to the patient's mailbox", rpps=sent.prescriber_rpps)
                after = fold([sent], state)
                assert after is not None
                return after
        raise ContentionError(f"{MAX_ATTEMPTS} attempts lost to concurrent writers, retry later")

    async def post(self, actor: Actor, conversation_id: str, subject: str, body: str) -> Posted:
        """A message from the conversation's patient or from a pharmacist of its pharmacy."""
        stream = _conversation_stream(conversation_id)
        for _ in range(MAX_ATTEMPTS):
            conversation = fold_conversation(await self._conversation_events(stream))
            if conversation is None or not conversation.is_party(actor):
                raise CONVERSATION_NOT_FOUND  # others learn nothing, not even that it exists
            state = await self._prescription(conversation.prescription_id)
            posting = posting_of(actor, str(uuid.uuid4()), subject, body)
            addresses = self._addresses(state, conversation.finess)
            events = post(conversation, state, actor, posting, self.clock().at, addresses)
            if await self._try_append(events):
                after = fold_conversation(events, conversation)
                assert after is not None and isinstance(events[0], MessagePosted)
                log.info(
                    "message posted",
                    conversation_id=stream,
                    sender=posting.sender,
                    rpps=posting.rpps,
                    finess=conversation.finess,
                    closed=after.closed,
                    mails=len(events[0].mails),
                )
                return Posted(conversation=after, message=events[0])
        raise ContentionError(f"{MAX_ATTEMPTS} attempts lost to concurrent writers, retry later")

    async def conversation(self, actor: Actor, conversation_id: str) -> Conversation:
        """One conversation as its stream says now, for its parties only."""
        found = fold_conversation(
            await self._conversation_events(_conversation_stream(conversation_id))
        )
        if found is None or not found.is_party(actor):
            raise CONVERSATION_NOT_FOUND
        return found

    def _addresses(self, state: Prescription, finess: str) -> Addresses:
        return Addresses(
            pharmacy=self.directory.bal_org(finess),
            patient=patient_address(state.patient_ins),
            postmaster=self.postmaster,
            mail_domain=self.postmaster.rpartition("@")[2],
        )

    async def _prescription(self, prescription_id: str) -> Prescription:
        try:
            number = PrescriptionNumber.parse(prescription_id)
        except InvalidIdentifier:
            raise NOT_FOUND from None
        state = fold(await self.store.events_of(number.value))
        if state is None:
            raise NOT_FOUND
        return state

    async def _conversation_events(self, stream: str) -> list[ConversationEvent]:
        """A conversation's own stream (empty for an unknown id, or one that is not a
        conversation's)."""
        events = await self.store.events_of(stream)
        return [event for event in events if isinstance(event, ConversationEvent)]

    async def _try_append(self, events: Sequence[Event | ConversationEvent]) -> bool:
        try:
            await self.store.append(Write(events))
        except ConflictError:
            await asyncio.sleep(random.uniform(0, 0.005))
            return False
        self._after_append()
        return True


def _transmission_subject(state: Prescription) -> str:
    return f"Ordonnance {PrescriptionNumber(state.prescription_id).display()}"


def _conversation_stream(conversation_id: str) -> str:
    """Conversation ids are UUIDs; anything else names no conversation (and no other stream)."""
    try:
        return str(uuid.UUID(conversation_id))
    except ValueError:
        raise CONVERSATION_NOT_FOUND from None
