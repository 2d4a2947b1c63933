"""Made-up prescriptions in volume, for the benchmarks and the invoice generator.

Every event is decided by `domain.decisions` on the state folded so far, as the API would decide
it (issue, transmit, dispense, withdraw, bill), never written by hand: a log made here is one
the service could have written, and follows the rules when they change.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from domain.calendar import Moment, paris_day
from domain.decisions import billing, corrections, dispensing, issuing, sending
from domain.decisions.dispensing import Dispense, DispenseLine
from domain.decisions.issuing import RequestedLine
from domain.events import BilledLine, DispensationRecorded, Event, PrescriptionIssued, Product
from domain.identifiers import Finess, Ins, PrescriptionNumber, Rpps
from domain.prescription import Prescription, evolve
from tools import cast

if TYPE_CHECKING:
    from adapters.librarylog import LibraryLog

PRESCRIPTIONS_PER_APPEND = 1000  # one transaction each


def moment(at: datetime | None = None) -> Moment:
    """The instant commands are decided at (now by default), with its day in France, as the
    service's clock gives it."""
    at = at or datetime.now(UTC)
    return Moment(at=at, today=paris_day(at))


class Story:
    """One prescription's events so far, and its state folded from them."""

    def __init__(self, issued: PrescriptionIssued) -> None:
        self.events: list[Event] = [issued]
        self.state: Prescription = evolve(issued, None)

    def then(self, event: Event) -> None:
        self.events.append(event)
        self.state = evolve(event, self.state)

    def issued(self) -> PrescriptionIssued:
        first = self.events[0]
        assert isinstance(first, PrescriptionIssued)
        return first


def issued(
    number: PrescriptionNumber,
    prescriber: Rpps,
    patient: Ins,
    lines: Sequence[RequestedLine],
    now: Moment,
    *,
    consent: bool = True,
) -> Story:
    """A standard prescription issued today."""
    command = issuing.IssuePrescription(
        prescriber=prescriber,
        patient=patient,
        issued_on=now.today,
        kind="standard",
        execution_view_consent=consent,
        lines=tuple(lines),
    )
    return Story(issuing.issue(command, number, now))


def dispensed(
    story: Story,
    pharmacy: Finess,
    pharmacist: Rpps,
    handed: Sequence[DispenseLine],
    *,
    dispensation_id: str,
    now: Moment,
) -> DispensationRecorded:
    """Packs handed over at `pharmacy`, recorded on the story; the recorded event."""
    command = Dispense(pharmacy=pharmacy, pharmacist=pharmacist, lines=tuple(handed))
    recorded = dispensing.dispense(story.state, command, dispensation_id, now).recorded
    story.then(recorded)
    return recorded


def withdrawn(
    story: Story, pharmacy: Finess, pharmacist: Rpps, dispensation_id: str, now: Moment
) -> None:
    """A dispensing withdrawn as recorded in error."""
    command = corrections.Withdraw(
        pharmacy=pharmacy,
        pharmacist=pharmacist,
        dispensation_id=dispensation_id,
        reason="recorded in error",
    )
    decided = corrections.withdraw(story.state, command, now)
    assert decided is not None, "a dispensing withdrawn once"
    story.then(decided[0])


def billed(
    story: Story, dispensing: DispensationRecorded, invoice_number: str, now: Moment
) -> None:
    """The pharmacy's LGO billed the dispensing as handed over, 2.50 EUR a pack."""
    lines = tuple(
        BilledLine(line_no=line.line_no, quantity=line.quantity, amount_cents=250 * line.quantity)
        for line in dispensing.lines
    )
    command = billing.Bill(
        pharmacy=Finess(dispensing.finess),
        pharmacist=Rpps(dispensing.pharmacist_rpps),
        dispensation_id=dispensing.dispensation_id,
        invoice_number=invoice_number,
        lines=lines,
    )
    story.then(billing.bill(story.state, command, now))


# --- the read side's day: issued, sent to one pharmacy, dispensed in one or two visits ---------

PARACETAMOL = Product(system="CIP13", code=cast.PARACETAMOL.value, label="Para")
PHARMACY = cast.PHARMACY
PHARMACIST = cast.PHARMACIST
READ_SIDE_PRESCRIBERS = [cast.prescriber(n) for n in range(50)]
READ_SIDE_PATIENTS = [cast.patient(n) for n in range(1000)]


def sent_and_dispensed(n: int, now: Moment, *, withdraw_last: bool = False) -> list[Event]:
    """The n-th prescription of the day: 3 packs of paracetamol, sent to the pharmacy, dispensed
    in one visit (n even: 1 pack) or two (n odd: 2 packs, then 1), the last one withdrawn if
    asked; one in five patients has refused the execution view. About 3.5 events a
    prescription."""
    line = RequestedLine(product=PARACETAMOL, quantity=3, dosage="x", duration_days=8)
    prescriber, patient = READ_SIDE_PRESCRIBERS[n % 50], READ_SIDE_PATIENTS[n % 1000]
    number = PrescriptionNumber.generate()
    story = issued(number, prescriber, patient, [line], now, consent=n % 5 != 0)
    story.then(sending.transmit(story.state, PHARMACY, "", now))
    for visit, quantity in enumerate((1 + n % 2, 1)[: 1 + n % 2]):
        handed = [DispenseLine(line_no=1, quantity=quantity)]
        dispensed(story, PHARMACY, PHARMACIST, handed, dispensation_id=f"d{n}-{visit}", now=now)
    if withdraw_last:
        last = story.state.dispensations[-1].dispensation_id
        withdrawn(story, PHARMACY, PHARMACIST, last, now)
    return story.events


# --- the insurer's day: many products and pharmacies, some billed, a few withdrawn --------------

BILLED_SHARE = 0.3  # of first dispensings billed through the API (exécution en 2 temps)
SUBSTITUTED_SHARE = 0.2  # of first dispensings' lines handed over as another product
SECOND_VISIT_SHARE = 0.2  # of prescriptions with packs left, dispensed again elsewhere
WITHDRAWN_SHARE = 0.05  # of second dispensings withdrawn as recorded in error
# The rules keep the rest of a line for later (what was handed over covers some days of the
# treatment): these prescriptions were issued and first dispensed this long before `now`.
SECOND_VISIT_AFTER = timedelta(days=20)
PRODUCTS = [
    Product(system="CIP13", code=cast.product(n).value, label=f"Spécialité {n}")
    for n in range(1, 2001)
]
PHARMACIES = [cast.pharmacy(n) for n in range(2000)]
PHARMACISTS = [cast.pharmacist(n) for n in range(200)]
PRESCRIBERS = [cast.prescriber(n) for n in range(500)]


def dispensed_and_billed(rng: random.Random, n: int, now: Moment) -> list[Event]:
    """The n-th prescription: 1 to 3 lines, issued and dispensed by one pharmacy 20 days before
    `now` (now and then a line as another product), sometimes the rest by a second one at
    `now` (rarely withdrawn); the first dispensing billed through the API 30 % of the time."""
    earlier = moment(now.at - SECOND_VISIT_AFTER)
    lines = [
        RequestedLine(
            product=rng.choice(PRODUCTS),
            quantity=rng.randint(1, 3),
            dosage="1 comprimé matin et soir",
            duration_days=30,
            narcotic=False,
        )
        for _ in range(rng.randint(1, 3))
    ]
    number = PrescriptionNumber.generate(rng.getrandbits)
    patient = cast.patient(n % 100_000)
    story = issued(number, rng.choice(PRESCRIBERS), patient, lines, earlier)
    first, second = rng.sample(PHARMACIES, 2)
    prescribed = story.issued().lines
    handed = {line.line_no: rng.randint(1, line.quantity) for line in prescribed}
    first_visit = [
        DispenseLine(
            line_no=line.line_no,
            quantity=handed[line.line_no],
            product=rng.choice(PRODUCTS) if rng.random() < SUBSTITUTED_SHARE else None,
        )
        for line in prescribed
    ]
    pharmacist = rng.choice(PHARMACISTS)
    dispensing = dispensed(
        story, first, pharmacist, first_visit, dispensation_id=f"d{n}-1", now=earlier
    )
    rest = [
        DispenseLine(line_no=line.line_no, quantity=line.quantity - handed[line.line_no])
        for line in prescribed
        if line.quantity > handed[line.line_no]
    ]
    if rest and rng.random() < SECOND_VISIT_SHARE:
        dispensed(story, second, rng.choice(PHARMACISTS), rest, dispensation_id=f"d{n}-2", now=now)
        if rng.random() < WITHDRAWN_SHARE:
            withdrawn(story, second, PHARMACISTS[0], f"d{n}-2", now)
    if rng.random() < BILLED_SHARE:
        billed(story, dispensing, f"B{n:09d}", now)
    return story.events


# --- into a log ---------------------------------------------------------------------------------

Progress = Callable[[int, int], None]  # (prescriptions appended, events appended) so far


def append_prescriptions(
    log: LibraryLog, count: int, prescription: Callable[[int], list[Event]], progress: Progress
) -> tuple[int, float]:
    """`count` prescriptions made by `prescription(n)`, appended 1,000 to a transaction; the
    events appended, and the seconds spent in `LibraryLog.append` alone (making them is not the
    log's cost). `progress` hears after every 50th append."""
    appended, appending = 0, 0.0
    for start in range(0, count, PRESCRIPTIONS_PER_APPEND):
        batch: list[Event] = []
        for n in range(start, min(start + PRESCRIPTIONS_PER_APPEND, count)):
            batch += prescription(n)
        began = time.perf_counter()
        log.append(batch)
        appending += time.perf_counter() - began
        appended += len(batch)
        if (start // PRESCRIPTIONS_PER_APPEND) % 50 == 49:
            progress(start + PRESCRIPTIONS_PER_APPEND, appended)
    return appended, appending
