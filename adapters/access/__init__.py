"""The access log: who called a prescription's endpoints, when, and with which answer."""

from __future__ import annotations

from collections.abc import Callable

from adapters.access.recorder import AccessRecorder, Call
from adapters.access.store import AccessEntry, AccessLogStore, open_access_log
from adapters.librarylog import LibraryLog
from domain.prescription import fold

__all__ = [
    "AccessEntry",
    "AccessLogStore",
    "AccessRecorder",
    "Call",
    "open_access_log",
    "patient_lookup",
]


def patient_lookup(log: LibraryLog) -> Callable[[str], str | None]:
    """The INS of a prescription's patient, for the recorder to leave out a patient's own
    refused calls (None: no such prescription)."""

    def patient_of(prescription_id: str) -> str | None:
        state = fold(log.events_of(prescription_id))
        return None if state is None else state.patient_ins

    return patient_of
