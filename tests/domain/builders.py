"""Small builders for domain tests: valid identifiers and the events of a typical prescription."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.calendar import Moment
from domain.decisions.dispensing import Dispense, DispenseLine
from domain.events import (
    DispensationRecorded,
    DispensedLine,
    Event,
    PrescribedLine,
    PrescriptionIssued,
    Product,
)
from domain.identifiers import Finess, PrescriptionNumber
from domain.prescription import Prescription, fold
from tools import cast

NUMBER = PrescriptionNumber.generate(lambda bits: 123456789 % (1 << bits))
PRESCRIBER = cast.PRESCRIBER
PATIENT = cast.PATIENT
PHARMACY_A = cast.PHARMACY
PHARMACY_B = cast.OTHER_PHARMACY
PHARMACIST = cast.PHARMACIST
PARACETAMOL = Product(system="CIP13", code=cast.PARACETAMOL.value, label="Paracétamol 1 g")
GENERIC = Product(system="CIP13", code=cast.GENERIC.value, label="Paracétamol Biogaran 1 g")
AMOXICILLINE = Product(system="CIP13", code=cast.AMOXICILLINE.value, label="Amoxicilline 1 g")
ISSUED_ON = date(2026, 11, 23)


def moment(today: date = ISSUED_ON) -> Moment:
    return Moment(
        at=datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=10), today=today
    )


def issued(*quantities: int, consent: bool = True) -> PrescriptionIssued:
    products = (PARACETAMOL, AMOXICILLINE, GENERIC)
    return PrescriptionIssued(
        prescription_id=NUMBER.value,
        version=1,
        at=moment().at,
        prescriber_rpps=PRESCRIBER.value,
        patient_ins=PATIENT.value,
        issued_on=ISSUED_ON,
        kind="standard",
        execution_view_consent=consent,
        lines=tuple(
            PrescribedLine(
                line_no=no,
                product=products[(no - 1) % 3],
                quantity=quantity,
                dosage="1 comprimé 3 fois par jour",
                duration_days=8,
                narcotic=False,
            )
            for no, quantity in enumerate(quantities or (3,), start=1)
        ),
    )


def dispensed(
    version: int, *lines: tuple[int, int], finess: Finess = PHARMACY_A, dispensation_id: str = "d1"
) -> DispensationRecorded:
    return DispensationRecorded(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at,
        dispensation_id=dispensation_id,
        finess=finess.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensed_at=moment().at,
        lines=tuple(
            DispensedLine(line_no=no, quantity=quantity, product=PARACETAMOL)
            for no, quantity in lines
        ),
    )


def request(*lines: tuple[int, int], finess: Finess = PHARMACY_A) -> Dispense:
    return Dispense(
        pharmacy=finess,
        pharmacist=PHARMACIST,
        lines=tuple(DispenseLine(line_no=no, quantity=quantity) for no, quantity in lines),
    )


def given(*events: Event) -> Prescription:
    state = fold(events)
    assert state is not None
    return state
