"""A matched invoice's paid lines as the batch tables store them (`paid_lines`, `paid_units`)
and read them back; a row stored without its units reads as paid in packs."""

from __future__ import annotations

from adapters.reconciliation.store import paid_of, stored_paid
from domain.reconciliation.records import UNITS_UNKNOWN


def test_the_lines_and_their_units_are_stored_apart_and_read_back_together() -> None:
    one = (1, 3, 750, 90)
    two = (1, 2, 500, 60, 2, 1, 250, UNITS_UNKNOWN)

    assert stored_paid(one) == ("1,3,750", "90")
    assert stored_paid(two) == ("1,2,500,2,1,250", "60,-1")
    assert paid_of(*stored_paid(one)) == one
    assert paid_of(*stored_paid(two)) == two


def test_lines_stored_before_their_units_were_are_paid_in_packs() -> None:
    assert paid_of("1,2,500,2,1,250", None) == (1, 2, 500, UNITS_UNKNOWN, 2, 1, 250, UNITS_UNKNOWN)
