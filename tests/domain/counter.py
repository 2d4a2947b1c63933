"""A pharmacy counter for domain tests of v1.1's rules: prescriptions of one patient, their
narcotic coverage, and the pure commands applied to them. No I/O: the same decisions the
service makes, with the clock in the test's hands."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from msgspec.structs import replace

from domain.calendar import Moment
from domain.coverage import NarcoticCoverage, coverage_stream_of, evolve_coverage
from domain.decisions.corrections import Withdraw, withdraw
from domain.decisions.dispensing import Dispense, Dispensed, DispenseLine, dispense
from domain.dispensable import Allowance, allowances
from domain.errors import DomainError
from domain.events import PrescribedLine, PrescriptionIssued, Product
from domain.identifiers import Cip13, Finess, PrescriptionNumber
from domain.prescription import Prescription, evolve
from tests.domain.builders import ISSUED_ON, PATIENT, PHARMACIST, PHARMACY_A, PRESCRIBER

PARIS = ZoneInfo("Europe/Paris")
MORPHINE = Product(
    system="CIP13", code=Cip13.from_body("340093332352").value, label="Skenan LP 10 mg"
)
LEVOTHYROX = Product(
    system="CIP13", code=Cip13.from_body("340093000003").value, label="Lévothyroxine 75 µg"
)


def at(day: date, hour: int = 10, zone: ZoneInfo = PARIS) -> datetime:
    """An instant at `hour` o'clock on `day` in `zone`, in UTC as the server stamps it."""
    return datetime.combine(day, time(hour), zone).astimezone(UTC)


def days(n: int, since: date = ISSUED_ON) -> date:
    return since + timedelta(days=n)


def line(
    quantity: int,
    duration_days: int,
    *,
    narcotic: bool = False,
    fraction_days: int | None = None,
    overlap_allowed: bool = False,
    assimilated: bool = False,
    product: Product | None = None,
) -> PrescribedLine:
    return PrescribedLine(
        line_no=0,  # numbered by `prescribed`
        product=product or (MORPHINE if narcotic else LEVOTHYROX),
        quantity=quantity,
        dosage="1 par jour",
        duration_days=duration_days,
        narcotic=narcotic,
        assimilated=assimilated,
        fraction_days=fraction_days,
        overlap_allowed=overlap_allowed,
    )


def prescribed(
    *lines: PrescribedLine, issued_on: date = ISSUED_ON, seed: int = 1
) -> PrescriptionIssued:
    number = PrescriptionNumber.generate(lambda bits: (987654321 * seed) % (1 << bits))
    secure = any(line.narcotic or line.assimilated for line in lines)
    return PrescriptionIssued(
        prescription_id=number.value,
        version=1,
        at=at(issued_on, 9),
        prescriber_rpps=PRESCRIBER.value,
        patient_ins=PATIENT.value,
        issued_on=issued_on,
        kind="secure" if secure else "standard",
        execution_view_consent=True,
        lines=tuple(replace(line, line_no=no) for no, line in enumerate(lines, 1)),
    )


class Counter:
    """Prescriptions of one patient as their events left them, and the patient's coverage."""

    def __init__(self, *issued: PrescriptionIssued) -> None:
        self.states: dict[str, Prescription] = {e.prescription_id: evolve(e, None) for e in issued}
        self.coverage = NarcoticCoverage(stream_id=coverage_stream_of(PATIENT.value))
        self._count = 0

    def state(self, number: str) -> Prescription:
        return self.states[number]

    def allowed(
        self, number: str, when: datetime, finess: Finess = PHARMACY_A
    ) -> tuple[Allowance, ...]:
        return allowances(self.states[number], self.coverage, when, finess.value)

    def allowed_on(self, number: str, when: datetime, line_no: int = 1) -> Allowance:
        return self.allowed(number, when)[line_no - 1]

    def would_dispense(
        self, number: str, line_no: int, quantity: int, when: datetime, finess: Finess
    ) -> bool:
        """Whether the command accepts this dispensing now; nothing is applied."""
        request = Dispense(
            pharmacy=finess,
            pharmacist=PHARMACIST,
            lines=(DispenseLine(line_no=line_no, quantity=quantity),),
        )
        try:
            dispense(
                self.states[number],
                request,
                "trial",
                Moment(at=when, today=when.date()),
                self.coverage,
            )
        except DomainError:
            return False
        return True

    def dispense(
        self,
        number: str,
        *lines: tuple[int, int],
        when: datetime,
        finess: Finess = PHARMACY_A,
        product: Product | None = None,
    ) -> Dispensed:
        """Dispense at `when` (the server's clock too); applies the events when accepted."""
        self._count += 1
        request = Dispense(
            pharmacy=finess,
            pharmacist=PHARMACIST,
            lines=tuple(DispenseLine(line_no=n, quantity=q, product=product) for n, q in lines),
        )
        now = Moment(at=when, today=when.date())
        done = dispense(self.states[number], request, f"d{self._count}", now, self.coverage)
        self.states[number] = evolve(done.recorded, self.states[number])
        if done.coverage is not None:
            self.coverage = evolve_coverage(done.coverage, self.coverage)
        return done

    def withdraw(
        self, number: str, dispensation_id: str, when: datetime, finess: Finess = PHARMACY_A
    ) -> None:
        command = Withdraw(
            pharmacy=finess, pharmacist=PHARMACIST, dispensation_id=dispensation_id, reason="erreur"
        )
        decided = withdraw(
            self.states[number], command, Moment(at=when, today=when.date()), self.coverage
        )
        if decided is None:
            return
        withdrawn, released = decided
        self.states[number] = evolve(withdrawn, self.states[number])
        if released is not None:
            self.coverage = evolve_coverage(released, self.coverage)
