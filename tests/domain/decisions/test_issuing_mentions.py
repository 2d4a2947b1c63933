"""Prescribing v1.1: narcotics, assimilated products, fractions and the overlap mention, as the
prescriber writes them; each refusal names the field and says why, word for word."""

from __future__ import annotations

import pytest

from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.errors import DomainError
from domain.events import PrescribedLine, PrescriptionIssued, PrescriptionKind, Product
from tests.domain.builders import ISSUED_ON, NUMBER, PARACETAMOL, PATIENT, PRESCRIBER, moment

MORPHINE = Product(system="CIP13", code=PARACETAMOL.code, label="Skenan LP 10 mg")


def written(
    quantity: int = 4,
    days: int = 28,
    *,
    narcotic: bool = False,
    assimilated: bool = False,
    fraction_days: int | None = None,
    overlap_allowed: bool = False,
) -> RequestedLine:
    return RequestedLine(
        product=MORPHINE,
        quantity=quantity,
        dosage="1 matin et soir",
        duration_days=days,
        narcotic=narcotic,
        assimilated=assimilated,
        fraction_days=fraction_days,
        overlap_allowed=overlap_allowed,
    )


def on(kind: PrescriptionKind, *lines: RequestedLine) -> IssuePrescription:
    return IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=ISSUED_ON,
        kind=kind,
        execution_view_consent=False,
        lines=lines,
    )


def test_every_mention_is_recorded_as_written() -> None:
    command = on(
        "secure",
        written(narcotic=True, fraction_days=7, overlap_allowed=True),
        written(3, 84, assimilated=True),
    )

    event = issue(command, NUMBER, moment())

    assert event == PrescriptionIssued(
        prescription_id=NUMBER.value,
        version=1,
        at=moment().at,
        prescriber_rpps=PRESCRIBER.value,
        patient_ins=PATIENT.value,
        issued_on=ISSUED_ON,
        kind="secure",
        execution_view_consent=False,
        lines=(
            PrescribedLine(
                line_no=1,
                product=MORPHINE,
                quantity=4,
                dosage="1 matin et soir",
                duration_days=28,
                narcotic=True,
                fraction_days=7,
                overlap_allowed=True,
            ),
            PrescribedLine(
                line_no=2,
                product=MORPHINE,
                quantity=3,
                dosage="1 matin et soir",
                duration_days=84,
                narcotic=False,
                assimilated=True,
            ),
        ),
    )
    assert [line.secure_only for line in event.lines] == [True, True]


@pytest.mark.parametrize(
    ("command", "field", "detail"),
    [
        (
            on("standard", written(narcotic=True)),
            "lines[0]",
            "a narcotic line needs a secure prescription (kind 'secure')",
        ),
        (
            on("standard", written(assimilated=True)),
            "lines[0]",
            "an assimilated line needs a secure prescription (kind 'secure')",
        ),
        (
            on("secure", written(days=29, narcotic=True)),
            "lines[0].duration_days",
            "a narcotic line covers at most 28 days",
        ),
        (
            on("secure", written(days=85, assimilated=True)),
            "lines[0].duration_days",
            "an assimilated line covers at most 84 days",
        ),
        (
            on("secure", written(days=85, narcotic=True, assimilated=True)),
            "lines[0].duration_days",
            "a narcotic line covers at most 28 days",
        ),
        (
            on("secure", written(fraction_days=7)),
            "lines[0].fraction_days",
            "fraction_days is for narcotic lines and products dispensed in fractions only",
        ),
        (
            on("secure", written(narcotic=True, fraction_days=28)),
            "lines[0].fraction_days",
            "must be between 1 and 27, got 28",
        ),
        (
            on("secure", written(narcotic=True, fraction_days=0)),
            "lines[0].fraction_days",
            "must be between 1 and 27, got 0",
        ),
        (
            on("standard", written(overlap_allowed=True)),
            "lines[0].overlap_allowed",
            "overlap_allowed is for narcotic lines and products whose overlap is forbidden only",
        ),
    ],
    ids=[
        "narcotic-standard",
        "assimilated-standard",
        "narcotic-29-days",
        "assimilated-85-days",
        "both-narcotic-rules-first",
        "fraction-not-narcotic",
        "fraction-as-long-as-the-line",
        "fraction-of-zero-days",
        "overlap-not-narcotic",
    ],
)
def test_a_mention_that_does_not_fit_is_refused(
    command: IssuePrescription, field: str, detail: str
) -> None:
    with pytest.raises(DomainError) as refusal:
        issue(command, NUMBER, moment())

    assert (refusal.value.code, refusal.value.field, refusal.value.detail) == (
        "invalid_request",
        field,
        detail,
    )


@pytest.mark.parametrize(
    "line",
    [
        written(days=28, narcotic=True, fraction_days=27),
        written(days=28, narcotic=True, fraction_days=1),
        written(days=84, assimilated=True),
    ],
    ids=["fraction-one-day-short", "fraction-of-one-day", "assimilated-84-days"],
)
def test_a_mention_at_its_bound_is_accepted(line: RequestedLine) -> None:
    assert issue(on("secure", line), NUMBER, moment()).lines[0].duration_days == line.duration_days


def test_the_same_line_on_a_secure_prescription_needs_no_mention() -> None:
    event = issue(on("secure", written(3, 90)), NUMBER, moment())

    assert event.lines[0].secure_only is False
