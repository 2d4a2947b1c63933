"""Reconciliation of an invoice for what the pharmacist's own procedures gave
(`domain.procedures`): the packs count as dispensed by the pharmacy, and the matched detail says
how much of each line a procedure gave."""

from __future__ import annotations

import msgspec

from domain.events import DispensationRecorded
from domain.reconciliation.decision import reconcile
from tests.domain.builders import PARACETAMOL, PHARMACY_A, PHARMACY_B, issued
from tests.domain.reconciliation.test_decision import invoice, log, substituted


def supplied(version: int, quantity: int, finess: str = PHARMACY_A.value) -> DispensationRecorded:
    given = substituted(version, 1, quantity, PARACETAMOL)
    return msgspec.structs.replace(given, procedure="exceptional_supply", finess=finess)


def test_an_invoice_for_an_exceptional_supply_is_matched_and_says_so() -> None:
    record = log(issued(2), substituted(2, 1, 2, PARACETAMOL), supplied(3, 1))

    verdict = reconcile(invoice((1, 3)), record, None)

    assert verdict.outcome == "matched"
    assert verdict.detail == (
        f"billed as dispensed by pharmacy {PHARMACY_A.value} (line 1: billed 3 of CIP13 "
        f"{PARACETAMOL.code} (750 cents), dispensed 3 (1 by exceptional_supply))"
    )


def test_another_pharmacys_or_a_withdrawn_supply_is_not_this_pharmacys() -> None:
    withdrawn = supplied(4, 1)
    record = log(issued(2), substituted(2, 1, 2, PARACETAMOL), supplied(3, 1, PHARMACY_B.value))
    with_withdrawn = msgspec.structs.replace(
        record,
        dispensations=(
            *record.dispensations,
            msgspec.structs.replace(
                log(issued(2), withdrawn).dispensations[0], withdrawn_at=withdrawn.at
            ),
        ),
    )

    verdict = reconcile(invoice((1, 2)), with_withdrawn, None)

    assert verdict.outcome == "matched"
    assert verdict.detail.endswith("dispensed 2)")


def test_each_procedure_of_a_line_is_named_after_another_pharmacys() -> None:
    extended = msgspec.structs.replace(supplied(5, 1), procedure="contraceptive_extension")
    record = log(
        issued(2),
        substituted(2, 1, 2, PARACETAMOL),
        supplied(3, 1, PHARMACY_B.value),
        supplied(4, 1),
        extended,
        supplied(6, 1),
    )

    verdict = reconcile(invoice((1, 5)), record, None)

    assert verdict.detail.endswith(
        "dispensed 5 (1 by contraceptive_extension, 2 by exceptional_supply))"
    )
