"""Who is asking: the four roles of the contract and the identity each one carries."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["prescriber", "pharmacist", "patient", "insurer"]
ROLES: tuple[Role, ...] = ("prescriber", "pharmacist", "patient", "insurer")


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """An authenticated caller. Identifiers are canonical and were validated at the boundary:
    a prescriber has `rpps`; a pharmacist `rpps` and the pharmacy's `finess`; a patient `ins`."""

    role: Role
    subject: str
    rpps: str | None = None
    finess: str | None = None
    ins: str | None = None

    def wrote(self, prescriber_rpps: str) -> bool:
        return self.role == "prescriber" and self.rpps == prescriber_rpps

    def is_patient(self, patient_ins: str) -> bool:
        return self.role == "patient" and self.ins == patient_ins
