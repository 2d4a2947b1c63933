"""The Kafka copy of the log: one message per event, keyed by prescription number.

The value is a small envelope around the event's own JSON (the same bytes the event store
keeps), naming its type, schema version, the prescription's version and the log position, so
consumers in any language can route, order and de-duplicate without knowing our classes.
"""

from __future__ import annotations

import msgspec

from adapters.storedevents import EventMapper
from domain.events import Event

Header = tuple[str, bytes]


class EventMessage(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    schema_version: int
    prescription_id: str
    version: int
    position: int
    event: msgspec.Raw


class UndecodableMessage(ValueError):  # noqa: N818 - reads as the fact it reports
    """A message that is not an ordo event: it goes to the dead-letter topic."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EventMessage)
_mapper = EventMapper()


def to_message(event: Event, position: int) -> tuple[bytes, bytes, list[Header]]:
    """Key, value and headers of the message that carries `event`, at log `position`."""
    kind = type(event)
    value = _encoder.encode(
        EventMessage(
            type=kind.__name__,
            schema_version=kind.schema_version,
            prescription_id=event.prescription_id,
            version=event.version,
            position=position,
            event=msgspec.Raw(_encoder.encode(event)),
        )
    )
    headers = [("type", kind.__name__.encode()), ("position", str(position).encode())]
    return event.prescription_id.encode(), value, headers


def from_message(value: bytes | None) -> tuple[Event, int]:
    """The event and its log position, or UndecodableMessage saying why not."""
    if value is None:
        raise UndecodableMessage("empty message")
    try:
        message = _decoder.decode(value)
        topic = f"{message.type}.v{message.schema_version}"
        if not _mapper.is_prescription_event(topic):
            raise UndecodableMessage(f"unknown event type {topic}")
        event = _mapper.decode(topic, bytes(message.event))
    except (msgspec.DecodeError, ValueError) as error:
        raise UndecodableMessage(str(error)) from error
    if event.prescription_id != message.prescription_id or event.version != message.version:
        raise UndecodableMessage("envelope and event disagree on prescription or version")
    return event, message.position


__all__ = ["EventMessage", "UndecodableMessage", "from_message", "to_message"]
