"""A conversation as its own events say: the fold of its stream (`ConversationOpened`,
`MessagePosted`, `ConversationClosed`). The decisions about it are `domain.conversation`'s;
a prescription's state holds its conversations as folded here (the read side's fold)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import msgspec

from domain.actors import Actor
from domain.events import (
    ConversationClosed,
    ConversationEvent,
    ConversationOpened,
    MessagePosted,
    Party,
)


class Message(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    sender: Party
    rpps: str | None
    subject: str
    body: str
    at: datetime


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation as its own events say (its stream's fold)."""

    conversation_id: str
    prescription_id: str
    finess: str
    patient_ins: str
    version: int
    opened_at: datetime
    last_activity_at: datetime
    messages: tuple[Message, ...] = ()
    closed_at: datetime | None = None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def status(self) -> Literal["open", "closed"]:
        return "closed" if self.closed else "open"

    def is_party(self, actor: Actor) -> bool:
        """The patient it is with, or a pharmacist of its pharmacy; nobody else sees it."""
        if actor.role == "pharmacist":
            return actor.finess == self.finess
        return actor.is_patient(self.patient_ins)


def evolve_conversation(event: ConversationEvent, state: Conversation | None) -> Conversation:
    if isinstance(event, ConversationOpened):
        return Conversation(
            conversation_id=event.conversation_id,
            prescription_id=event.prescription_id,
            finess=event.finess,
            patient_ins=event.patient_ins,
            version=event.version,
            opened_at=event.at,
            last_activity_at=event.at,
        )
    if state is None:
        msg = f"{type(event).__name__} before ConversationOpened for {event.conversation_id}"
        raise ValueError(msg)
    if isinstance(event, MessagePosted):
        return msgspec.structs.replace(
            state,
            version=event.version,
            last_activity_at=event.at,
            messages=(*state.messages, message_of(event)),
        )
    assert isinstance(event, ConversationClosed)
    return msgspec.structs.replace(
        state, version=event.version, last_activity_at=event.at, closed_at=event.at
    )


def message_of(event: MessagePosted) -> Message:
    """The message as its conversation keeps it, without the e-mails it caused."""
    return Message(
        message_id=event.message_id,
        sender=event.sender,
        rpps=event.rpps,
        subject=event.subject,
        body=event.body,
        at=event.at,
    )


def fold_conversation(
    events: Iterable[ConversationEvent], state: Conversation | None = None
) -> Conversation | None:
    for event in events:
        state = evolve_conversation(event, state)
    return state
