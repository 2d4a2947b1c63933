"""The facts of a prescription's life, as recorded in the append-only log.

Events are a public, versioned schema: other machines read them from Kafka, and the log keeps
them forever. A field is never renamed or removed in place; a new version is added and the
old one is upcast on load (see `UPCASTERS`). Identifiers are stored in their canonical text
form, already validated by the command that produced the event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar, Literal

import msgspec

ProductSystem = Literal["CIP13", "UCD", "DCI"]
PrescriptionKind = Literal["standard", "secure"]
ConsentActor = Literal["patient", "insurer"]
# Who sent a prescription to a pharmacy: the patient (their choice of pharmacy), or the
# prescriber who wrote it (a hospital at discharge, an EHPAD's doctor).
TransmissionSender = Literal["patient", "prescriber"]
# The prescriber's "non substituable" mention and its reason (CSP L5125-23, arrêté of 12
# November 2019): narrow therapeutic margin, a child under 6, a contra-indicated excipient.
NonSubstitutionReason = Literal["MTE", "EFG", "CIF"]
# The pharmacist's own exclusion for a narrow-therapeutic-margin substance (arrêté of 30 January
# 2020), written "non substituable (MTE-PH)".
PharmacistNonSubstitution = Literal["MTE-PH"]
# The pharmacist's own procedures (`domain.procedures`): continuing a chronic treatment on an
# expired renewable prescription (CSP L5125-23-1, R5123-2-1), or oral contraceptives once
# everything prescribed was given (CSP R5134-4-1/-2).
Procedure = Literal["exceptional_supply", "contraceptive_extension"]


class Product(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A medicine as written: a pack (CIP13), a unit (UCD) or a substance name (DCI)."""

    system: ProductSystem
    code: str | None = None
    label: str


class NonSubstitutable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The prescriber's "non substituable" mention on a line, with its reason."""

    reason: NonSubstitutionReason


class PrescribedLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the prescription; `quantity` counts packs over the whole life of the line."""

    line_no: int
    product: Product
    quantity: int
    dosage: str
    duration_days: int
    narcotic: bool
    # v1.1 additions, defaulted so that lines recorded before them read as they were written.
    assimilated: bool = False
    fraction_days: int | None = None
    overlap_allowed: bool = False
    # v1.2 addition, defaulted: lines recorded before it were substitutable.
    non_substitutable: NonSubstitutable | None = None
    # The pharmacy named on the prescription (CSS L162-4-2), the only one that may dispense the
    # line; lines recorded before it named none.
    designated_finess: str | None = None

    @property
    def secure_only(self) -> bool:
        """Narcotics and assimilated products (tramadol, codeine…) need a secure prescription."""
        return self.narcotic or self.assimilated


class DispensedLine(msgspec.Struct, frozen=True, kw_only=True):
    """What was handed over for one line; `product` is the pack actually given (substitution)."""

    line_no: int
    quantity: int
    product: Product
    # v1.2 additions, defaulted so that lines recorded before them read as they were: the
    # patient refused the generic offered; the pharmacist's own exclusion; the biosimilar's lot.
    generic_refused: bool = False
    non_substitution: PharmacistNonSubstitution | None = None
    lot: str | None = None


class BilledLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    quantity: int
    amount_cents: int


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Common envelope: which prescription, at which version of it, and when it happened."""

    schema_version: ClassVar[int] = 1

    prescription_id: str
    version: int
    at: datetime


class PrescriptionIssued(Event, frozen=True, kw_only=True):
    """The prescriber registered the prescription (enregistrement, SEL_MP_040)."""

    prescriber_rpps: str
    patient_ins: str
    issued_on: date
    kind: PrescriptionKind
    execution_view_consent: bool
    lines: tuple[PrescribedLine, ...]
    # Each line as the prescriber's software wrote it, in its own format (the FHIR door keeps a
    # MedicationRequest's JSON here), so that a read gives back what was sent; opaque to the
    # rules, and empty for a prescription sent as /v1 JSON.
    lines_as_sent: tuple[str, ...] = ()


class DispensationRecorded(Event, frozen=True, kw_only=True):
    """A pharmacy handed over packs and recorded it (délivrance "au fil de l'eau").

    `at` is when the server recorded it; `dispensed_at` when the packs were handed over, which
    an LGO recording after a network outage may give up to 72 hours earlier (v2; a v1 event
    was recorded at once, so its `dispensed_at` is its `at`).
    """

    schema_version: ClassVar[int] = 2

    dispensation_id: str
    finess: str
    pharmacist_rpps: str
    dispensed_at: datetime
    lines: tuple[DispensedLine, ...]
    # Each line as the pharmacy's software wrote it (a FHIR MedicationDispense's JSON), opaque
    # to the rules; empty for a dispensing sent as /v1 JSON.
    lines_as_sent: tuple[str, ...] = ()
    # The e-mails it causes (the log is the outbox): the prescriber told of a "non substituable
    # (MTE-PH)" exclusion, of an exceptional supply. Defaulted: older events had none.
    mails: tuple[Mail, ...] = ()
    # The pharmacist's own procedure it was given under (`domain.procedures`); None: the
    # prescription itself, as every dispensing recorded before procedures were.
    procedure: Procedure | None = None


class DispensationWithdrawn(Event, frozen=True, kw_only=True):
    """The pharmacy that recorded a dispensing in error withdrew it: it counts nowhere now."""

    dispensation_id: str
    finess: str
    pharmacist_rpps: str
    reason: str


class AdaptationRecorded(Event, frozen=True, kw_only=True):
    """A pharmacist changed a line with the prescriber's agreement (adaptation, CSP)."""

    line_no: int
    description: str
    agreed_by_rpps: str
    agreed_on: date
    finess: str
    pharmacist_rpps: str
    dispensation_id: str | None = None


class BillingRecorded(Event, frozen=True, kw_only=True):
    """The pharmacy sent the billing data of one dispensation (exécution en 2 temps)."""

    dispensation_id: str
    finess: str
    pharmacist_rpps: str
    invoice_number: str
    lines: tuple[BilledLine, ...]


class PrescriptionCancelled(Event, frozen=True, kw_only=True):
    """The prescriber cancelled what remains of the prescription."""

    prescriber_rpps: str
    reason: str


class ExecutionViewConsentChanged(Event, frozen=True, kw_only=True):
    """The patient (or the insurer on their behalf) allowed or opposed the prescriber's view."""

    consent: bool
    changed_by: ConsentActor


class PrescriptionTransmitted(Event, frozen=True, kw_only=True):
    """The prescription was sent to a pharmacy's mailbox (MSSanté BAL ORG), by the patient or
    by the prescriber who wrote it (`sent_by`; the prescriber is the prescription's)."""

    finess: str
    message: str
    # v1.2 addition, defaulted: every transmission recorded before it was the patient's.
    sent_by: TransmissionSender = "patient"
    # The prescriber's sending carries the ordonnance to the BAL ORG (the patient's opens a
    # conversation, whose first message carries theirs). Defaulted: older events had none.
    mails: tuple[Mail, ...] = ()


class PrescriptionSentToPatient(Event, frozen=True, kw_only=True):
    """The prescriber who wrote it sent the ordonnance to the patient's Mon espace santé
    mailbox (MSSanté), for a patient who wants no paper."""

    prescriber_rpps: str
    message: str
    # The e-mail to the patient's mailbox, the PDF attached (the log is the outbox).
    mails: tuple[Mail, ...] = ()


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """A part of an e-mail rendered when it is delivered, from a reference the event keeps.

    `kind` names the renderer (`qr_png`: the prescription's QR code); `ref` is what it renders
    (a prescription number). An event stays small and never holds a document's bytes; a new kind
    of attachment (the ordonnance as a PDF) is a new renderer, not a new event schema.
    """

    kind: str
    ref: str
    filename: str
    content_type: str
    inline: bool = False  # shown in the HTML body by its Content-ID rather than attached


class RemainingLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What remains to dispense of one line when the e-mail was written: packs of the prescribed
    size, and units on a line counted in units (absent on a line counted in packs, and in the
    e-mails recorded before they were counted)."""

    line_no: int
    label: str
    remaining: int
    quantity: int
    remaining_units: int | None = None


MailKind = Literal[
    "message",
    "no_mailbox_notice",
    "ordonnance",
    "non_substitution_notice",
    "exceptional_supply_notice",
]


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    """An e-mail to deliver, recorded in the event that causes it (the log is the outbox).

    Everything the mailer needs to write it is here, as it stood when the message was posted:
    delivering it later, or again after a crash, writes the same e-mail with the same
    `Message-ID`. The recipient is an MSSanté address; the patient's carries their INS, so it is
    never logged in clear.
    """

    message_id: str  # the Message-ID header, angle brackets included
    kind: MailKind
    sender: str
    recipient: str
    subject: str
    body: str
    prescription_id: str
    remaining: tuple[RemainingLine, ...]
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str | None = None


Party = Literal["patient", "pharmacy"]


class ConversationEvent(Event, frozen=True, kw_only=True):
    """A fact of a conversation (MSSanté) about a prescription; each conversation is its own
    stream (`conversation_id`) and `version` counts that stream's events, not the
    prescription's. `prescription_id` keys it on Kafka next to the prescription's events."""

    conversation_id: str


class ConversationOpened(ConversationEvent, frozen=True, kw_only=True):
    """A transmission opened a conversation between the patient and the pharmacy's BAL ORG."""

    finess: str
    patient_ins: str


class MessagePosted(ConversationEvent, frozen=True, kw_only=True):
    """A message in the conversation; a pharmacy's carries the RPPS of who wrote it (the BAL ORG
    is shared by the team). `mails` are the e-mails it causes, delivered by the mailer."""

    message_id: str
    sender: Party
    rpps: str | None
    subject: str
    body: str
    mails: tuple[Mail, ...] = ()


class ConversationClosed(ConversationEvent, frozen=True, kw_only=True):
    """A pharmacist wrote "FIN" in a subject: the conversation is over."""

    rpps: str


PrescriptionEvent = (
    PrescriptionIssued
    | DispensationRecorded
    | DispensationWithdrawn
    | AdaptationRecorded
    | BillingRecorded
    | PrescriptionCancelled
    | ExecutionViewConsentChanged
    | PrescriptionTransmitted
    | PrescriptionSentToPatient
    | ConversationOpened
    | MessagePosted
    | ConversationClosed
)

EVENT_TYPES: tuple[type[Event], ...] = (
    PrescriptionIssued,
    DispensationRecorded,
    DispensationWithdrawn,
    AdaptationRecorded,
    BillingRecorded,
    PrescriptionCancelled,
    ExecutionViewConsentChanged,
    PrescriptionTransmitted,
    PrescriptionSentToPatient,
    ConversationOpened,
    MessagePosted,
    ConversationClosed,
)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _handed_over_when_recorded(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "dispensed_at": payload["at"]}


# (event name, stored schema version) -> function turning that payload into the next version;
# the mapper applies these in a chain on load.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("DispensationRecorded", 1): _handed_over_when_recorded,
}
