"""The prescription's state as the read models store it decodes straight into the record
reconciliation reads (`domain.reconciliation.records.PrescriptionRecord`)."""

from __future__ import annotations

import msgspec

from adapters.readmodels.rows import state_encoder
from domain.reconciliation.records import PrescriptionRecord, record_of
from tests.domain.builders import (
    AMOXICILLINE,
    GENERIC,
    PARACETAMOL,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    given,
    issued,
)
from tests.domain.reconciliation.test_decision import ref, substituted

# --- the prescription as reconciliation reads it -------------------------------------------------


def test_the_stored_state_decodes_into_the_record_reconciliation_reads() -> None:
    state = given(
        issued(3, 2), substituted(2, 1, 1, GENERIC), dispensed(3, (2, 1), finess=PHARMACY_B)
    )

    stored = msgspec.msgpack.decode(state_encoder.encode(state), type=PrescriptionRecord)

    assert stored == record_of(state)
    assert [d.finess for d in stored.dispensations] == [PHARMACY_A.value, PHARMACY_B.value]
    assert stored.dispensations[0].lines[0].product == ref(GENERIC)
    assert [line.prescribed.product for line in stored.lines] == [
        ref(PARACETAMOL),
        ref(AMOXICILLINE),
    ]
