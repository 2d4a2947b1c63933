"""The rows each read model keeps for one prescription, in the order of its table's columns
(`adapters.readmodels.tables`), shared by the PostgreSQL and SQLite stores."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.conversation_state import Conversation
from domain.prescription import Prescription
from projections.folds import InboxEntry, dispensing_records, inbox_entries

# States are stored as MessagePack: compact, and decoded straight into the domain's Structs.
state_encoder = msgspec.msgpack.Encoder()
state_decoder = msgspec.msgpack.Decoder(Prescription)
inbox_encoder = msgspec.msgpack.Encoder()
inbox_decoder = msgspec.msgpack.Decoder(InboxEntry)
conversation_encoder = msgspec.msgpack.Encoder()
conversation_decoder = msgspec.msgpack.Decoder(Conversation)


def state_row(state: Prescription) -> tuple[Any, ...]:
    return (
        state.prescription_id,
        state.prescriber_rpps,
        state.patient_ins,
        state.issued_at,
        state.folded_version,  # conversations' events count too: see Prescription.folded_version
        state_encoder.encode(state),
    )


def inbox_rows(state: Prescription) -> list[tuple[Any, ...]]:
    return [
        (e.finess, e.prescription_id, e.transmitted_at, e.expires_on, inbox_encoder.encode(e))
        for e in inbox_entries(state)
    ]


def dispensing_rows(state: Prescription) -> list[tuple[Any, ...]]:
    return [
        (
            r.prescription_id,
            r.dispensation_id,
            r.line_no,
            r.patient_ins,
            r.product.code,
            r.quantity,
            r.narcotic,
            r.duration_days,
            r.dispensed_at,
            r.finess,
        )
        for r in dispensing_records(state)
    ]


def conversation_rows(state: Prescription) -> list[tuple[Any, ...]]:
    return [
        (
            c.conversation_id,
            c.prescription_id,
            c.finess,
            c.patient_ins,
            c.last_activity_at,
            conversation_encoder.encode(c),
        )
        for c in state.conversations
    ]
