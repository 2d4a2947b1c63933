"""`?as_of=`: a prescription as its events stood at an instant (contract.md "Audit and time
travel"). Read-only, beside the use cases: load the events, keep those recorded up to the
instant, fold them. Who may read it, and what they see masked, is decided as of now."""

from __future__ import annotations

from datetime import datetime

import msgspec

from adapters.service import PrescriptionService
from domain.actors import Actor
from domain.errors import DomainError
from domain.events import Event
from domain.prescription import Prescription, fold

NOT_YET_ISSUED = DomainError("not_found", "the prescription was not issued yet at as_of")


async def prescription_as_of(
    service: PrescriptionService, actor: Actor, prescription_id: str, instant: datetime
) -> Prescription:
    """The state at `instant`, with today's consent: a prescriber whose view the patient has
    since withdrawn does not see the dispensings of the past either (masking as of now)."""
    now = await service.read(actor, prescription_id)  # 404 for whoever may not read it now
    then = fold(events_until(await service.store.events_of(now.prescription_id), instant))
    if then is None:
        raise NOT_YET_ISSUED
    return msgspec.structs.replace(then, execution_view_consent=now.execution_view_consent)


async def history_as_of(
    service: PrescriptionService, actor: Actor, prescription_id: str, instant: datetime
) -> list[Event]:
    events = events_until(await service.history(actor, prescription_id), instant)
    if not events:
        raise NOT_YET_ISSUED
    return events


def events_until(events: list[Event], instant: datetime) -> list[Event]:
    """The events recorded at or before `instant` (a stream is in time order)."""
    return [event for event in events if event.at <= instant]
