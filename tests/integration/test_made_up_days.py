"""The benchmarks' and the invoice generator's made-up days (tools.busy_day): every event is
one the commands decided, so each prescription's history folds into a state the service could
have reached."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from adapters.librarylog import open_library_log
from domain.events import (
    BillingRecorded,
    DispensationRecorded,
    DispensationWithdrawn,
    Event,
    PrescriptionTransmitted,
)
from domain.prescription import Prescription, fold
from tools import busy_day

NOW = busy_day.moment(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))


def folded(events: list[Event]) -> Prescription:
    state = fold(events)
    assert state is not None
    return state


def test_a_read_side_day_sends_each_prescription_and_dispenses_it_in_one_or_two_visits() -> None:
    days = [busy_day.sent_and_dispensed(n, NOW) for n in range(10)]

    states = [folded(events) for events in days]
    assert sum(len(events) for events in days) == 35  # 3.5 events a prescription
    assert all(isinstance(events[1], PrescriptionTransmitted) for events in days)
    assert [sum(d.lines[0].quantity for d in s.dispensations) for s in states] == [1, 3] * 5
    assert [s.execution_view_consent for s in states] == [n % 5 != 0 for n in range(10)]
    assert all(s.version == len(events) for s, events in zip(states, days, strict=True))


def test_a_read_side_prescription_may_have_its_last_dispensing_withdrawn() -> None:
    events = busy_day.sent_and_dispensed(3, NOW, withdraw_last=True)

    state = folded(events)
    assert isinstance(events[-1], DispensationWithdrawn)
    assert [d.withdrawn for d in state.dispensations] == [False, True]
    assert state.lines[0].dispensed == 2


def test_an_insurer_day_dispenses_every_prescription_and_bills_only_first_dispensings() -> None:
    rng = random.Random("insurer")
    days = [busy_day.dispensed_and_billed(rng, n, NOW) for n in range(400)]

    kinds = Counter(type(event).__name__ for events in days for event in events)
    assert kinds["PrescriptionIssued"] == 400
    assert 400 < kinds["DispensationRecorded"] < 500  # a second visit now and then
    assert 0 < kinds["DispensationWithdrawn"] < kinds["DispensationRecorded"] - 400
    assert 80 < kinds["BillingRecorded"] < 160  # about 30 %
    for events in days:
        state = folded(events)
        assert state.dispensations[0].dispensation_id.endswith("-1")
        billings = [e for e in events if isinstance(e, BillingRecorded)]
        assert all(b.dispensation_id == state.dispensations[0].dispensation_id for b in billings)
        withdrawals = [e for e in events if isinstance(e, DispensationWithdrawn)]
        assert all(w.dispensation_id.endswith("-2") for w in withdrawals)


def test_a_second_visit_comes_twenty_days_after_the_first_as_the_rules_require() -> None:
    rng = random.Random("visits")
    days = [busy_day.dispensed_and_billed(rng, n, NOW) for n in range(200)]

    visits = [
        [e for e in events if isinstance(e, DispensationRecorded)]
        for events in days
        if sum(isinstance(e, DispensationRecorded) for e in events) == 2
    ]
    assert visits
    for first, second in visits:
        assert second.dispensed_at - first.dispensed_at == busy_day.SECOND_VISIT_AFTER
        assert second.dispensed_at == NOW.at


def test_the_same_seed_makes_the_same_insurer_day() -> None:
    def day(seed: str) -> list[Event]:
        rng = random.Random(seed)
        return [e for n in range(50) for e in busy_day.dispensed_and_billed(rng, n, NOW)]

    assert day("one") == day("one")
    assert day("one") != day("two")


def test_a_made_up_day_appended_to_a_real_log_reads_back_prescription_by_prescription(
    tmp_path: Path,
) -> None:
    log = open_library_log(None, tmp_path)
    try:
        appended, seconds = busy_day.append_prescriptions(
            log, 2500, day_of("log"), lambda done, events: None
        )
        again = day_of("log")
        expected = [again(n) for n in range(2500)]
        assert appended == sum(len(events) for events in expected)
        assert seconds > 0
        for events in (expected[0], expected[1234], expected[-1]):
            assert log.events_of(events[0].prescription_id) == events
    finally:
        log.close()


def day_of(seed: str) -> Callable[[int], list[Event]]:
    """The insurer's day for `seed`, one prescription at a time in order."""
    rng = random.Random(seed)
    return lambda n: busy_day.dispensed_and_billed(rng, n, NOW)
