"""The demo day's plan, pure and drawn from the seed: its medicines, its people (new at every
run: a second run on the same store would otherwise give its patients a second, overlapping
narcotic prescription), and what happens to each prescription. Prescribers write
prescriptions for patients (some born in Corsica), patients send some to a pharmacy, pharmacies
dispense them, sometimes in two pharmacies, sometimes with a generic, and bill part of what they
dispensed; one prescription is cancelled, one patient withdraws their consent."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from domain.identifiers import Cip13
from tools.cast import CITIES, drawn_patient, drawn_pharmacist, drawn_pharmacy, drawn_prescriber

MONTH_DAYS = 30
STOCKPILING_MARGIN_DAYS = 7
PRESCRIBERS, PATIENTS, CORSICAN_PATIENTS = 5, 30, 4
Fate = Literal["untouched", "one_pharmacy", "split", "cancelled"]
FATES: tuple[Fate, ...] = ("untouched", "one_pharmacy", "split")
FATE_WEIGHTS = (15, 55, 30)

# --- the day's cast and medicines -------------------------------------------------------------


def _product(code: str, label: str) -> dict[str, str]:
    return {"system": "CIP13", "code": Cip13.from_body("3400" + code).value, "label": label}


def _pack(cip13: str, label: str) -> dict[str, str]:
    """A real pack of the public medicines database (in the sample the demo imports)."""
    return {"system": "CIP13", "code": Cip13(cip13).value, "label": label}


@dataclass(frozen=True)
class Medicine:
    """A pack as prescribed: `quantity` packs over `duration_days`, and its generic if any."""

    product: dict[str, str]
    price_cents: int
    dosage: str
    duration_days: int
    quantity: int
    generic: dict[str, str] | None = None
    narcotic: bool = False

    def packs_per_visit(self) -> int:
        """At most about one month of treatment is handed over at a time."""
        return max(1, self.quantity * MONTH_DAYS // self.duration_days)


STANDARD = (
    Medicine(
        _pack("3400935955838", "Doliprane 1000 mg, 8 comprimés"),
        107,
        "1 comprimé 3 fois par jour si douleur",
        8,
        3,
        _product("93000101", "Paracétamol Biogaran 1 g, 8 comprimés"),
    ),
    Medicine(
        _pack("3400931587538", "Clamoxyl 500 mg, 12 gélules"),
        153,
        "2 gélules matin et soir",
        6,
        2,
        _pack("3400935765680", "Amoxicilline Arrow 500 mg, 12 gélules"),
    ),
    Medicine(
        _product("93000003", "Lévothyroxine 75 µg, 30 comprimés"),
        235,
        "1 comprimé le matin à jeun",
        90,
        3,
    ),
    Medicine(
        _product("93000004", "Ibuprofène 400 mg, 30 comprimés"),
        195,
        "1 comprimé 3 fois par jour au cours des repas",
        5,
        1,
        _product("93000104", "Ibuprofène Mylan 400 mg, 30 comprimés"),
    ),
    Medicine(
        _product("93000005", "Amlodipine 5 mg, 30 gélules"),
        328,
        "1 gélule le matin",
        90,
        3,
        _product("93000105", "Amlodipine Teva 5 mg, 30 gélules"),
    ),
    Medicine(
        _product("93000006", "Atorvastatine 20 mg, 30 comprimés"),
        515,
        "1 comprimé le soir",
        90,
        3,
        _product("93000106", "Atorvastatine Zentiva 20 mg, 30 comprimés"),
    ),
    Medicine(
        _product("93000007", "Metformine 850 mg, 90 comprimés"),
        512,
        "1 comprimé 3 fois par jour au cours des repas",
        90,
        3,
        _product("93000107", "Metformine Arrow 850 mg, 90 comprimés"),
    ),
    Medicine(
        _product("93000008", "Oméprazole 20 mg, 28 gélules"),
        412,
        "1 gélule le matin",
        56,
        2,
        _product("93000108", "Oméprazole EG 20 mg, 28 gélules"),
    ),
    Medicine(
        _product("93000009", "Salbutamol 100 µg/dose, suspension pour inhalation, 200 doses"),
        366,
        "2 bouffées en cas de gêne respiratoire",
        30,
        1,
    ),
)
MORPHINE = Medicine(
    _pack("3400933323523", "Skenan LP 10 mg, 14 gélules"),
    309,
    "1 gélule matin et soir, à 12 heures d'intervalle",
    28,
    4,
    narcotic=True,
)
MACROGOL = Medicine(
    _product("93000011", "Macrogol 4000 10 g, 20 sachets"),
    425,
    "1 sachet le matin",
    28,
    2,
)
PHARMACY_NAMES = ("du Marché", "de la Gare", "Centrale", "des Halles", "du Port", "Saint-Roch")


@dataclass(frozen=True)
class Pharmacy:
    name: str
    finess: str
    pharmacists: tuple[str, ...]


@dataclass(frozen=True)
class Cast:
    """The day's people, drawn from `tools.cast`: new at every run of the demo."""

    prescribers: tuple[str, ...]
    patients: tuple[str, ...]
    pharmacies: tuple[Pharmacy, ...]


def _distinct(draw: Callable[[], str], count: int) -> tuple[str, ...]:
    found: dict[str, None] = {}
    while len(found) < count:
        found[draw()] = None
    return tuple(found)


def _pharmacy(rng: random.Random, index: int) -> Pharmacy:
    department = CITIES[index % len(CITIES)][0]
    return Pharmacy(
        name=f"Pharmacie {PHARMACY_NAMES[index]}",
        finess=drawn_pharmacy(rng, department).value,
        pharmacists=_distinct(lambda: drawn_pharmacist(rng).value, 2),
    )


def make_cast(rng: random.Random) -> Cast:
    corsicans = _distinct(lambda: drawn_patient(rng, corsican=True).value, CORSICAN_PATIENTS)
    others = _distinct(lambda: drawn_patient(rng).value, PATIENTS - CORSICAN_PATIENTS)
    patients = list(dict.fromkeys(corsicans + others))
    rng.shuffle(patients)
    return Cast(
        prescribers=_distinct(lambda: drawn_prescriber(rng).value, PRESCRIBERS),
        patients=tuple(patients),
        pharmacies=tuple(_pharmacy(rng, index) for index in range(len(PHARMACY_NAMES))),
    )


# --- the day's plan: pure, drawn from the seed ------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One pharmacy visit: packs handed over per line, lines given as a generic, billed or not."""

    pharmacy: Pharmacy
    pharmacist: str
    quantities: tuple[tuple[int, int], ...]
    substituted: frozenset[int]
    billed: bool


@dataclass(frozen=True)
class Plan:
    prescriber: str
    patient: str
    kind: Literal["standard", "secure"]
    consent: bool
    days_ago: int
    medicines: tuple[Medicine, ...]
    visits: tuple[Visit, ...] = ()
    transmitted: bool = False
    cancelled: bool = False
    consent_withdrawn: bool = False
    patient_looks: bool = False
    showcase: bool = False

    def consent_now(self) -> bool:
        return self.consent and not self.consent_withdrawn


def plan_day(rng: random.Random, cast: Cast, count: int) -> list[Plan]:
    """The showcases first (narcotic, opposition with two pharmacies and a generic, a
    cancellation, a later opposition), then ordinary prescriptions."""
    showcases: list[Callable[[], Plan]] = [
        lambda: _draw(rng, cast, secure=True),
        lambda: _draw(rng, cast, fate="split", consent=False, first=STANDARD[1], showcase=True),
        lambda: replace(_draw(rng, cast, fate="cancelled"), cancelled=True),
        lambda: replace(
            _draw(rng, cast, fate="one_pharmacy", consent=True), consent_withdrawn=True
        ),
    ]
    plans = [draw() for draw in showcases[:count]]
    plans += [_draw(rng, cast) for _ in range(count - len(plans))]
    # One narcotic prescription per patient: no overlapping periods (chevauchement).
    narcotic_patients = itertools.cycle(cast.patients)
    return [
        replace(plan, patient=next(narcotic_patients)) if plan.kind == "secure" else plan
        for plan in plans
    ]


def _draw(
    rng: random.Random,
    cast: Cast,
    *,
    fate: Fate | None = None,
    secure: bool | None = None,
    consent: bool | None = None,
    first: Medicine | None = None,
    showcase: bool = False,
) -> Plan:
    secure = rng.random() < 0.1 if secure is None else secure
    medicines = _medicines(rng, secure, first)
    fate = fate or rng.choices(FATES, weights=FATE_WEIGHTS)[0]
    visits = _visits(rng, cast, medicines, fate, force_generic=showcase)
    return Plan(
        prescriber=rng.choice(cast.prescribers),
        patient=rng.choice(cast.patients),
        kind="secure" if secure else "standard",
        consent=rng.random() >= 0.2 if consent is None else consent,
        days_ago=0 if secure else rng.choice((0, 0, 0, 1, 2, 5, 12)),
        medicines=medicines,
        visits=visits,
        transmitted=bool(visits) and rng.random() < 0.2,
        patient_looks=showcase or rng.random() < 0.3,
        showcase=showcase,
    )


def _medicines(rng: random.Random, secure: bool, first: Medicine | None) -> tuple[Medicine, ...]:
    if secure:
        return (MORPHINE, MACROGOL) if rng.random() < 0.7 else (MORPHINE,)
    others = [medicine for medicine in STANDARD if medicine is not first]
    drawn = rng.sample(others, k=rng.choice((1, 1, 2, 2, 3)))
    return tuple([first, *drawn][:3] if first else drawn)


def _visits(
    rng: random.Random,
    cast: Cast,
    medicines: tuple[Medicine, ...],
    fate: Fate,
    force_generic: bool,
) -> tuple[Visit, ...]:
    if fate == "untouched":
        return ()
    here, there = rng.sample(cast.pharmacies, 2)
    parts = _split(rng, medicines) if fate in ("split", "cancelled") else None
    if parts is None:
        return (_visit(rng, here, _whole(medicines), medicines, force_generic),)
    visits: tuple[Visit, ...] = (_visit(rng, here, parts[0], medicines, force_generic),)
    if fate == "split":
        visits += (_visit(rng, there, parts[1], medicines, force_generic),)
    return visits


Quantities = dict[int, int]


def _whole(medicines: tuple[Medicine, ...]) -> Quantities:
    return {no: min(m.quantity, m.packs_per_visit()) for no, m in enumerate(medicines, 1)}


def _split(
    rng: random.Random, medicines: tuple[Medicine, ...]
) -> tuple[Quantities, Quantities] | None:
    """Part in a first pharmacy (out of stock of the rest), the rest in another; None when the
    prescription is too small to split."""
    first: Quantities = {}
    for no, medicine in enumerate(medicines, 1):
        if no == 1 or rng.random() < 0.5:
            first[no] = min(medicine.packs_per_visit(), max(1, medicine.quantity - 1))
    # The same day, the second pharmacy completes this month's packs, not next month's.
    rest = {no: _rest_of_month(m, first.get(no, 0)) for no, m in enumerate(medicines, 1)}
    rest = {no: packs for no, packs in rest.items() if packs > 0}
    return (first, rest) if rest else None


def _rest_of_month(medicine: Medicine, given: int) -> int:
    """What a second pharmacy may add the same day: the rest of this month's packs, when what
    the first gave covers at most the 7 days a renewal may be collected early."""
    covered = math.ceil(given * medicine.duration_days / medicine.quantity)
    if given and covered > STOCKPILING_MARGIN_DAYS and not medicine.narcotic:
        return 0
    return min(medicine.packs_per_visit() - given, medicine.quantity - given)


def _visit(
    rng: random.Random,
    pharmacy: Pharmacy,
    quantities: Quantities,
    medicines: tuple[Medicine, ...],
    force_generic: bool,
) -> Visit:
    generic = {
        no
        for no in quantities
        if medicines[no - 1].generic and (force_generic or rng.random() < 0.3)
    }
    return Visit(
        pharmacy=pharmacy,
        pharmacist=rng.choice(pharmacy.pharmacists),
        quantities=tuple(quantities.items()),
        substituted=frozenset(generic),
        billed=force_generic or rng.random() < 0.6,
    )
