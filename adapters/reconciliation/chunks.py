"""A chunk of a batch decided: its lines parsed, its prescriptions and invoice numbers looked
up, its verdicts (the domain's `reconcile_chunk`) turned into the rows its commit writes.

Deciding needs no database: the batch's processing (`processing.py`) looks the chunk up, hands
what it found here, and commits the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from typing import NamedTuple

import msgspec

from adapters.reconciliation.ndjson import Rejected, parse_chunk
from adapters.reconciliation.store import (
    ChunkResult,
    ClaimRow,
    ItemRow,
    Paid,
    PaidByPrescription,
    stored_paid,
)
from domain.reconciliation.chunk import paid_lines, reconcile_chunk
from domain.reconciliation.decision import Previous, Verdict
from domain.reconciliation.invoices import RECONCILED, Entry, InvoiceKey
from domain.reconciliation.receipts import ReceiptCheck
from domain.reconciliation.records import (
    PaidInvoices,
    PaidLines,
    PrescriptionRecord,
    SubstituteCheck,
)


class ParsedChunk(NamedTuple):
    lines: list[Entry | Rejected]
    numbers: set[str]  # the prescriptions to look up
    keys: list[InvoiceKey]  # the invoice numbers to look up

    @classmethod
    def of(cls, body: bytes, first_line: int) -> ParsedChunk:
        lines = parse_chunk(body, first_line)
        entries = [p for p in lines if isinstance(p, Entry)]
        return cls(
            lines,
            {e.number for e in entries if e.number is not None},
            list({e.invoice.key: None for e in entries}),
        )


class LookedUp(NamedTuple):
    chunk_no: int
    parsed: ParsedChunk
    states: dict[str, bytes]  # found prescriptions' states, by number
    taken: dict[InvoiceKey, Previous]  # invoice numbers reconciled before
    paid: Paid  # invoices matched before, by prescription


def with_paid(
    paid: PaidByPrescription, more: PaidByPrescription, numbers: Collection[str]
) -> dict[str, PaidInvoices]:
    """Both, merged by invoice number (an invoice in both is the same invoice, counted once),
    `more` only for the prescriptions `numbers`: the only ones a chunk asks about."""
    merged = dict(paid)
    for number in more.keys() & numbers:  # a set operation, not a loop over all of `more`
        invoices = more[number]
        merged[number] = {**merged[number], **invoices} if number in merged else invoices
    return merged


class Handover(NamedTuple):
    """What a chunk decided, for the chunks decided before it is committed: only the numbers it
    claims and the invoices it pays (the rest of it is let go once it is committed)."""

    claimed: dict[InvoiceKey, Previous]
    paid: dict[str, PaidInvoices]

    def claimed_of(self, keys: Collection[InvoiceKey]) -> dict[InvoiceKey, Previous]:
        """The numbers it claims among `keys` (a set operation, not a loop over all)."""
        claimed = self.claimed
        return {key: claimed[key] for key in claimed.keys() & keys}


class PreparedChunk:
    """A chunk's verdicts, decided before its commit; `resolve` decides it again when some of
    its invoice numbers turn out to be taken by a batch running at the same time (an invoice
    that becomes a duplicate no longer pays, so the ones after it may change too)."""

    def __init__(
        self,
        batch_id: str,
        chunk_no: int,
        parsed: list[Entry | Rejected],
        records: Mapping[str, PrescriptionRecord],
        *,
        previous: Mapping[InvoiceKey, Previous],
        paid: PaidByPrescription,
        seen: int,
        substitute: SubstituteCheck | None = None,
        receipts: ReceiptCheck | None = None,
    ) -> None:
        self.batch_id = batch_id
        self._substitute = substitute
        self._receipts = receipts
        self.chunk_no = chunk_no
        self._parsed = parsed
        self._records = records
        self._previous = previous
        self._paid = paid
        self.numbers = records.keys()
        self.seen = seen
        self.result = self.resolve({})
        self.claimed = {
            (claim[0], claim[1]): Previous(batch_id, claim[3], claim[4])
            for claim in self.result.claims
        }
        self.paid = self.result.paid

    def resolve(
        self, taken: Mapping[InvoiceKey, Previous], paid: PaidByPrescription | None = None
    ) -> ChunkResult:
        """The chunk decided knowing these numbers `taken` since it was looked up, and (from
        the commit, all earlier chunks committed) what is `paid` now, if it changed."""
        entries = [p for p in self._parsed if isinstance(p, Entry)]
        previous = {**self._previous, **taken} if taken else self._previous
        paid_now = self._paid if paid is None else paid
        verdicts = reconcile_chunk(
            self.batch_id,
            entries,
            self._records,
            previous,
            paid_now,
            substitute=self._substitute,
            receipts=self._receipts,
        )
        return self._rows(iter(verdicts))

    def _rows(self, verdicts: Iterator[Verdict]) -> ChunkResult:
        batch_id = self.batch_id
        items: list[ItemRow] = []
        claims: list[ClaimRow] = []
        counts: Counter[str] = Counter()
        amounts: Counter[str] = Counter()
        paid: dict[str, dict[InvoiceKey, PaidLines]] = {}
        for parsed in self._parsed:
            if isinstance(parsed, Rejected):
                items.append(
                    (batch_id, parsed.line, parsed.invoice_number, "invalid", parsed.reason)
                )
                counts["invalid"] += 1
                continue
            verdict = next(verdicts)
            invoice = parsed.invoice
            outcome = verdict.outcome
            items.append((batch_id, parsed.line, invoice.invoice_number, outcome, verdict.detail))
            counts[outcome] += 1
            cents = 0
            for billed in invoice.lines:
                cents += billed.amount_cents
            amounts[outcome] += cents
            if outcome in RECONCILED:
                stored, stored_units = None, None
                if outcome == "matched" and parsed.number is not None:
                    lines_paid = paid_lines(invoice, self._substitute)
                    paid.setdefault(parsed.number, {})[invoice.key] = lines_paid
                    stored, stored_units = stored_paid(lines_paid)
                claims.append(
                    (
                        invoice.finess,
                        invoice.invoice_number,
                        batch_id,
                        parsed.line,
                        outcome,
                        parsed.number,
                        stored,
                        stored_units,
                    )
                )
        return ChunkResult(items, claims, dict(counts), dict(amounts), dict(paid))


def decide_chunk(
    batch_id: str,
    chunk_no: int,
    parsed: ParsedChunk,
    raw_states: Mapping[str, bytes],
    *,
    previous: Mapping[InvoiceKey, Previous],
    paid: PaidByPrescription,
    seen: int = 0,
    substitute: SubstituteCheck | None = None,
    receipts: ReceiptCheck | None = None,
) -> PreparedChunk:
    records = {number: _record_decoder.decode(raw) for number, raw in raw_states.items()}
    return PreparedChunk(
        batch_id,
        chunk_no,
        parsed.lines,
        records,
        previous=previous,
        paid=paid,
        seen=seen,
        substitute=substitute,
        receipts=receipts,
    )


# The stored state (`adapters.readmodels.rows.state_encoder`: MessagePack of the domain's
# Prescription), read into the few fields reconciliation needs.
_record_decoder = msgspec.msgpack.Decoder(PrescriptionRecord)
