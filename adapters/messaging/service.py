"""The use cases of secure messaging: transmit a prescription (which opens a conversation), post
a message in a conversation.

Each decides and appends in a unit of work (`adapters.unit_of_work`: decided again when another
writer got there first), in one transaction everything it decides: the transmission with the
conversation it opens and its first message, or a message with the conversation's closing. The
e-mails are inside the `MessagePosted` events, so the log is the outbox: what was recorded will
be delivered (`adapters.mailer`), and nothing is delivered that was not recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec
import structlog

from adapters.messaging import ordonnance
from adapters.messaging.directory import MssanteDirectory
from adapters.permissions import allow
from adapters.service import paris_clock
from adapters.store import EventStore
from adapters.unit_of_work import (
    NOT_FOUND,
    Decision,
    IdempotentRequest,
    Prescriptions,
    StateCache,
    UnitOfWork,
    idempotent_request,
    prescription_request,
)
from domain.actors import Actor
from domain.calendar import Moment
from domain.catalogue import PackLookup, sized
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
from domain.events import Event, MessagePosted, PrescriptionTransmitted
from domain.identifiers import Finess, PrescriptionNumber
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
        *,
        catalogue: Callable[[], PackLookup | None] = lambda: None,
    ) -> None:
        self.directory = directory
        self.postmaster = postmaster
        self.clock = clock
        # The catalogue snapshot in force (None: none imported): a prescription's lines are
        # counted in units where it knows their packs, as the read counts them.
        self._packs = catalogue
        # A prescription is transmitted a few times in its life: no folded states are kept.
        # `after_append`: a failpoint for crash tests, run once an append is durable.
        self._uow = UnitOfWork(store, StateCache(size=0), after_append)

    async def transmit(
        self,
        actor: Actor,
        prescription_id: str,
        pharmacy: Finess,
        message: str,
        idempotency_key: str | None = None,
    ) -> Transmitted:
        """The patient sends their prescription to a pharmacy, which opens a new conversation
        each time; or the prescriber who wrote it does (a hospital at discharge, an EHPAD's
        doctor), which puts it in the pharmacy's inbox. Anyone else learns nothing (404).
        With an `Idempotency-Key`, a retry gets the first answer and opens nothing more."""
        allow(actor, "transmit")
        asked = ("transmit", pharmacy.value, message)
        request = prescription_request(actor, idempotency_key, prescription_id, *asked)
        if actor.role == "prescriber":
            return await self._sent_by_prescriber(
                actor, prescription_id, pharmacy, message, request
            )
        return await self._opened_by_patient(actor, prescription_id, pharmacy, message, request)

    async def _opened_by_patient(
        self,
        actor: Actor,
        prescription_id: str,
        pharmacy: Finess,
        message: str,
        request: IdempotentRequest | None,
    ) -> Transmitted:
        """The transmission, the conversation it opens and its first message, in one append."""

        async def attempt(prescriptions: Prescriptions) -> Decision[Transmitted]:
            state = await self._load(prescriptions, prescription_id)
            if not actor.is_patient(state.patient_ins):
                raise NOT_FOUND
            transmitted = sending.transmit(state, pharmacy, message, self.clock())
            addresses = self._addresses(state, pharmacy.value)
            conversation_id = str(uuid.uuid4())
            first = posting_of(actor, str(uuid.uuid4()), _transmission_subject(state), message)
            opened, posted = open_conversation(
                state, transmitted, conversation_id, first, addresses
            )
            outcome = Transmitted(
                state=_evolved(state, transmitted),
                conversation_id=conversation_id,
                pharmacy_mailbox=addresses.pharmacy is not None,
            )
            return Decision(outcome, [transmitted, opened, posted])

        transmitted = await self._uow.decide_once(request, attempt, Transmitted)
        log.info(
            "conversation opened",
            conversation_id=transmitted.conversation_id,
            finess=pharmacy.value,
            pharmacy_mailbox=transmitted.pharmacy_mailbox,
        )
        return transmitted

    async def _sent_by_prescriber(
        self,
        actor: Actor,
        prescription_id: str,
        pharmacy: Finess,
        message: str,
        request: IdempotentRequest | None,
    ) -> Transmitted:
        """The transmission to the pharmacy's inbox, by the prescriber who wrote it."""

        async def attempt(prescriptions: Prescriptions) -> Decision[Transmitted]:
            state = await self._load(prescriptions, prescription_id)
            if not actor.wrote(state.prescriber_rpps):
                raise NOT_FOUND
            sent = self._with_ordonnance(
                state, sending.transmit(state, pharmacy, message, self.clock(), "prescriber")
            )
            outcome = Transmitted(
                state=_evolved(state, sent), conversation_id=None, pharmacy_mailbox=bool(sent.mails)
            )
            return Decision(outcome, [sent])

        sent = await self._uow.decide_once(request, attempt, Transmitted)
        log.info(
            "sent to a pharmacy by its prescriber",
            finess=pharmacy.value,
            pharmacy_mailbox=sent.pharmacy_mailbox,
        )
        return sent

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

    async def send_to_patient(
        self,
        actor: Actor,
        prescription_id: str,
        message: str,
        idempotency_key: str | None = None,
    ) -> Prescription:
        """The prescriber who wrote it sends the ordonnance to the patient's Mon espace santé
        mailbox, for a patient who wants no paper. Another prescriber learns nothing (404).
        With an `Idempotency-Key`, a retry gets the first answer and sends nothing more."""
        allow(actor, "send_to_patient")
        request = prescription_request(
            actor, idempotency_key, prescription_id, "send_to_patient", message
        )

        async def attempt(prescriptions: Prescriptions) -> Decision[Prescription]:
            state = await self._load(prescriptions, prescription_id)
            if not actor.wrote(state.prescriber_rpps):
                raise NOT_FOUND
            sent = sending.send_to_patient(state, message, self.clock())
            mail = ordonnance.to_patient(state, sent.version, message, self.postmaster)
            sent = msgspec.structs.replace(sent, mails=(mail,))
            return Decision(_evolved(state, sent), [sent])

        after = await self._uow.decide_once(request, attempt, Prescription)
        log.info("ordonnance sent to the patient's mailbox", rpps=actor.rpps)
        return after

    async def post(
        self,
        actor: Actor,
        conversation_id: str,
        subject: str,
        body: str,
        idempotency_key: str | None = None,
    ) -> Posted:
        """A message from the conversation's patient or from a pharmacist of its pharmacy;
        with an `Idempotency-Key`, a retry gets the first answer and posts nothing more."""
        stream = _conversation_stream(conversation_id)
        request = idempotent_request(actor, idempotency_key, stream, "post", subject, body)

        async def attempt(prescriptions: Prescriptions) -> Decision[Posted]:
            conversation = await prescriptions.conversation(stream)
            if conversation is None or not conversation.is_party(actor):
                raise CONVERSATION_NOT_FOUND  # others learn nothing, not even that it exists
            state = await self._load(prescriptions, conversation.prescription_id)
            posting = posting_of(actor, str(uuid.uuid4()), subject, body)
            addresses = self._addresses(state, conversation.finess)
            events = post(conversation, state, actor, posting, self.clock().at, addresses)
            after = fold_conversation(events, conversation)
            assert after is not None and isinstance(events[0], MessagePosted)
            return Decision(Posted(conversation=after, message=events[0]), events)

        posted = await self._uow.decide_once(request, attempt, Posted)
        log.info(
            "message posted",
            conversation_id=stream,
            sender=posted.message.sender,
            rpps=posted.message.rpps,
            finess=posted.conversation.finess,
            closed=posted.conversation.closed,
            mails=len(posted.message.mails),
        )
        return posted

    async def conversation(self, actor: Actor, conversation_id: str) -> Conversation:
        """One conversation as its stream says now, for its parties only."""
        found = await self._uow.prescriptions.conversation(_conversation_stream(conversation_id))
        if found is None or not found.is_party(actor):
            raise CONVERSATION_NOT_FOUND
        return found

    async def _load(self, prescriptions: Prescriptions, prescription_id: str) -> Prescription:
        """The prescription with the units of its packs (`domain.catalogue.sized`): what is
        left of it, in its e-mails and in the decision whether anything is, as the read says."""
        return sized(await prescriptions.load(prescription_id), self._packs())

    def _addresses(self, state: Prescription, finess: str) -> Addresses:
        return Addresses(
            pharmacy=self.directory.bal_org(finess),
            patient=patient_address(state.patient_ins),
            postmaster=self.postmaster,
            mail_domain=self.postmaster.rpartition("@")[2],
        )


def _evolved(state: Prescription, event: Event) -> Prescription:
    after = fold([event], state)
    assert after is not None
    return after


def _transmission_subject(state: Prescription) -> str:
    return f"Ordonnance {PrescriptionNumber(state.prescription_id).display()}"


def _conversation_stream(conversation_id: str) -> str:
    """Conversation ids are UUIDs; anything else names no conversation (and no other stream)."""
    try:
        return str(uuid.UUID(conversation_id))
    except ValueError:
        raise CONVERSATION_NOT_FOUND from None
