"""Who may have the ordonnance as a PDF, and which copy: the use case behind
`GET /v1/prescriptions/{id}/document.pdf` and `ordo document`.

It reads through `PrescriptionService.read`, so a prescriber who did not write the
prescription, or another patient, gets the same 404 as the JSON read; and it draws from
`view_of`, so the prescriber's copy under the patient's opposition shows no execution data.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date

from adapters.document.pdf import render
from adapters.permissions import allow
from adapters.service import PrescriptionService
from domain.actors import Actor
from domain.views import display_number, qr_payload, view_of

# `ordo document` runs on the instance's own store: it reads as the insurer does (every
# prescription) and prints the copy of the prescriber who wrote it.
OPERATOR = Actor(role="insurer", subject="ordo-document")


@dataclass(frozen=True)
class Document:
    number: str
    pdf: bytes

    @property
    def filename(self) -> str:
        return f"ordonnance-{self.number}.pdf"


async def document_for(
    service: PrescriptionService, actor: Actor, prescription_id: str, today: date
) -> Document:
    """The caller's copy: 403 for a role without one, 404 for a prescription it may not read.

    Rendering takes a few milliseconds of CPU: it runs in a worker thread, so the event loop
    keeps answering the other callers meanwhile."""
    allow(actor, "document")
    state = await service.read(actor, prescription_id)
    view = view_of(state, actor, today)
    pdf = await asyncio.to_thread(render, view, qr_payload(state.prescription_id))
    return Document(display_number(state.prescription_id), pdf)


async def prescriber_copy(
    service: PrescriptionService, prescription_id: str, today: date
) -> Document:
    """What `ordo document` prints: the prescriber's copy, masked as the patient chose."""
    state = await service.read(OPERATOR, prescription_id)
    prescriber = Actor(role="prescriber", subject="ordo-document", rpps=state.prescriber_rpps)
    return await document_for(service, prescriber, prescription_id, today)
