"""The made-up people of ordo, every identifier valid (check keys as `domain.identifiers` wants):
the few the tests name (`People`, and the same identities as the domain's value objects), the
numbered crowds the generators and the benchmarks need (`prescriber(n)`, `patient(n)`, ...),
and the people a demo day draws anew from a random generator (`drawn_*`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from adapters.auth import sign_token
from domain.identifiers import Cip13, Finess, Ins, Rpps

SECRET = "test-secret-" + "x" * 32

# --- the few named ones, as the domain's value objects ----------------------------------------

PRESCRIBER = Rpps.from_body("1000123456")
OTHER_PRESCRIBER = Rpps.from_body("1000777777")
PHARMACIST = Rpps.from_body("2000123456")
PATIENT = Ins.from_body("1841276451089")
CORSICAN_PATIENT = Ins.from_body("290022A001001")
PHARMACY = Finess.from_body("75071218")
OTHER_PHARMACY = Finess.from_body("13000123")
PARACETAMOL = Cip13.from_body("340093000000")
GENERIC = Cip13.from_body("340093999999")
AMOXICILLINE = Cip13.from_body("340093111111")
DOLIPRANE = Cip13("3400935955838")  # Doliprane 1000 mg, 8 comprimés: in the shipped catalogue
SKENAN = Cip13("3400933323523")  # Skenan LP 10 mg (morphine), 14 gélules: in the catalogue too

# --- numbered crowds: the n-th of each, the same at every run -----------------------------------


def prescriber(n: int) -> Rpps:
    """The n-th of up to 10⁸ prescribers."""
    return Rpps.from_body(f"10{n:08d}")


def pharmacist(n: int) -> Rpps:
    """The n-th of up to 10⁸ pharmacists."""
    return Rpps.from_body(f"20{n:08d}")


def pharmacy(n: int) -> Finess:
    """The n-th of up to 10,000 pharmacies, all in metropolitan France (Paris)."""
    return Finess.from_body(f"{75000000 + 37 * n:08d}")


def patient(n: int) -> Ins:
    """The n-th of up to 10⁶ patients, born in January 1984 in Paris."""
    return Ins.from_body(f"1840175{n:06d}")


def product(n: int) -> Cip13:
    """The n-th of up to 10⁷ made-up packs (CIP13 of the 34009 range)."""
    return Cip13.from_body(f"34009{n:07d}")


# --- drawn anew: people a run has never met ----------------------------------------------------

CITIES = (("75", "056"), ("13", "055"), ("69", "123"), ("33", "063"), ("59", "350"))
CORSICA = (("2A", "004"), ("2B", "033"))  # Ajaccio, Bastia


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def drawn_prescriber(rng: random.Random) -> Rpps:
    return Rpps.from_body("10" + _digits(rng, 8))


def drawn_pharmacist(rng: random.Random) -> Rpps:
    return Rpps.from_body("20" + _digits(rng, 8))


def drawn_patient(rng: random.Random, *, corsican: bool = False) -> Ins:
    """A NIR: sex, year and month of birth, department and commune of birth, order number."""
    department, commune = rng.choice(CORSICA if corsican else CITIES)
    born = f"{rng.randint(1, 2)}{rng.randint(30, 99):02d}{rng.randint(1, 12):02d}"
    return Ins.from_body(born + department + commune + _digits(rng, 3))


def drawn_pharmacy(rng: random.Random, department: str) -> Finess:
    return Finess.from_body(department + "0" + _digits(rng, 5))


# --- the named ones as the API's callers --------------------------------------------------------


@dataclass(frozen=True)
class People:
    """A small cast: two prescribers, two patients, two pharmacies."""

    prescriber: str = PRESCRIBER.value
    other_prescriber: str = OTHER_PRESCRIBER.value
    pharmacist: str = PHARMACIST.value
    patient: str = PATIENT.value
    corsican_patient: str = CORSICAN_PATIENT.value
    pharmacy: str = PHARMACY.value
    other_pharmacy: str = OTHER_PHARMACY.value
    paracetamol: str = PARACETAMOL.value
    generic: str = GENERIC.value

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
