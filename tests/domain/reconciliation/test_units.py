"""Reconciliation in units (`domain.reconciliation.decision`): where the catalogue states the
units of every pack billed and handed over, an invoice for more units than the pharmacy handed
over of a line is `quantity_mismatch`, whatever the box sizes; else it counts packs."""

from __future__ import annotations

import msgspec

from domain.events import PrescriptionIssued
from domain.reconciliation.decision import reconcile
from domain.reconciliation.records import catalogue_substitutes
from tests.domain.builders import PHARMACY_A, issued
from tests.domain.real_packs import DOLIPRANE_SYRUP, LEVOTHYROX_30, LEVOTHYROX_90, RealPacks, pack
from tests.domain.reconciliation.test_decision import invoice, log, ref, substituted

CATALOGUE = catalogue_substitutes(RealPacks)  # the snapshot in force, asked each time
B30, B90 = pack(LEVOTHYROX_30), pack(LEVOTHYROX_90)


def written_as_three_boxes_of_30() -> PrescriptionIssued:
    event = issued(3)
    line = msgspec.structs.replace(event.lines[0], product=B30, duration_days=90)
    return msgspec.structs.replace(event, lines=(line,))


def test_three_boxes_of_90_billed_for_three_boxes_of_30_handed_over_is_quantity_mismatch() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 3, B30))

    verdict = reconcile(invoice((1, 3, B90)), record, None, substitute=CATALOGUE)

    assert verdict.outcome == "quantity_mismatch"
    assert verdict.detail == (
        f"line 1: billed 3 of CIP13 {LEVOTHYROX_90} (750 cents), 270 units; pharmacy "
        f"{PHARMACY_A.value} dispensed 3, 90 units"
    )


def test_three_boxes_of_90_billed_for_one_box_of_90_handed_over_is_quantity_mismatch() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B90))

    verdict = reconcile(invoice((1, 3, B90)), record, None, substitute=CATALOGUE)

    assert verdict.outcome == "quantity_mismatch"
    assert verdict.detail.endswith(f"270 units; pharmacy {PHARMACY_A.value} dispensed 1, 90 units")


def test_one_box_of_90_handed_over_and_billed_as_three_boxes_of_30_is_the_same_units() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B90))

    verdict = reconcile(invoice((1, 3, B30)), record, None, substitute=CATALOGUE)

    assert verdict.outcome == "matched"


def test_more_boxes_of_30_than_the_units_handed_over_is_quantity_mismatch() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B30))

    verdict = reconcile(invoice((1, 2, B30)), record, None, substitute=CATALOGUE)

    assert verdict.outcome == "quantity_mismatch"
    assert "60 units" in verdict.detail and "30 units" in verdict.detail


def test_without_the_units_of_every_pack_it_counts_packs() -> None:
    syrup = pack(DOLIPRANE_SYRUP)
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B90))

    assert reconcile(invoice((1, 3, B30)), record, None).outcome == "quantity_mismatch"
    with_syrup = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, syrup))
    verdict = reconcile(invoice((1, 2, syrup)), with_syrup, None, substitute=CATALOGUE)
    assert verdict.outcome == "quantity_mismatch"
    assert verdict.detail.endswith(f"pharmacy {PHARMACY_A.value} dispensed 1")


def test_units_handed_over_in_two_dispensings_add_up() -> None:
    record = log(
        written_as_three_boxes_of_30(), substituted(2, 1, 1, B30), substituted(3, 1, 1, B90)
    )

    matched = reconcile(invoice((1, 1, B90), (1, 1, B30)), record, None, substitute=CATALOGUE)
    too_many = reconcile(invoice((1, 1, B90), (1, 2, B30)), record, None, substitute=CATALOGUE)

    assert matched.outcome == "matched"
    assert too_many.outcome == "quantity_mismatch"
    assert too_many.detail.endswith(
        f"150 units; pharmacy {PHARMACY_A.value} dispensed 2, 120 units"
    )


def test_a_pack_without_units_handed_over_counts_the_line_in_packs() -> None:
    syrup = pack(DOLIPRANE_SYRUP)
    record = log(
        written_as_three_boxes_of_30(), substituted(2, 1, 1, B30), substituted(3, 1, 1, syrup)
    )

    verdict = reconcile(invoice((1, 2, B30)), record, None, substitute=CATALOGUE)

    assert verdict.outcome == "matched"


def test_a_line_that_pharmacy_did_not_hand_over_has_no_units_given() -> None:
    event = written_as_three_boxes_of_30()
    second = msgspec.structs.replace(event.lines[0], line_no=2, product=B90)
    record = log(
        msgspec.structs.replace(event, lines=(*event.lines, second)), substituted(2, 1, 1, B30)
    )

    verdict = reconcile(invoice((1, 1, B30), (2, 1, B90)), record, None, substitute=CATALOGUE)

    assert verdict.outcome == "quantity_mismatch"
    assert verdict.detail.endswith(f"90 units; pharmacy {PHARMACY_A.value} dispensed 0, 0 units")


def test_the_catalogue_says_no_units_for_a_pack_it_does_not_know_or_without_a_catalogue() -> None:
    assert CATALOGUE.units(ref(B90)) == 90
    assert CATALOGUE.units(ref(pack("3400930000007"))) is None
    assert catalogue_substitutes(lambda: None).units(ref(B90)) is None
    assert not catalogue_substitutes(lambda: None)(ref(B90), ref(B30))
