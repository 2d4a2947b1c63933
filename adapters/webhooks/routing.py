"""Who receives which pushes, and what each says: a pure fold over a prescription's events.

Per prescription the deliverer keeps a `Watch`: its prescriber, whether the patient lets the
prescriber see its execution, the pharmacies it was transmitted to, and the pharmacy of each of
its conversations. From it:

    transmission         to the pharmacy it was sent to
    cancellation         to its prescriber, and to the pharmacies it was sent to
    message              the patient's, to the pharmacy of the conversation
    dispensed_elsewhere  to the pharmacies it was sent to but another dispensed it, and to the
                         prescriber unless the patient opposes their view of its execution

A delivery's body is written from the fields its subscriber may read, never the whole event; the
prescription's number is in the grouped form the API answers with.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from domain.events import (
    ConversationOpened,
    DispensationRecorded,
    Event,
    ExecutionViewConsentChanged,
    MessagePosted,
    PrescriptionCancelled,
    PrescriptionIssued,
    PrescriptionTransmitted,
)
from domain.views import display_number

Owner = Literal["pharmacy", "prescriber"]
Kind = Literal["transmission", "cancellation", "message", "dispensed_elsewhere"]


class Push(msgspec.Struct, frozen=True, kw_only=True):
    """What one event pushes to the subscriptions of one owner."""

    kind: Kind
    owner: Owner
    owner_id: str
    data: dict[str, str]


class Watch(msgspec.Struct, frozen=True, kw_only=True):
    """What a prescription's pushes depend on."""

    prescriber_rpps: str = ""
    prescriber_sees_execution: bool = True
    pharmacies: tuple[str, ...] = ()
    conversations: dict[str, str] = msgspec.field(default_factory=dict)  # id -> FINESS


def follow(watch: Watch, event: Event) -> tuple[Watch, tuple[Push, ...]]:
    """The watch after `event`, and the pushes it causes."""
    if isinstance(event, PrescriptionIssued):
        sees = event.execution_view_consent
        issued = Watch(prescriber_rpps=event.prescriber_rpps, prescriber_sees_execution=sees)
        return issued, ()
    if isinstance(event, ExecutionViewConsentChanged):
        return msgspec.structs.replace(watch, prescriber_sees_execution=event.consent), ()
    if isinstance(event, ConversationOpened):
        opened = {**watch.conversations, event.conversation_id: event.finess}
        return msgspec.structs.replace(watch, conversations=opened), ()
    if isinstance(event, PrescriptionTransmitted):
        sent = tuple(dict.fromkeys((*watch.pharmacies, event.finess)))
        return msgspec.structs.replace(watch, pharmacies=sent), (_transmission(event),)
    return watch, _pushes(watch, event)


def _pushes(watch: Watch, event: Event) -> tuple[Push, ...]:
    about = {"prescription_id": display_number(event.prescription_id)}
    if isinstance(event, PrescriptionCancelled):
        data = {**about, "reason": event.reason}
        return (
            _to("prescriber", event.prescriber_rpps, "cancellation", data),
            *(_to("pharmacy", finess, "cancellation", data) for finess in watch.pharmacies),
        )
    if isinstance(event, MessagePosted) and event.sender == "patient":
        finess = watch.conversations.get(event.conversation_id)
        data = {**about, "conversation_id": event.conversation_id, "message_id": event.message_id}
        message = {**data, "subject": event.subject, "body": event.body}
        return () if finess is None else (_to("pharmacy", finess, "message", message),)
    if isinstance(event, DispensationRecorded):
        elsewhere = [f for f in watch.pharmacies if f != event.finess]
        told = [_to("pharmacy", finess, "dispensed_elsewhere", about) for finess in elsewhere]
        if watch.prescriber_sees_execution and watch.prescriber_rpps:
            told.append(_to("prescriber", watch.prescriber_rpps, "dispensed_elsewhere", about))
        return tuple(told)
    return ()


def _transmission(event: PrescriptionTransmitted) -> Push:
    data = {
        "prescription_id": display_number(event.prescription_id),
        "finess": event.finess,
        "message": event.message,
        "sent_by": event.sent_by,
    }
    return _to("pharmacy", event.finess, "transmission", data)


def _to(owner: Owner, owner_id: str, kind: Kind, data: dict[str, str]) -> Push:
    return Push(kind=kind, owner=owner, owner_id=owner_id, data=data)


def body_of(push: Push, event: Event) -> bytes:
    """The JSON a receiver gets: `type`, `timestamp` and `data`, as Standard Webhooks suggests."""
    return msgspec.json.encode(
        {"type": push.kind, "timestamp": event.at.isoformat(), "data": push.data}
    )
