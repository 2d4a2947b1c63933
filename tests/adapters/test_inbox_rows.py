"""The inbox's rows as stored (`adapters.readmodels.rows`): a row stored before its lines counted
units and kept the packs handed over still reads, as it was stored."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec

from adapters.readmodels.rows import inbox_decoder
from projections.folds import counted
from tests.domain.real_packs import LEVOTHYROX_30, pack


def test_a_row_stored_before_units_reads_as_stored() -> None:
    stored = msgspec.msgpack.encode(
        {
            "finess": "750712184",
            "prescription_id": "X",
            "transmitted_at": datetime(2026, 11, 23, 9, tzinfo=UTC),
            "message": "Je passe demain",
            "patient_ins": "184127645108946",
            "expires_on": date(2027, 2, 23),
            "lines": [
                {"line_no": 1, "product": pack(LEVOTHYROX_30), "quantity": 3, "remaining": 2}
            ],
        }
    )

    entry = inbox_decoder.decode(stored)

    assert (entry.handed, entry.lines[0].remaining_units, entry.sent_by) == (None, None, "patient")
    assert counted(entry, None) == entry
