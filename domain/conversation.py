"""Conversations around a prescription, over MSSanté (seeds 000, 002, 003, 004).

A patient sends a prescription to a pharmacy's organisational mailbox (BAL ORG): that
transmission opens a conversation, the only way a patient starts one. The pharmacy answers
("prête à 18 h"); each of its messages carries the RPPS of the pharmacist who wrote it, since
the mailbox is shared by the team. A pharmacist closes the conversation by writing "FIN" in the
subject; the patient's messages are then refused, and a new transmission opens a new
conversation.

Each conversation is its own stream of events (`ConversationOpened`, `MessagePosted`,
`ConversationClosed`), folded by `domain.conversation_state`. The e-mails a message causes are
decided here too and recorded in its `MessagePosted` (the log is the outbox): who receives
what, under which `Message-ID`, with what remains to dispense at that moment. Addresses come in
from the directory, already looked up.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from domain.actors import Actor
from domain.conversation_state import Conversation
from domain.errors import DomainError
from domain.events import (
    Attachment,
    ConversationClosed,
    ConversationEvent,
    ConversationOpened,
    Mail,
    MessagePosted,
    Party,
    PrescriptionTransmitted,
    RemainingLine,
)
from domain.prescription import Prescription
from domain.views import remaining_units

MSSANTE_DOMAIN = "mssante.fr"
PATIENT_DOMAIN = "patient.mssante.fr"
CLOSING_SUBJECT = "fin"

CONVERSATION_NOT_FOUND = DomainError("not_found", "no such conversation")


class Addresses(msgspec.Struct, frozen=True, kw_only=True):
    """Where the e-mails of one message go, as the MSSanté directory says now.

    `pharmacy` is the pharmacy's BAL ORG, None when the directory knows none; `postmaster`
    writes the notices (a pharmacy without a mailbox) and what a pharmacy without one sends.
    """

    pharmacy: str | None
    patient: str
    postmaster: str
    mail_domain: str  # the right-hand side of our Message-IDs


class Posting(msgspec.Struct, frozen=True, kw_only=True):
    """One message to post: who writes (and their RPPS for a pharmacist), subject and body."""

    message_id: str
    sender: Party
    rpps: str | None
    subject: str
    body: str


# --- addresses -------------------------------------------------------------------------------


MSSANTE_ADDRESS = re.compile(r"[^@\s]+@(?:[a-z0-9-]+\.)*mssante\.fr")


def is_mssante(address: str) -> bool:
    """Only MSSanté addresses (under `mssante.fr`) may exchange within the trust space."""
    return MSSANTE_ADDRESS.fullmatch(address.strip().lower()) is not None


def patient_address(patient_ins: str) -> str:
    """The patient's Mon espace santé mailbox: `<INS matricule>@patient.mssante.fr`."""
    return f"{patient_ins}@{PATIENT_DOMAIN}"


def closes(subject: str) -> bool:
    """ "FIN" in the subject closes the conversation, whatever its case and surrounding spaces."""
    return subject.strip().casefold() == CLOSING_SUBJECT


# --- commands --------------------------------------------------------------------------------


def open_conversation(
    state: Prescription,
    transmitted: PrescriptionTransmitted,
    conversation_id: str,
    first: Posting,
    addresses: Addresses,
) -> tuple[ConversationOpened, MessagePosted]:
    """The transmission's conversation and its first message (the patient's), appended with
    the transmission in one transaction."""
    opened = ConversationOpened(
        prescription_id=state.prescription_id,
        conversation_id=conversation_id,
        version=1,
        at=transmitted.at,
        finess=transmitted.finess,
        patient_ins=state.patient_ins,
    )
    posted = _posted(opened.version + 1, transmitted.at, opened, state, first, addresses)
    return opened, posted


def post(  # noqa: PLR0917 - the conversation, the prescription, who, what, when, where to
    conversation: Conversation,
    state: Prescription,
    author: Actor,
    posting: Posting,
    at: datetime,
    addresses: Addresses,
) -> list[ConversationEvent]:
    """A message from one of the conversation's parties; "FIN" from the pharmacy closes it."""
    if not conversation.is_party(author):
        raise CONVERSATION_NOT_FOUND
    if conversation.closed:
        raise DomainError(
            "conversation_closed",
            "this conversation was closed by the pharmacy; a new transmission opens a new one",
        )
    posted = _posted(conversation.version + 1, at, conversation, state, posting, addresses)
    if posting.sender != "pharmacy" or not closes(posting.subject):
        return [posted]
    assert posting.rpps is not None  # a pharmacist's message carries who wrote it
    closed = ConversationClosed(
        prescription_id=conversation.prescription_id,
        conversation_id=conversation.conversation_id,
        version=posted.version + 1,
        at=at,
        rpps=posting.rpps,
    )
    return [posted, closed]


def posting_of(author: Actor, message_id: str, subject: str, body: str) -> Posting:
    """Who writes, as the conversation records it: the patient, or a pharmacist by RPPS."""
    if author.role == "pharmacist":
        return Posting(
            message_id=message_id, sender="pharmacy", rpps=author.rpps, subject=subject, body=body
        )
    return Posting(message_id=message_id, sender="patient", rpps=None, subject=subject, body=body)


def _posted(  # noqa: PLR0917
    version: int,
    at: datetime,
    conversation: ConversationOpened | Conversation,
    state: Prescription,
    posting: Posting,
    addresses: Addresses,
) -> MessagePosted:
    return MessagePosted(
        prescription_id=conversation.prescription_id,
        conversation_id=conversation.conversation_id,
        version=version,
        at=at,
        message_id=posting.message_id,
        sender=posting.sender,
        rpps=posting.rpps,
        subject=posting.subject,
        body=posting.body,
        mails=mails_for(state, posting, addresses),
    )


# --- the e-mails a message causes ------------------------------------------------------------


def mails_for(state: Prescription, posting: Posting, addresses: Addresses) -> tuple[Mail, ...]:
    """The patient's message goes to the BAL ORG with the QR code; the pharmacy's to the
    patient's mailbox. A pharmacy without a BAL ORG cannot be written to: as MSSanté does, the
    patient is told so by a notice instead."""
    remaining = remaining_lines(state)
    if posting.sender == "pharmacy":
        return (
            Mail(
                message_id=message_id_header(posting.message_id, addresses.mail_domain),
                kind="message",
                sender=addresses.pharmacy or addresses.postmaster,
                recipient=addresses.patient,
                subject=posting.subject,
                body=posting.body,
                prescription_id=state.prescription_id,
                remaining=remaining,
            ),
        )
    if addresses.pharmacy is None:
        return (
            Mail(
                message_id=message_id_header(f"{posting.message_id}.notice", addresses.mail_domain),
                kind="no_mailbox_notice",
                sender=addresses.postmaster,
                recipient=addresses.patient,
                subject=f"Non distribué : {posting.subject}",
                body=posting.body,
                prescription_id=state.prescription_id,
                remaining=remaining,
            ),
        )
    return (
        Mail(
            message_id=message_id_header(posting.message_id, addresses.mail_domain),
            kind="message",
            sender=addresses.patient,
            recipient=addresses.pharmacy,
            subject=posting.subject,
            body=posting.body,
            prescription_id=state.prescription_id,
            remaining=remaining,
            attachments=(qr_code(state.prescription_id),),
        ),
    )


def qr_code(prescription_id: str) -> Attachment:
    """The prescription's QR code, shown in the pharmacy's e-mail: scanning it reads the number."""
    return Attachment(
        kind="qr_png",
        ref=prescription_id,
        filename=f"ordonnance-{prescription_id}.png",
        content_type="image/png",
        inline=True,
    )


def message_id_header(message_id: str, domain: str) -> str:
    return f"<{message_id}@{domain}>"


def remaining_lines(state: Prescription) -> tuple[RemainingLine, ...]:
    """What remains to dispense of each line at this moment, as the read counts it (nothing
    once cancelled; in units where `state` knows its packs' units)."""
    return tuple(
        RemainingLine(
            line_no=line.line_no,
            label=line.prescribed.product.label,
            remaining=state.remaining(line.line_no),
            quantity=line.prescribed.quantity,
            remaining_units=remaining_units(state, line),
        )
        for line in state.lines
    )
