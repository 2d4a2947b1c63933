"""Corrections (contract v1.1): a dispensing withdrawn by its pharmacy, an adaptation agreed with
the prescriber. Given these events, when this command, then exactly these events or this refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from msgspec.structs import replace

from domain.calendar import Moment
from domain.coverage import NarcoticPeriodsReleased
from domain.decisions.corrections import RecordAdaptation, Withdraw, record_adaptation, withdraw
from domain.decisions.lifecycle import cancel
from domain.errors import DomainError
from domain.events import (
    AdaptationRecorded,
    BillingRecorded,
    DispensationWithdrawn,
)
from domain.identifiers import Finess
from domain.prescription import Adaptation, evolve
from tests.domain.builders import PHARMACIST, PHARMACY_A, PHARMACY_B, PRESCRIBER
from tests.domain.counter import Counter, at, days, line, prescribed

# --- withdrawal -------------------------------------------------------------------------------


def test_a_withdrawn_dispensing_counts_nowhere() -> None:
    issued = prescribed(line(3, 90))
    number = issued.prescription_id
    counter = Counter(issued)
    done = counter.dispense(number, (1, 1), when=at(days(0)))

    counter.withdraw(number, done.recorded.dispensation_id, at(days(1)))

    state = counter.state(number)
    assert (state.remaining(1), state.status(days(1))) == (3, "active")
    assert state.dispensations[0].withdrawn
    assert counter.allowed_on(number, at(days(1))).max_quantity == 1


def test_a_withdrawn_narcotic_dispensing_frees_its_days() -> None:
    first = prescribed(line(4, 28, narcotic=True), seed=1)
    second = prescribed(line(4, 28, narcotic=True), seed=2)
    counter = Counter(first, second)
    done = counter.dispense(first.prescription_id, (1, 4), when=at(days(0)))

    counter.withdraw(first.prescription_id, done.recorded.dispensation_id, at(days(1)))

    assert counter.coverage.periods == ()
    counter.dispense(second.prescription_id, (1, 4), when=at(days(1)))


def test_withdrawal_within_seven_days_only() -> None:
    issued = prescribed(line(3, 8))
    number = issued.prescription_id
    counter = Counter(issued)
    done = counter.dispense(number, (1, 1), when=at(days(0)))

    with pytest.raises(DomainError) as refused:
        counter.withdraw(number, done.recorded.dispensation_id, at(days(7)) + timedelta(hours=1))

    assert refused.value.code == "withdrawal_window_closed"
    counter.withdraw(number, done.recorded.dispensation_id, at(days(7)))


def test_only_the_pharmacy_that_dispensed_withdraws() -> None:
    issued = prescribed(line(3, 8))
    number = issued.prescription_id
    counter = Counter(issued)
    done = counter.dispense(number, (1, 1), when=at(days(0)))

    with pytest.raises(DomainError) as refused:
        counter.withdraw(number, done.recorded.dispensation_id, at(days(1)), PHARMACY_B)

    assert refused.value.code == "not_found"


def test_withdrawing_twice_records_nothing_the_second_time() -> None:
    issued = prescribed(line(3, 8))
    number = issued.prescription_id
    counter = Counter(issued)
    done = counter.dispense(number, (1, 1), when=at(days(0)))
    counter.withdraw(number, done.recorded.dispensation_id, at(days(1)))
    version = counter.state(number).version

    counter.withdraw(number, done.recorded.dispensation_id, at(days(1)))

    assert counter.state(number).version == version


def now(day: date, hour: int = 10) -> Moment:
    instant = at(day, hour)
    return Moment(at=instant, today=day)


def withdrawal(
    dispensation_id: str, pharmacy: Finess = PHARMACY_A, reason: str = "erreur"
) -> Withdraw:
    return Withdraw(
        pharmacy=pharmacy, pharmacist=PHARMACIST, dispensation_id=dispensation_id, reason=reason
    )


def refusal(call: Callable[[], object]) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        call()
    return refused.value.code, refused.value.field, refused.value.detail


@pytest.fixture
def narcotic() -> tuple[Counter, str, str]:
    issued = prescribed(line(4, 28, narcotic=True))
    counter = Counter(issued)
    done = counter.dispense(issued.prescription_id, (1, 2), when=at(days(0)))
    return counter, issued.prescription_id, done.recorded.dispensation_id


def test_a_withdrawal_records_who_and_why_and_releases_the_coverage(
    narcotic: tuple[Counter, str, str],
) -> None:
    counter, number, dispensation_id = narcotic
    state = counter.state(number)

    decided = withdraw(state, withdrawal(dispensation_id), now(days(1)), counter.coverage)

    assert decided == (
        DispensationWithdrawn(
            prescription_id=number,
            version=3,
            at=at(days(1)),
            dispensation_id=dispensation_id,
            finess=PHARMACY_A.value,
            pharmacist_rpps=PHARMACIST.value,
            reason="erreur",
        ),
        NarcoticPeriodsReleased(
            stream_id=counter.coverage.stream_id,
            version=2,
            at=at(days(1)),
            prescription_id=number,
            dispensation_id=dispensation_id,
        ),
    )


def test_a_withdrawal_without_coverage_releases_nothing(narcotic: tuple[Counter, str, str]) -> None:
    counter, number, dispensation_id = narcotic

    decided = withdraw(counter.state(number), withdrawal(dispensation_id), now(days(1)))

    assert decided is not None and decided[1] is None


def test_a_dispensing_that_covered_nothing_releases_nothing() -> None:
    issued = prescribed(line(3, 8))
    counter = Counter(issued)
    done = counter.dispense(issued.prescription_id, (1, 1), when=at(days(0)))

    decided = withdraw(
        counter.state(issued.prescription_id),
        withdrawal(done.recorded.dispensation_id),
        now(days(0)),
        counter.coverage,
    )

    assert decided is not None and decided[1] is None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            withdrawal("nope"),
            ("not_found", None, "no such dispensation of your pharmacy on this prescription"),
        ),
        (
            withdrawal("d1", PHARMACY_B),
            ("not_found", None, "no such dispensation of your pharmacy on this prescription"),
        ),
        (
            withdrawal("d1", reason="  "),
            ("invalid_request", "reason", "say why the dispensing is withdrawn"),
        ),
    ],
    ids=["unknown", "another-pharmacy", "no-reason"],
)
def test_a_withdrawal_that_cannot_be_is_refused(
    narcotic: tuple[Counter, str, str], command: Withdraw, expected: tuple[str, str | None, str]
) -> None:
    counter, number, _ = narcotic

    assert refusal(lambda: withdraw(counter.state(number), command, now(days(1)))) == expected


def test_a_billed_dispensing_is_not_withdrawn(narcotic: tuple[Counter, str, str]) -> None:
    counter, number, dispensation_id = narcotic
    state = counter.state(number)
    billed = evolve(
        BillingRecorded(
            prescription_id=number,
            version=state.version + 1,
            at=at(days(0), 12),
            dispensation_id=dispensation_id,
            finess=PHARMACY_A.value,
            pharmacist_rpps=PHARMACIST.value,
            invoice_number="F-1",
            lines=(),
        ),
        state,
    )

    assert refusal(lambda: withdraw(billed, withdrawal(dispensation_id), now(days(1)))) == (
        "already_billed",
        None,
        "a billed dispensing can no longer be withdrawn",
    )


def test_seven_days_to_the_minute(narcotic: tuple[Counter, str, str]) -> None:
    counter, number, dispensation_id = narcotic
    state = counter.state(number)
    handed_over = state.dispensations[0].dispensed_at
    last_moment = Moment(at=handed_over + timedelta(days=7), today=days(7))
    too_late = Moment(at=handed_over + timedelta(days=7, seconds=1), today=days(7))

    assert withdraw(state, withdrawal(dispensation_id), last_moment) is not None
    code, field, detail = refusal(lambda: withdraw(state, withdrawal(dispensation_id), too_late))
    assert (code, field) == ("withdrawal_window_closed", None)
    assert detail == f"a dispensing may be withdrawn within 7 days of {handed_over}"


# --- adaptation -------------------------------------------------------------------------------


def adaptation(**changes: object) -> RecordAdaptation:
    agreed = RecordAdaptation(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        line_no=1,
        description="boîte de 28 au lieu de 30",
        agreed_by=PRESCRIBER,
        agreed_on=days(2),
        dispensation_id=None,
    )
    return replace(agreed, **changes)


def test_an_adaptation_records_the_agreement_and_who_made_it(
    narcotic: tuple[Counter, str, str],
) -> None:
    counter, number, dispensation_id = narcotic
    state = counter.state(number)

    event = record_adaptation(state, adaptation(dispensation_id=dispensation_id), now(days(2)))
    after = evolve(event, state)

    assert event == AdaptationRecorded(
        prescription_id=number,
        version=3,
        at=at(days(2)),
        line_no=1,
        description="boîte de 28 au lieu de 30",
        agreed_by_rpps=PRESCRIBER.value,
        agreed_on=days(2),
        finess=PHARMACY_A.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensation_id=dispensation_id,
    )
    assert after.adaptations == (
        Adaptation(
            line_no=1,
            description="boîte de 28 au lieu de 30",
            agreed_by_rpps=PRESCRIBER.value,
            agreed_on=days(2),
            finess=PHARMACY_A.value,
            pharmacist_rpps=PHARMACIST.value,
            recorded_at=at(days(2)),
            dispensation_id=dispensation_id,
        ),
    )
    assert after.version == 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"line_no": 2}, ("invalid_request", "line_no", "this prescription has no line 2")),
        ({"description": " "}, ("invalid_request", "description", "describe the adaptation")),
        (
            {"agreed_on": days(3)},
            (
                "invalid_request",
                "agreed_on",
                "the agreement is dated between 2026-11-23 and 2026-11-25",
            ),
        ),
        (
            {"agreed_on": days(-1)},
            (
                "invalid_request",
                "agreed_on",
                "the agreement is dated between 2026-11-23 and 2026-11-25",
            ),
        ),
        (
            {"dispensation_id": "nope"},
            ("invalid_request", "dispensation_id", "no such dispensation of your pharmacy"),
        ),
        (
            {"pharmacy": PHARMACY_B, "dispensation_id": "d1"},
            ("invalid_request", "dispensation_id", "no such dispensation of your pharmacy"),
        ),
    ],
    ids=[
        "unknown-line",
        "blank",
        "agreed-tomorrow",
        "agreed-before-issuing",
        "unknown-d",
        "other-d",
    ],
)
def test_an_impossible_adaptation_is_refused(
    narcotic: tuple[Counter, str, str],
    changes: dict[str, object],
    expected: tuple[str, str | None, str],
) -> None:
    counter, number, _ = narcotic
    state = counter.state(number)

    assert (
        refusal(lambda: record_adaptation(state, adaptation(**changes), now(days(2)))) == expected
    )


def test_adaptations_are_agreed_on_the_issuing_day_or_today() -> None:
    issued = prescribed(line(3, 8))
    state = Counter(issued).state(issued.prescription_id)

    for agreed_on in (days(0), days(2)):
        event = record_adaptation(state, adaptation(agreed_on=agreed_on), now(days(2)))
        assert event.agreed_on == agreed_on


def test_no_adaptation_on_a_cancelled_prescription() -> None:

    issued = prescribed(line(3, 8))
    state = Counter(issued).state(issued.prescription_id)
    cancelled = evolve(cancel(state, "erreur", now(days(1))), state)

    assert refusal(lambda: record_adaptation(cancelled, adaptation(), now(days(2)))) == (
        "prescription_cancelled",
        None,
        "this prescription was cancelled",
    )
