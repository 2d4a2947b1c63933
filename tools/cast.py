"""A small cast of valid identities and their tokens, shared by the tests and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.auth import sign_token
from domain.identifiers import Cip13, Finess, Ins, Rpps

SECRET = "test-secret-" + "x" * 32


@dataclass(frozen=True)
class People:
    """A small cast: two prescribers, two patients, two pharmacies."""

    prescriber: str = Rpps.from_body("1000123456").value
    other_prescriber: str = Rpps.from_body("1000777777").value
    pharmacist: str = Rpps.from_body("2000123456").value
    patient: str = Ins.from_body("1841276451089").value
    corsican_patient: str = Ins.from_body("290022A001001").value
    pharmacy: str = Finess.from_body("75071218").value
    other_pharmacy: str = Finess.from_body("13000123").value
    paracetamol: str = Cip13.from_body("340093000000").value
    generic: str = Cip13.from_body("340093999999").value

    def headers(
        self,
        role: str,
        *,
        rpps: str | None = None,
        finess: str | None = None,
        ins: str | None = None,
    ) -> dict[str, str]:
        token = sign_token(
            SECRET, role=role, subject=f"{role}-test", rpps=rpps, finess=finess, ins=ins
        )
        return {"Authorization": f"Bearer {token}"}

    def as_prescriber(self, rpps: str | None = None) -> dict[str, str]:
        return self.headers("prescriber", rpps=rpps or self.prescriber)

    def as_pharmacist(self, finess: str | None = None) -> dict[str, str]:
        return self.headers("pharmacist", rpps=self.pharmacist, finess=finess or self.pharmacy)

    def as_patient(self, ins: str | None = None) -> dict[str, str]:
        return self.headers("patient", ins=ins or self.patient)

    def as_insurer(self) -> dict[str, str]:
        return self.headers("insurer")

    def prescription_body(self, *quantities: int, consent: bool = True) -> dict[str, Any]:
        return {
            "patient": {"ins": self.patient},
            "execution_view_consent": consent,
            "lines": [
                {
                    "product": {
                        "system": "CIP13",
                        "code": self.paracetamol,
                        "label": "Paracétamol 1 g",
                    },
                    "quantity": quantity,
                    "dosage": "1 comprimé 3 fois par jour",
                    "duration_days": 8,
                }
                for quantity in (quantities or (3,))
            ],
        }
