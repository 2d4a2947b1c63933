"""The search parameters of `GET /fhir/R4/MedicationRequest`, and whose prescriptions they ask.

A patient searches their own (`patient` or `patient:identifier`), a prescriber theirs
(`requester` or `requester:identifier`); asking for someone else's finds nothing (no oracle).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from adapters.fhir.codes import INS_SYSTEM, RPPS_PREFIX, RPPS_SYSTEM
from adapters.fhir.outcome import FhirError
from adapters.fhir.searching import Owner
from adapters.http.call import Call
from adapters.permissions import allow
from domain.actors import Actor


def _query(name: str, description: str) -> object:
    return QueryParameter(name=name, required=False, max_length=200, description=description)


class Search(msgspec.Struct, frozen=True, kw_only=True):
    group: str | None = None
    patient: str | None = None
    requester: str | None = None

    def owner(self, actor: Actor) -> tuple[Owner, str | None, dict[str, str]]:
        """Whose list to read, the caller's own identifier if they asked for it (else None:
        nothing found), and the query that asked."""
        if self.patient is not None:
            allow(actor, "patient_list")
            asked = self.patient.removeprefix(f"{INS_SYSTEM}|").removeprefix("Patient/")
            own = actor.ins if asked == actor.ins else None
            return "patient_ins", own, {"patient": self.patient}
        if self.requester is not None:
            allow(actor, "prescriber_list")
            asked = self.requester.removeprefix(f"{RPPS_SYSTEM}|{RPPS_PREFIX}")
            own = actor.rpps if asked.removeprefix("Practitioner/") == actor.rpps else None
            return "prescriber_rpps", own, {"requester": self.requester}
        raise FhirError(
            422,
            "invalid_request",
            "search by group-identifier, patient or requester",
            "MedicationRequest",
        )


def provide_search(
    # `call` only so that this resolves after the call, never beside it (see `Call`).
    call: NamedDependency[Call],
    *,
    group: Annotated[
        str | None, _query("group-identifier", "urn:ordo:prescription|<prescription_id>")
    ] = None,
    patient: Annotated[str | None, _query("patient", "the patient's own INS")] = None,
    patient_identifier: Annotated[
        str | None, _query("patient:identifier", f"{INS_SYSTEM}|<INS>, the patient's own")
    ] = None,
    requester: Annotated[str | None, _query("requester", "the prescriber's own RPPS")] = None,
    requester_identifier: Annotated[
        str | None,
        _query("requester:identifier", f"{RPPS_SYSTEM}|8<RPPS>, the prescriber's own"),
    ] = None,
) -> Search:
    return Search(
        group=group,
        patient=patient if patient is not None else patient_identifier,
        requester=requester if requester is not None else requester_identifier,
    )


SEARCH = Provide(provide_search, sync_to_thread=False)
