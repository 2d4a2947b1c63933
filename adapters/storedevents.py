"""What the event table holds, whoever writes or reads it: our events as stored events (topic,
stream, msgspec JSON, upcasting), and the idempotency records and invoice claims written in an
append's transaction.

The topic is the event's public name and schema version (`DispensationRecorded.v1`), not a
Python import path, because the log is read by other machines and must outlive our module
layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from eventsourcing.persistence import StoredEvent

from domain.coverage import COVERAGE_EVENT_TYPES, CoverageEvent
from domain.events import EVENT_TYPES, UPCASTERS, ConversationEvent, Event, Upcaster

__all__ = [
    "AnyEvent",
    "EventMapper",
    "IdempotencyRecord",
    "InvoiceClaim",
    "stream_of",
    "topic_of",
]


class IdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The first answer given to a request carrying an `Idempotency-Key`: the use case's
    result (JSON), never an HTTP status or body.

    Kept in its own table, written in the same transaction as the events the request produced,
    so either both are durable or neither is: a retry after a crash between the append and the
    answer finds this record and replays the result.
    """

    key: str
    fingerprint: str
    result: bytes
    # Where the first event of its command landed in the log, set by the store in that append
    # (None for a record written before positions were kept: its replay carries no receipt).
    position: int | None = None


class InvoiceClaim(msgspec.Struct, frozen=True, kw_only=True):
    """A pharmacy's invoice number, taken by the billing of one dispensation.

    Kept in its own table keyed by (FINESS, invoice number), written in the same transaction
    as the `BillingRecorded` it belongs to: of two billings with one number at once, whichever
    prescription they are on, exactly one commits.
    """

    finess: str
    invoice_number: str
    prescription_id: str
    dispensation_id: str

    @classmethod
    def from_row(
        cls, finess: str, invoice_number: str, row: Sequence[str] | None
    ) -> InvoiceClaim | None:
        """The claim on this number, from its table's (prescription_id, dispensation_id)."""
        if row is None:
            return None
        return cls(
            finess=finess,
            invoice_number=invoice_number,
            prescription_id=row[0],
            dispensation_id=row[1],
        )


def topic_of(kind: type[Any]) -> str:
    return f"{kind.__name__}.v{kind.schema_version}"


AnyEvent = Event | CoverageEvent


def stream_of(event: AnyEvent) -> str:
    """A prescription's events are its stream; a conversation and a patient's narcotic
    coverage are streams of their own, in the same table, appended in the same transactions."""
    if isinstance(event, CoverageEvent):
        return event.stream_id
    if isinstance(event, ConversationEvent):
        return event.conversation_id
    return event.prescription_id


class EventMapper:
    """Event <-> stored event, with msgspec JSON and upcasting of older schema versions.

    Prescriptions' events are the public log; a patient's narcotic coverage events live in the
    same table (so that both append in one transaction) but are nobody's business outside it:
    projections and the Kafka relay skip them (`is_prescription_event`).
    """

    def __init__(self, upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS) -> None:
        self._encoder = msgspec.json.Encoder()
        self._types: dict[str, type[Event]] = {kind.__name__: kind for kind in EVENT_TYPES}
        self._coverage_types: dict[str, type[CoverageEvent]] = {
            kind.__name__: kind for kind in COVERAGE_EVENT_TYPES
        }
        self._upcasters = upcasters

    def to_stored(self, event: AnyEvent) -> StoredEvent:
        stream = stream_of(event)
        topic, state = self.encode(event)
        return StoredEvent(
            originator_id=stream, originator_version=event.version, topic=topic, state=state
        )

    def encode(self, event: AnyEvent) -> tuple[str, bytes]:
        return topic_of(type(event)), self._encoder.encode(event)

    def to_coverage_event(self, stored: StoredEvent) -> CoverageEvent:
        return self.coverage(stored.topic, stored.state)

    def coverage(self, topic: str, state: bytes) -> CoverageEvent:
        name = topic.rpartition(".v")[0]
        return msgspec.json.decode(state, type=self._coverage_types[name])

    def to_event(self, stored: StoredEvent) -> Event:
        return self.decode(stored.topic, stored.state)

    def decode(self, topic: str, state: bytes) -> Event:
        name, _, version_text = topic.rpartition(".v")
        kind = self._types.get(name)
        if kind is None:
            msg = f"unknown event topic {topic!r}"
            raise ValueError(msg)
        version = int(version_text)
        if version == kind.schema_version:
            return msgspec.json.decode(state, type=kind)
        payload = msgspec.json.decode(state)
        while version < kind.schema_version:
            payload = self._upcasters[(name, version)](payload)
            version += 1
        return msgspec.convert(payload, type=kind)

    def is_prescription_event(self, topic: str) -> bool:
        return topic.rpartition(".v")[0] in self._types
