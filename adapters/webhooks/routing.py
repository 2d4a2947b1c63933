"""Which events a subscription receives, and what each delivery says: pure.

A pharmacy (`pharmacy`, its FINESS) receives the transmissions to it; a prescriber
(`prescriber`, their RPPS) receives the cancellations of their own prescriptions. A delivery's
body is written from the event's fields that its subscriber may read, never from the whole event.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from domain.events import Event, PrescriptionCancelled, PrescriptionTransmitted

Owner = Literal["pharmacy", "prescriber"]
Kind = Literal["transmission", "cancellation", "message", "dispensed_elsewhere"]
KINDS: tuple[Kind, ...] = ("transmission", "cancellation", "message", "dispensed_elsewhere")


class Push(msgspec.Struct, frozen=True, kw_only=True):
    """What one event pushes to the subscriptions of one owner."""

    kind: Kind
    owner: Owner
    owner_id: str
    data: dict[str, str]


def pushes(event: Event) -> tuple[Push, ...]:
    if isinstance(event, PrescriptionTransmitted):
        data = {
            "prescription_id": event.prescription_id,
            "finess": event.finess,
            "message": event.message,
            "sent_by": event.sent_by,
        }
        return (Push(kind="transmission", owner="pharmacy", owner_id=event.finess, data=data),)
    if isinstance(event, PrescriptionCancelled):
        data = {"prescription_id": event.prescription_id, "reason": event.reason}
        return (
            Push(
                kind="cancellation", owner="prescriber", owner_id=event.prescriber_rpps, data=data
            ),
        )
    return ()


def body_of(push: Push, event: Event) -> bytes:
    """The JSON a receiver gets: `type`, `timestamp` and `data`, as Standard Webhooks suggests."""
    return msgspec.json.encode(
        {"type": push.kind, "timestamp": event.at.isoformat(), "data": push.data}
    )
