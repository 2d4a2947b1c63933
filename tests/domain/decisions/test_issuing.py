"""Issuing (`domain.decisions.issuing`): given the prescriber's lines, then the prescription
issued, its lines numbered from one, or this refusal naming the field."""

from __future__ import annotations

from datetime import date

import pytest

from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.errors import DomainError
from domain.events import (
    PrescriptionKind,
    Product,
)
from tests.domain.builders import (
    ISSUED_ON,
    NUMBER,
    PARACETAMOL,
    PATIENT,
    PRESCRIBER,
    moment,
)

# --- issuing ---------------------------------------------------------------------------------


def prescription(
    *lines: RequestedLine, kind: PrescriptionKind = "standard", on: date = ISSUED_ON
) -> IssuePrescription:
    return IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=on,
        kind=kind,
        execution_view_consent=True,
        lines=lines,
    )


def line(
    product: Product = PARACETAMOL, quantity: int = 3, days: int = 8, narcotic: bool = False
) -> RequestedLine:
    return RequestedLine(
        product=product,
        quantity=quantity,
        dosage="1 par jour",
        duration_days=days,
        narcotic=narcotic,
    )


def test_issuing_numbers_the_lines_from_one() -> None:
    event = issue(prescription(line(), line(quantity=1)), NUMBER, moment())

    assert [(x.line_no, x.quantity) for x in event.lines] == [(1, 3), (2, 1)]
    assert (event.version, event.prescription_id, event.patient_ins) == (
        1,
        NUMBER.value,
        PATIENT.value,
    )


MORPHINE = Product(system="CIP13", code=PARACETAMOL.code, label="Morphine LP 10 mg")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (prescription(line(), on=date(2026, 11, 24)), "issued_on"),
        (prescription(), "lines"),
        (prescription(line(quantity=0)), "lines[0].quantity"),
        (prescription(line(days=0)), "lines[0].duration_days"),
        (
            prescription(line(Product(system="CIP13", code="3400930000008", label="x"))),
            "lines[0].product.code",
        ),
        (
            prescription(line(Product(system="CIP13", code=None, label="x"))),
            "lines[0].product.code",
        ),
        (
            prescription(line(Product(system="DCI", code="123", label="paracétamol"))),
            "lines[0].product",
        ),
        (prescription(line(Product(system="UCD", code="12", label="x"))), "lines[0].product.code"),
        (prescription(line(Product(system="DCI", label="  "))), "lines[0].product.label"),
        (prescription(line(MORPHINE, narcotic=True)), "lines[0]"),
        (
            prescription(line(MORPHINE, days=29, narcotic=True), kind="secure"),
            "lines[0].duration_days",
        ),
    ],
    ids=[
        "issued-in-the-future",
        "no-line",
        "zero-packs",
        "zero-days",
        "bad-cip13-check-digit",
        "cip13-without-code",
        "dci-with-a-code",
        "ucd-too-short",
        "blank-label",
        "narcotic-on-a-standard-prescription",
        "narcotic-beyond-28-days",
    ],
)
def test_an_invalid_prescription_is_refused_naming_the_field(
    command: IssuePrescription, field: str
) -> None:
    with pytest.raises(DomainError) as refusal:
        issue(command, NUMBER, moment())

    assert (refusal.value.code, refusal.value.field) == ("invalid_request", field)


def test_a_narcotic_goes_on_a_secure_prescription_for_28_days_at_most() -> None:
    event = issue(
        prescription(line(MORPHINE, days=28, narcotic=True), kind="secure"), NUMBER, moment()
    )

    assert event.kind == "secure" and event.lines[0].narcotic


def test_substances_and_units_are_accepted() -> None:
    dci = Product(system="DCI", label="paracétamol")
    ucd = Product(system="UCD", code="9000001", label="Paracétamol 1 g, comprimé")

    event = issue(prescription(line(dci), line(ucd)), NUMBER, moment())

    assert [x.product.system for x in event.lines] == ["DCI", "UCD"]
