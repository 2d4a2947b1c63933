"""Legacy record and claim streams, and how the store carries them into their own tables.

A database written by an earlier release may hold idempotency records and invoice claims as
one-event streams in the event table: stream `idempotency:<key>` with topic
`IdempotencyRecord.v1` (the first answer as an HTTP status and body), stream
`invoice:<sha256(finess|number)>` with topic `InvoiceClaim.v1`. No reader uses those rows, so at
start the store copies them once into `ordo_idempotency` and `ordo_invoice_claims`
(`adapters.store.postgres`, and the embedded recorder of `adapters.librarylog`), and records that
it did in `ordo_migrations`. The rows stay in the log, which is append-only; every log reader
skips their topics (they are not events).

This module is pure: it decodes the old encoding and returns the new tables' rows.
"""

from __future__ import annotations

import msgspec

from domain.views import DispensationReceipt, DispensationView

MIGRATION = "legacy-streams-to-tables"
LEGACY_RECORD_TOPIC = "IdempotencyRecord.v1"
LEGACY_CLAIM_TOPIC = "InvoiceClaim.v1"
LEGACY_TOPICS = (LEGACY_RECORD_TOPIC, LEGACY_CLAIM_TOPIC)
# The `result` of a record whose first answer cannot be given again in the new shape: its key
# and fingerprint are kept (a different request with the key is still refused), and the service
# refuses a replay rather than deciding the request a second time (it was committed once).
UNREPLAYABLE = b'{"unreplayable":"answered before the upgrade, in a shape no use case returns"}'

RecordRow = tuple[str, str, bytes]  # key, fingerprint, result
ClaimRow = tuple[str, str, str, str]  # finess, invoice number, prescription, dispensation


class LegacyIdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """`IdempotencyRecord` v1 as the previous release encoded it (msgspec JSON, body in base64)."""

    key: str
    fingerprint: str
    status: int
    body: bytes


class LegacyInvoiceClaim(msgspec.Struct, frozen=True, kw_only=True):
    """`InvoiceClaim` v1 as the previous release encoded it: the same four fields as today's."""

    finess: str
    invoice_number: str
    prescription_id: str
    dispensation_id: str


_record_decoder = msgspec.json.Decoder(LegacyIdempotencyRecord)
_claim_decoder = msgspec.json.Decoder(LegacyInvoiceClaim)
# The only answers the previous release recorded: a dispensing's receipt, a billing's view.
_answer_decoders = (
    msgspec.json.Decoder(DispensationReceipt),
    msgspec.json.Decoder(DispensationView),
)


def record_row(state: bytes) -> RecordRow:
    """The `ordo_idempotency` row of an old record: its body is the use case's result, encoded
    as today's (the same msgspec JSON of the same view types) when it was a 201 that decodes as
    one of them; otherwise the key and fingerprint with `UNREPLAYABLE` as the result."""
    old = _record_decoder.decode(state)
    result = old.body if old.status == 201 and _is_result(old.body) else UNREPLAYABLE
    return old.key, old.fingerprint, result


def claim_row(state: bytes) -> ClaimRow:
    old = _claim_decoder.decode(state)
    return old.finess, old.invoice_number, old.prescription_id, old.dispensation_id


def _is_result(body: bytes) -> bool:
    for decoder in _answer_decoders:
        try:
            decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        return True
    return False


class UnreadableLegacyRowError(Exception):
    """A legacy row the previous release could not have written: the store refuses to start
    rather than forget a claim (a pharmacy could be paid twice) or a key (a retry decided
    again). Its log position says which row to look at."""


def rows_of(legacy: list[tuple[int, str, bytes]]) -> tuple[list[RecordRow], list[ClaimRow]]:
    """The legacy log rows (position, topic, state) as rows of the two tables."""
    records: list[RecordRow] = []
    claims: list[ClaimRow] = []
    for position, topic, state in legacy:
        try:
            if topic == LEGACY_RECORD_TOPIC:
                records.append(record_row(state))
            else:
                claims.append(claim_row(state))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            msg = f"the {topic} row at log position {position} cannot be read: {error}"
            raise UnreadableLegacyRowError(msg) from error
    return records, claims


__all__ = [
    "LEGACY_TOPICS",
    "MIGRATION",
    "UNREPLAYABLE",
    "LegacyIdempotencyRecord",
    "LegacyInvoiceClaim",
    "UnreadableLegacyRowError",
    "rows_of",
]
