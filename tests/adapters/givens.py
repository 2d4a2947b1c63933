"""Who acts and what they ask, for the use cases' tests on the event store in memory."""

from __future__ import annotations

from datetime import UTC, date, datetime

from adapters.service import ByPharmacist, ByPrescriber, PrescriptionService
from domain.actors import Actor
from domain.calendar import Moment
from domain.decisions.billing import Bill
from domain.decisions.corrections import Withdraw
from domain.decisions.dispensing import Dispense, DispenseLine
from domain.decisions.issuing import IssuePrescription, RequestedLine
from domain.events import BilledLine, Product
from domain.identifiers import Cip13, Finess, Ins, Rpps
from tests.adapters.memory_store import MemoryEventStore
from tools.cast import People

PEOPLE = People()
PRESCRIBER = Actor(role="prescriber", subject="dr", rpps=PEOPLE.prescriber)
PATIENT = Actor(role="patient", subject="patient", ins=PEOPLE.patient)
PHARMACY_A = Actor(
    role="pharmacist", subject="ph-a", rpps=PEOPLE.pharmacist, finess=PEOPLE.pharmacy
)
PHARMACY_B = Actor(
    role="pharmacist", subject="ph-b", rpps=PEOPLE.pharmacist, finess=PEOPLE.other_pharmacy
)
NOW = Moment(at=datetime(2026, 11, 23, 10, tzinfo=UTC), today=date(2026, 11, 23))
PARACETAMOL = Product(system="CIP13", code=PEOPLE.paracetamol, label="Paracétamol 1 g")
MORPHINE = Product(
    system="CIP13", code=Cip13.from_body("340093222222").value, label="Morphine 30 mg LP"
)


def clock() -> Moment:
    return NOW


def service_on(store: MemoryEventStore) -> PrescriptionService:
    return PrescriptionService(store, clock=clock)


def prescription_of(*packs: int) -> ByPrescriber[IssuePrescription]:
    def issuing(prescriber: Rpps, today: date) -> IssuePrescription:
        return IssuePrescription(
            prescriber=prescriber,
            patient=Ins(PEOPLE.patient),
            issued_on=today,
            kind="standard",
            execution_view_consent=True,
            lines=tuple(
                RequestedLine(
                    product=PARACETAMOL,
                    quantity=quantity,
                    dosage="1 comprimé 3 fois par jour",
                    duration_days=8,
                )
                for quantity in packs
            ),
        )

    return issuing


def narcotic_prescription_of(packs: int) -> ByPrescriber[IssuePrescription]:
    """A secure prescription of one narcotic line for 28 days (no overlap allowed)."""

    def issuing(prescriber: Rpps, today: date) -> IssuePrescription:
        line = RequestedLine(
            product=MORPHINE,
            quantity=packs,
            dosage="1 gélule matin et soir",
            duration_days=28,
            narcotic=True,
        )
        return IssuePrescription(
            prescriber=prescriber,
            patient=Ins(PEOPLE.patient),
            issued_on=today,
            kind="secure",
            execution_view_consent=True,
            lines=(line,),
        )

    return issuing


async def issued(service: PrescriptionService, *packs: int) -> str:
    state = await service.issue(PRESCRIBER, prescription_of(*packs))
    return state.prescription_id


def dispensing(packs: int) -> ByPharmacist[Dispense]:
    def by(pharmacy: Finess, pharmacist: Rpps) -> Dispense:
        return Dispense(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            lines=(DispenseLine(line_no=1, quantity=packs),),
        )

    return by


def billing(dispensation_id: str, invoice_number: str, packs: int = 1) -> ByPharmacist[Bill]:
    def by(pharmacy: Finess, pharmacist: Rpps) -> Bill:
        return Bill(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            dispensation_id=dispensation_id,
            invoice_number=invoice_number,
            lines=(BilledLine(line_no=1, quantity=packs, amount_cents=250),),
        )

    return by


def withdrawal(dispensation_id: str) -> ByPharmacist[Withdraw]:
    def by(pharmacy: Finess, pharmacist: Rpps) -> Withdraw:
        return Withdraw(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            dispensation_id=dispensation_id,
            reason="saisie erronée",
        )

    return by
