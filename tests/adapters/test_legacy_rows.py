"""The previous release's record and claim streams, read back as rows of today's tables.

Given a legacy row as the previous release encoded it (msgspec JSON, the body in base64), when
it is converted, then a 201 whose body is a receipt or a billing view becomes the result as it
is, and anything else keeps its key and fingerprint with a result no replay will decode.
"""

from __future__ import annotations

import msgspec
import pytest

from adapters.legacy import (
    LEGACY_CLAIM_TOPIC,
    LEGACY_RECORD_TOPIC,
    UNREPLAYABLE,
    UnreadableLegacyRowError,
    claim_row,
    record_row,
    rows_of,
)
from domain.views import DispensationReceipt, ReceiptLine

RECEIPT = msgspec.json.encode(
    DispensationReceipt(
        dispensation_id="d-1",
        status="partially_dispensed",
        lines=(ReceiptLine(line_no=1, dispensed=1, remaining=2),),
        dispensed_elsewhere=False,
    )
)
VIEW = (
    b'{"dispensation_id":"d-1","finess":"750712184","dispensed_at":"2026-11-30T10:00:00Z",'
    b'"recorded_at":"2026-11-30T10:00:01Z","lines":[],"billed":true,"withdrawn":false}'
)


def old_record(status: int, body: bytes) -> bytes:
    """Exactly the previous release's encoding of `IdempotencyRecord` v1."""
    encoded = msgspec.json.encode(body).decode()  # bytes as a base64 JSON string
    return f'{{"key":"k","fingerprint":"f","status":{status},"body":{encoded}}}'.encode()


@pytest.mark.parametrize("body", [RECEIPT, VIEW], ids=["receipt", "billing view"])
def test_a_recorded_201_becomes_the_result_as_it_is(body: bytes) -> None:
    assert record_row(old_record(201, body)) == ("k", "f", body)


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, RECEIPT), (422, b'{"code":"x"}'), (201, b'{"detail":"?"}'), (201, b"not json")],
    ids=["not a 201", "an error", "another shape", "not JSON"],
)
def test_an_answer_that_cannot_be_converted_keeps_its_key_and_fingerprint(
    status: int, body: bytes
) -> None:
    assert record_row(old_record(status, body)) == ("k", "f", UNREPLAYABLE)


def test_the_unreplayable_result_is_neither_a_receipt_nor_a_view() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(UNREPLAYABLE, type=DispensationReceipt)


def test_a_claim_keeps_its_four_fields() -> None:
    state = (
        b'{"finess":"750712184","invoice_number":"F-1","prescription_id":"P",'
        b'"dispensation_id":"d-1"}'
    )
    assert claim_row(state) == ("750712184", "F-1", "P", "d-1")


def test_rows_are_sorted_by_topic() -> None:
    claim = b'{"finess":"1","invoice_number":"2","prescription_id":"3","dispensation_id":"4"}'
    records, claims = rows_of(
        [(7, LEGACY_RECORD_TOPIC, old_record(201, RECEIPT)), (9, LEGACY_CLAIM_TOPIC, claim)]
    )
    assert (records, claims) == ([("k", "f", RECEIPT)], [("1", "2", "3", "4")])


@pytest.mark.parametrize(
    ("topic", "state"),
    [(LEGACY_CLAIM_TOPIC, b'{"finess":"1"}'), (LEGACY_RECORD_TOPIC, b"{")],
    ids=["a claim without its number", "a record cut short"],
)
def test_a_row_the_previous_release_could_not_have_written_stops_the_start(
    topic: str, state: bytes
) -> None:
    with pytest.raises(UnreadableLegacyRowError, match=f"{topic} row at log position 42"):
        rows_of([(42, topic, state)])
