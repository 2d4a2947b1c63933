"""Every refusal of the commands, as the LGO and LAP receive it: code, field and detail, word for
word. Software branches on the code; people read the detail at the counter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from domain.calendar import Moment
from domain.decisions.billing import Bill, bill
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.decisions.lifecycle import cancel
from domain.decisions.sending import transmit
from domain.errors import DomainError
from domain.events import (
    BilledLine,
    BillingRecorded,
    Event,
    PrescriptionCancelled,
    PrescriptionIssued,
    PrescriptionTransmitted,
    Product,
)
from tests.domain.builders import (
    ISSUED_ON,
    NUMBER,
    PARACETAMOL,
    PATIENT,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    given,
    issued,
    moment,
    request,
)
from tests.domain.counter import Counter, at, days, line, prescribed
from tests.domain.decisions.test_billing import billing
from tests.domain.reconciliation.test_chunk import withdrawn

CANCELLED = PrescriptionCancelled(
    prescription_id=NUMBER.value, version=2, at=moment().at, prescriber_rpps="x", reason="x"
)


def _issue(
    *products: Product, quantity: int = 1, issued_on: date = ISSUED_ON, duration_days: int = 8
) -> Callable[[], PrescriptionIssued]:
    command = IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=issued_on,
        kind="standard",
        execution_view_consent=True,
        lines=tuple(
            RequestedLine(product=p, quantity=quantity, dosage="x", duration_days=duration_days)
            for p in products
        ),
    )
    return lambda: issue(command, NUMBER, moment())


def _dispense_at(offset: timedelta | None, naive: bool = False) -> Callable[[], object]:
    state = given(issued(3))
    now = moment(days(2))
    handed_over = None if offset is None else now.at + offset
    if handed_over is not None and naive:
        handed_over = handed_over.replace(tzinfo=None)
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1),),
        dispensed_at=handed_over,
    )
    return lambda: dispense(state, command, "d1", now)


def _dispense_before_registration() -> Callable[[], object]:
    state = given(issued(3))
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1),),
        dispensed_at=moment().at - timedelta(minutes=1),
    )
    return lambda: dispense(state, command, "d1", moment())


def _too_many(*given_packs: int, asked: int, on: int) -> Callable[[], object]:
    issued_event = prescribed(line(12, 360))
    counter = Counter(issued_event)
    for day in given_packs:
        counter.dispense(issued_event.prescription_id, (1, 1), when=at(days(day)))
    return lambda: counter.dispense(issued_event.prescription_id, (1, asked), when=at(days(on)))


def _dispense_by_substance(product: Product | None) -> Callable[[], object]:
    """A line written by substance (DCI), dispensed naming `product` (None: naming nothing)."""
    issued_event = prescribed(line(2, 6, product=Product(system="DCI", label="amoxicilline")))
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=product),),
    )
    return lambda: dispense(
        Counter(issued_event).state(issued_event.prescription_id),
        command,
        "d1",
        Moment(at=at(days(0)), today=days(0)),
    )


def _bill(*events: Event, command: Bill, number_used: bool = False) -> Callable[[], object]:
    return lambda: bill(given(*events), command, moment(), invoice_number_used=number_used)


GIVEN_TWO = (issued(3), dispensed(2, (1, 2)))
BILLED = BillingRecorded(
    prescription_id=NUMBER.value,
    version=3,
    at=moment().at,
    dispensation_id="d1",
    finess=PHARMACY_A.value,
    pharmacist_rpps=PHARMACIST.value,
    invoice_number="F-0",
    lines=(BilledLine(line_no=1, quantity=2, amount_cents=500),),
)
TOO_LONG = "l" * 10
REFUSALS: list[tuple[str, Callable[[], object], tuple[str, str | None, str]]] = [
    (
        "cancel-twice",
        lambda: cancel(given(issued(3), CANCELLED), "x", moment()),
        ("prescription_cancelled", None, "this prescription was already cancelled"),
    ),
    (
        "dispense-cancelled",
        lambda: dispense(given(issued(3), CANCELLED), request((1, 1)), "d", moment()),
        ("prescription_cancelled", None, "this prescription was cancelled"),
    ),
    (
        "dispense-everything-given",
        lambda: dispense(given(issued(1), dispensed(2, (1, 1))), request((1, 1)), "d", moment()),
        ("already_dispensed", None, "everything on this prescription was dispensed"),
    ),
    (
        "dispense-expired",
        lambda: dispense(given(issued(3)), request((1, 1)), "d", moment(days(100))),
        ("prescription_expired", None, "this prescription could be dispensed until 2027-02-23"),
    ),
    (
        "line-with-nothing-left",
        lambda: dispense(given(issued(1, 3), dispensed(2, (1, 1))), request((1, 1)), "d", moment()),
        ("already_dispensed", "lines[0].quantity", "line 1 has nothing left to dispense"),
    ),
    (
        "more-than-remains",
        lambda: dispense(given(issued(3)), request((1, 4)), "d", moment()),
        ("quantity_exceeds_remaining", "lines[0].quantity", "line 1 has 3 left, 4 asked"),
    ),
    (
        "more-than-remains-on-the-second-line",
        lambda: dispense(given(issued(3, 3)), request((1, 1), (2, 4)), "d", moment()),
        ("quantity_exceeds_remaining", "lines[1].quantity", "line 2 has 3 left, 4 asked"),
    ),
    (
        "more-than-a-month",
        _too_many(asked=2, on=0),
        (
            "quantity_exceeds_allowed_now",
            "lines[0].quantity",
            "line 1: at most 1 may be dispensed now, 2 asked (one dispensing covers at most 30 "
            "days: 1 pack(s) of this line)",
        ),
    ),
    (
        "no-line",
        lambda: dispense(given(issued(3)), request(), "d", moment()),
        ("invalid_request", "lines", "at least one line is needed"),
    ),
    (
        "fifty-one-lines",
        lambda: dispense(given(issued(3)), request(*[(n, 1) for n in range(1, 52)]), "d", moment()),
        ("invalid_request", "lines", "at most 50 lines"),
    ),
    (
        "no-offset",
        _dispense_at(timedelta(hours=-1), naive=True),
        ("invalid_request", "dispensed_at", "dispensed_at needs its UTC offset (RFC 3339)"),
    ),
    (
        "ahead",
        _dispense_at(timedelta(minutes=6)),
        (
            "invalid_request",
            "dispensed_at",
            "dispensed_at may be at most 5 minutes ahead of the server's clock",
        ),
    ),
    (
        "behind",
        _dispense_at(timedelta(hours=-73)),
        (
            "invalid_request",
            "dispensed_at",
            "dispensed_at may be at most 72 hours before the server's clock",
        ),
    ),
    (
        "before-registration",
        _dispense_before_registration(),
        (
            "invalid_request",
            "dispensed_at",
            "dispensed_at is before the prescription was registered",
        ),
    ),
    (
        "transmit-cancelled",
        lambda: transmit(given(issued(3), CANCELLED), PHARMACY_B, "", moment()),
        ("prescription_cancelled", None, "this prescription was cancelled"),
    ),
    (
        "blank-label",
        _issue(Product(system="CIP13", code=PARACETAMOL.code, label=" ")),
        ("invalid_request", "lines[0].product.label", "a product needs a label"),
    ),
    (
        "dci-with-code",
        _issue(Product(system="DCI", code="1", label="paracétamol")),
        (
            "invalid_request",
            "lines[0].product",
            "a DCI product is a substance name, written in label, with no code",
        ),
    ),
    (
        "ucd-without-code",
        _issue(Product(system="UCD", label="x")),
        ("invalid_request", "lines[0].product.code", "a UCD product needs a code"),
    ),
    (
        "ucd-eight-digits",
        _issue(Product(system="UCD", code="12345678", label="x")),
        (
            "invalid_request",
            "lines[0].product.code",
            "a UCD code has 7 digits (UCD7) or 13 digits (UCD13)",
        ),
    ),
    (
        "ucd-letters",
        _issue(Product(system="UCD", code="123456a", label="x")),
        (
            "invalid_request",
            "lines[0].product.code",
            "a UCD code has 7 digits (UCD7) or 13 digits (UCD13)",
        ),
    ),
    (
        "ucd-non-ascii-digits",
        _issue(Product(system="UCD", code="١٢٣٤٥٦٧", label="x")),
        (
            "invalid_request",
            "lines[0].product.code",
            "a UCD code has 7 digits (UCD7) or 13 digits (UCD13)",
        ),
    ),
    (
        "cip13-bad-key",
        _issue(Product(system="CIP13", code="3400930000008", label="x")),
        ("invalid_request", "lines[0].product.code", "CIP13 check digit does not match"),
    ),
    (
        "a-thousand-packs",
        _issue(PARACETAMOL, quantity=1000),
        ("invalid_request", "lines[0].quantity", "must be between 1 and 999, got 1000"),
    ),
    (
        "issued-tomorrow",
        _issue(PARACETAMOL, issued_on=days(1)),
        ("invalid_request", "issued_on", "issued_on may not be in the future"),
    ),
    (
        "substance-line-without-its-pack",
        _dispense_by_substance(None),
        (
            "invalid_request",
            "lines[0].product",
            "line 1 is prescribed by substance (DCI): name the CIP13 pack handed over",
        ),
    ),
    (
        "substance-line-with-a-unit",
        _dispense_by_substance(Product(system="UCD", code="9000001", label="amoxicilline")),
        (
            "invalid_request",
            "lines[0].product",
            "line 1 is prescribed by substance (DCI): name the CIP13 pack handed over",
        ),
    ),
    (
        "substitute-without-a-label",
        _dispense_by_substance(Product(system="CIP13", code=PARACETAMOL.code, label=" ")),
        ("invalid_request", "lines[0].product.label", "a product needs a label"),
    ),
    (
        "substitute-with-a-bad-key",
        _dispense_by_substance(Product(system="CIP13", code="3400930000008", label="x")),
        ("invalid_request", "lines[0].product.code", "CIP13 check digit does not match"),
    ),
    # --- billing (exécution en 2 temps) ---
    (
        "bill-an-unknown-dispensation",
        _bill(*GIVEN_TWO, command=billing((1, 1), dispensation_id="d9")),
        ("not_found", None, "no such dispensation on this prescription"),
    ),
    (
        "bill-another-pharmacy-dispensing",
        _bill(*GIVEN_TWO, command=billing((1, 1), pharmacy=PHARMACY_B)),
        ("forbidden", None, "only the pharmacy that dispensed may bill it"),
    ),
    (
        "bill-a-withdrawn-dispensing",
        _bill(*GIVEN_TWO, withdrawn(3), command=billing((1, 1))),
        (
            "dispensation_withdrawn",
            None,
            "this dispensation was withdrawn: there is nothing to bill",
        ),
    ),
    (
        "bill-twice",
        _bill(*GIVEN_TWO, BILLED, command=billing((1, 1))),
        ("already_billed", None, "this dispensation was already billed"),
    ),
    (
        "bill-under-a-used-number",
        _bill(*GIVEN_TWO, command=billing((1, 1), invoice_number="F-7"), number_used=True),
        (
            "invoice_number_used",
            "invoice_number",
            f"pharmacy {PHARMACY_A.value} already used invoice number 'F-7'",
        ),
    ),
    (
        "bill-more-than-given",
        _bill(*GIVEN_TWO, command=billing((1, 3))),
        ("billing_exceeds_dispensed", None, "line 1: 3 billed but 2 dispensed"),
    ),
    (
        "bill-without-invoice-number",
        _bill(*GIVEN_TWO, command=billing((1, 1), invoice_number=" ")),
        ("invalid_request", "invoice_number", "an invoice number is needed"),
    ),
    (
        "bill-no-line",
        _bill(*GIVEN_TWO, command=billing()),
        ("invalid_request", "lines", "at least one line is needed"),
    ),
    (
        "bill-a-line-twice",
        _bill(*GIVEN_TWO, command=billing((1, 1), (1, 1))),
        ("invalid_request", "lines", "line_no 1 appears twice; send one entry per line"),
    ),
    (
        "bill-no-pack",
        _bill(*GIVEN_TWO, command=billing((1, 0))),
        ("invalid_request", "lines[0].quantity", "must be between 1 and 999, got 0"),
    ),
]


@pytest.mark.parametrize(("case", "call", "expected"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_the_refusal_says_exactly_why(
    case: str, call: Callable[[], object], expected: tuple[str, str | None, str]
) -> None:
    with pytest.raises(DomainError) as refused:
        call()

    assert (refused.value.code, refused.value.field, refused.value.detail) == expected


def test_a_refusal_prints_as_its_code_detail_and_field() -> None:
    error = DomainError("invalid_request", "bad", field="lines")

    assert repr(error) == "DomainError('invalid_request', 'bad', field='lines')"
    assert str(error) == "bad" and error.max_quantity is None


def test_thirteen_digit_ucd_and_999_packs_are_accepted() -> None:
    ucd13 = Product(system="UCD", code="3400890000001", label="x")

    event = _issue(ucd13, quantity=999)()

    assert event.lines[0].quantity == 999


def test_fifty_lines_and_a_one_day_treatment_are_accepted() -> None:
    event = _issue(*[PARACETAMOL] * 50, duration_days=1)()

    assert [(x.line_no, x.duration_days) for x in event.lines] == [(no, 1) for no in range(1, 51)]


def test_a_transmission_records_the_pharmacy_and_the_message() -> None:
    event = transmit(given(issued(3)), PHARMACY_B, "Je passe à 18 h", moment())

    assert event == PrescriptionTransmitted(
        prescription_id=NUMBER.value,
        version=2,
        at=moment().at,
        finess=PHARMACY_B.value,
        message="Je passe à 18 h",
    )


def test_a_cancellation_is_the_next_version() -> None:
    assert cancel(given(issued(3), dispensed(2, (1, 1))), "erreur", moment()).version == 3


def test_a_prescription_issued_today_is_decided_in_the_pharmacy_calendar() -> None:
    late_evening = Moment(at=at(days(0), 23), today=days(0))

    event = transmit(given(issued(3)), PHARMACY_B, "", late_evening)

    assert event.at == late_evening.at
