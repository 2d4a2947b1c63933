"""`GET /fhir/R4/MedicationRequest?patient=…` or `?requester=…`: the caller's own prescriptions,
newest first, read from the projections (they may lag the log by up to a second, as /v1's lists),
one MedicationRequest per line, `_count` lines a page.

The next page's `_cursor` is where the page stopped: after the key of the last prescription
given whole, skipping the lines of the next one already given (a page may end inside one).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec

from adapters.fhir.outcome import FhirError
from adapters.readmodels.queries import CursorKey, ReadModelQueries
from domain.prescription import Prescription

Owner = Literal["prescriber_rpps", "patient_ins"]
# One line of a prescription as a resource (masking and all): the caller's read of it.
Shown = Callable[[Prescription, int], dict[str, Any]]


class Resume(msgspec.Struct, frozen=True, array_like=True):
    at: datetime | None
    prescription_id: str | None
    skip: int

    @property
    def after(self) -> CursorKey | None:
        if self.at is None or self.prescription_id is None:
            return None
        return CursorKey(self.at, self.prescription_id)


START = Resume(None, None, 0)


def cursor_of(resume: Resume) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(resume)).decode().rstrip("=")


def resume_of(cursor: str | None) -> Resume:
    if cursor is None:
        return START
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=Resume)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise FhirError(
            422, "invalid_request", "_cursor is not one this server gave", "_cursor"
        ) from None


async def own_lines(
    store: ReadModelQueries, by: Owner, own: str, *, resume: Resume, count: int, shown: Shown
) -> tuple[list[dict[str, Any]], Resume | None]:
    """Up to `count` lines of the owner's prescriptions from `resume`, and where the next page
    starts (None: this is the last)."""
    states = await store.prescriptions_page(by, own, resume.after, count + 1)
    found: list[dict[str, Any]] = []
    before, skip = resume, resume.skip
    for index, state in enumerate(states):
        lines = [line.line_no for line in state.lines][skip:]
        room = count - len(found)
        found += [shown(state, line_no) for line_no in lines[:room]]
        if len(lines) > room:
            return found, Resume(before.at, before.prescription_id, skip + room)
        before, skip = Resume(state.issued_at, state.prescription_id, 0), 0
        if len(found) == count:
            return found, before if index + 1 < len(states) else None
    return found, None
