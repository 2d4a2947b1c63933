"""An NDJSON upload cut into chunks of whole lines as it arrives, and its lines parsed."""

from __future__ import annotations

import json

from adapters.reconciliation.ndjson import (
    MAX_LINE_BYTES,
    Chunker,
    RawChunk,
    Rejected,
    parse_chunk,
    parse_line,
)
from domain.reconciliation.invoices import Entry
from tests.domain.builders import NUMBER, PARACETAMOL, PHARMACY_A


def chunks_of(pieces: list[bytes], chunk_lines: int = 3) -> list[RawChunk]:
    chunker = Chunker(chunk_lines)
    return [chunk for piece in pieces for chunk in chunker.feed(piece)] + chunker.close()


def test_lines_split_across_pieces_come_out_whole_in_chunks_with_their_first_line() -> None:
    body = b"".join(f'{{"n": {n}}}\n'.encode() for n in range(1, 8))
    pieces = [body[i : i + 5] for i in range(0, len(body), 5)]

    chunks = chunks_of(pieces)

    assert b"".join(chunk.body for chunk in chunks) == body
    assert all(chunk.body.endswith(b"\n") for chunk in chunks)
    assert [chunk.first_line for chunk in chunks] == [1, 4, 7]
    assert sum(chunk.invoices for chunk in chunks) == 7


def test_blank_lines_keep_their_numbers_but_are_not_invoices() -> None:
    (chunk,) = chunks_of([b'{"a":1}\n\n  \r\n{"b":2}'], chunk_lines=10)

    assert chunk.invoices == 2
    assert [p.line for p in parse_chunk(chunk.body, chunk.first_line)] == [1, 4]


def test_a_line_longer_than_the_limit_is_cut_short_and_the_rest_goes_on() -> None:
    huge = b'{"x": "' + b"y" * (MAX_LINE_BYTES * 2) + b'"}\n'
    pieces = [b'{"a":1}\n', *(huge[i : i + 4096] for i in range(0, len(huge), 4096)), b'{"b":2}\n']

    chunks = chunks_of(pieces, chunk_lines=100)
    parsed = [p for chunk in chunks for p in parse_chunk(chunk.body, chunk.first_line)]

    assert sum(len(chunk.body) for chunk in chunks) < 100
    assert [p.line for p in parsed] == [1, 2, 3]
    assert isinstance(parsed[1], Rejected)
    assert parsed[1].reason == f"line longer than {MAX_LINE_BYTES} bytes"


def test_an_empty_body_gives_no_chunk() -> None:
    assert chunks_of([b"", b"\n\n"]) == []


def line(**changes: object) -> bytes:
    invoice: dict[str, object] = {
        "invoice_number": "F-1",
        "finess": PHARMACY_A.value,
        "prescription_id": NUMBER.display(),
        "lines": [
            {
                "line_no": 1,
                "product": {"system": "CIP13", "code": PARACETAMOL.code, "label": "P"},
                "quantity": 1,
                "amount_cents": 250,
            }
        ],
    }
    invoice.update(changes)
    return json.dumps({k: v for k, v in invoice.items() if v is not None}).encode()


def test_a_valid_line_is_an_invoice_entry_with_its_canonical_number() -> None:
    parsed = parse_line(line(), 12)

    assert isinstance(parsed, Entry)
    assert (parsed.line, parsed.number, parsed.invoice.invoice_number) == (12, NUMBER.value, "F-1")


def test_each_kind_of_bad_line_is_rejected_with_a_reason_naming_the_problem() -> None:
    cases = {
        b'{"invoice_number": "F-9", ': "not valid JSON: ",
        line(finess=None): "not a valid invoice: Object missing required field `finess`",
        line(lines=[]): "not a valid invoice: Expected `array` of length >= 1 - at `$.lines`",
        line(
            lines=[
                {
                    "line_no": 1,
                    "product": {"system": "CIP13", "code": PARACETAMOL.code, "label": "P"},
                    "quantity": 0,
                    "amount_cents": 0,
                }
            ]
        ): "not a valid invoice: Expected `int` >= 1 - at `$.lines[0].quantity`",
        line(finess="750712180"): "not a valid invoice: finess: FINESS check digit does not match",
        line(extra=1): "not a valid invoice: Object contains unknown field `extra`",
        b"[1, 2]": "not a valid invoice: Expected `object`, got `array`",
    }
    for raw, reason in cases.items():
        parsed = parse_line(raw, 5)
        assert isinstance(parsed, Rejected), raw
        assert parsed.line == 5
        assert parsed.reason.startswith(reason), (parsed.reason, reason)


def test_a_rejected_line_keeps_its_invoice_number_when_it_has_one() -> None:
    parsed = parse_line(line(finess=None), 1)

    assert isinstance(parsed, Rejected)
    assert parsed.invoice_number == "F-1"
