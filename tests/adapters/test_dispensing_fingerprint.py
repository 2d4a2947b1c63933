"""An `Idempotency-Key`'s request is fingerprinted by its command's encoding
(`adapters.service`): a dispensing line that says nothing of substitution encodes exactly as it
did before substitution's mentions existed, so a retry across an upgrade is the same request."""

from __future__ import annotations

import msgspec

from adapters.http.schemas import DispenseLineBody


def test_a_line_without_mentions_encodes_as_before() -> None:
    plain = DispenseLineBody(line_no=1, quantity=2, generic_refused=False).command()

    assert msgspec.json.encode(plain) == b'{"line_no":1,"quantity":2,"product":null}'


def test_a_line_with_mentions_encodes_them() -> None:
    noted = DispenseLineBody(
        line_no=1, quantity=2, generic_refused=True, non_substitution="MTE-PH", lot="L1"
    ).command()

    assert msgspec.json.decode(msgspec.json.encode(noted)) == {
        "line_no": 1,
        "quantity": 2,
        "product": None,
        "generic_refused": True,
        "non_substitution": "MTE-PH",
        "lot": "L1",
    }
