"""scripts/invoices: realistic insurer invoice files (NDJSON) for reconciliation tests and
benchmarks, with a chosen share of each outcome.

  scripts/invoices --out invoices.ndjson --lines 1000000 \\
      --share matched=0.75,quantity_mismatch=0.05,product_mismatch=0.04,no_dispensation=0.03,
              duplicate_invoice=0.03,unknown_prescription=0.03,invalid=0.02,
              over_billed=0.03,amount_mismatch=0.02
      [--generate-log 1000000] [--seed 1] [--expect expected.json]

The instance is the one `ordo` would use (ORDO_DATABASE_URL, else SQLite in ORDO_DATA_DIR).
Invoices are built from its read models (each prescription's folded state: prescribed lines,
what each pharmacy handed over, the billing it recorded); with --generate-log N, N
prescriptions, each dispensed by one or two pharmacies (some with a generic substituted, some
billed through the API, a few second dispensings withdrawn), are first appended to its event
log (every event decided by domain.decisions: tools.busy_day) and projected. Everything
streams: memory stays flat whatever --lines and N.

Each dispensed prescription is billed in one visit (a pharmacy's packs are paid once, so a
second visit would be `over_billed`): --lines needs about as many dispensed prescriptions.

The outcome each invoice will get is known when it is written: the counts are printed on
stderr (and written to --expect as JSON), so a reconciliation can be checked against them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from adapters.bootstrap import read_models_for
from adapters.config import Settings
from adapters.librarylog import open_library_log
from adapters.readmodels import ReadModels, open_read_models
from domain.events import (
    Event,
    Product,
)
from domain.identifiers import PrescriptionNumber
from domain.prescription import Dispensation, Prescription
from domain.reconciliation.invoices import OUTCOMES, RECONCILED
from projections.runner import ProjectionRunner
from tools import busy_day

console = Console(stderr=True)
DEFAULT_SHARE = (
    "matched=0.75,quantity_mismatch=0.05,product_mismatch=0.04,no_dispensation=0.03,"
    "duplicate_invoice=0.03,unknown_prescription=0.03,invalid=0.02,over_billed=0.03,"
    "amount_mismatch=0.02"
)
PRODUCTS = busy_day.PRODUCTS  # what the generated log prescribes and hands over
PHARMACIES = [pharmacy.value for pharmacy in busy_day.PHARMACIES]  # where it was handed over
STATES_PAGE = 5000


# --- a log to reconcile against ----------------------------------------------------------------


async def generate_log(settings: Settings, prescriptions: int, seed: int) -> None:
    """N prescriptions of an insurer's day (`tools.busy_day`) appended to the instance's log,
    then projected into its views."""
    rng = random.Random(f"log-{seed}")
    log = open_library_log(settings.database_url, settings.data_dir, 4)
    started = time.perf_counter()
    now = busy_day.moment()

    def progress(done: int, _: int) -> None:
        rate = done / (time.perf_counter() - started)
        console.log(f"appended {done:,} prescriptions ({rate:,.0f}/s)")

    def prescription(n: int) -> list[Event]:
        return busy_day.dispensed_and_billed(rng, n, now)

    try:
        await asyncio.to_thread(
            busy_day.append_prescriptions, log, prescriptions, prescription, progress
        )
        console.log(
            f"log: {prescriptions:,} prescriptions in {time.perf_counter() - started:.0f} s"
        )
        started = time.perf_counter()
        read_models = await open_read_models(settings, log)
        try:
            head = await read_models.source.head()

            def reached(position: int) -> None:
                if position // 50_000 != (position - 5000) // 50_000:
                    console.log(f"projected {position:,} of {head:,} events")

            runner = ProjectionRunner(
                read_models.source, read_models.store, batch_size=5000, on_batch=reached
            )
            await project_or_wait(read_models, runner, head)
        finally:
            await read_models.close()
        console.log(f"views caught up in {time.perf_counter() - started:.0f} s")
    finally:
        log.close()


async def project_or_wait(read_models: ReadModels, runner: ProjectionRunner, head: int) -> None:
    """Apply the new events to the views, or, when a running instance (`ordo serve`,
    `ordo project`) already leads the projection, wait for it to apply them."""
    leads = asyncio.Event()

    async def lead() -> None:
        async with read_models.store.leadership():
            leads.set()
            await runner.catch_up()

    leading = asyncio.create_task(lead())
    told = False
    try:
        while True:
            done, _ = await asyncio.wait({leading}, timeout=1.0)
            if done:
                leading.result()  # what the runner raised, if anything
                return
            if leads.is_set():
                continue
            if (await read_models.lag()).position >= head:
                return  # the leader elsewhere has applied everything appended here
            if not told:
                console.log("another process (ordo serve?) leads the projection: waiting for it")
                told = True
    finally:
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading


# --- the instance's prescriptions, streamed ------------------------------------------------------


async def states(settings: Settings) -> AsyncIterator[Prescription]:
    """Every prescription of the read models, in number order, batch by batch."""
    async with read_models_for(settings) as read_models:
        async for state in read_models.store.all_states(STATES_PAGE):
            yield state


# --- invoices -------------------------------------------------------------------------------


Written = list[tuple[str, bytes]]  # (the outcome it will get, the NDJSON line)


class InvoiceMaker:
    """Builds each invoice so that it gets the outcome drawn for it.

    Invoices come in the order reconciliation will see them, one visit per prescription, so
    what the file has paid so far is known: an `over_billed` invoice follows, in the same visit,
    the `matched` one that paid the packs it bills again."""

    def __init__(self, rng: random.Random, prefix: str) -> None:
        self.rng = rng
        self.prefix = prefix
        self.count = 0
        self.reconciled: deque[bytes] = deque(maxlen=1000)  # recent invoices that will count
        self.encoder = msgspec.json.Encoder()

    def make(self, outcome: str, state: Prescription) -> Written:
        if outcome == "duplicate_invoice" and self.reconciled:
            return [(outcome, self.rng.choice(self.reconciled))]
        if outcome == "invalid":
            return [(outcome, self._invalid())]
        if outcome == "over_billed":
            return self._paid_twice(state)
        if outcome == "amount_mismatch" and _billed_through_the_api(state) is None:
            outcome = "matched"  # this pharmacy recorded no billing to differ from
        if outcome == "duplicate_invoice":
            outcome = "matched"  # nothing to repeat yet
        return [self._kept(outcome, self._invoice(outcome, state))]

    def _kept(self, outcome: str, invoice: dict[str, Any]) -> tuple[str, bytes]:
        line = self.encoder.encode(invoice)
        if outcome in RECONCILED:
            self.reconciled.append(line)
        return outcome, line

    def _paid_twice(self, state: Prescription) -> Written:
        """A matched invoice, then another one billing one of its packs again."""
        first = self._invoice("matched", state)
        again = {**first, "invoice_number": self._number(), "lines": [dict(first["lines"][0])]}
        again["lines"][0].update(quantity=1, amount_cents=250)
        return [self._kept("matched", first), self._kept("over_billed", again)]

    def _number(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count:09d}"

    def _invoice(self, outcome: str, state: Prescription) -> dict[str, Any]:
        rng = self.rng
        recorded = _billed_through_the_api(state)
        pharmacies = list(dict.fromkeys(d.finess for d in state.standing_dispensations))
        finess = rng.choice(pharmacies)
        if outcome == "amount_mismatch" or (
            recorded and outcome == "matched" and rng.random() < 0.5
        ):
            assert recorded is not None
            finess = recorded.finess  # billed under the number it recorded
        given: dict[int, tuple[Product, int]] = {}
        for dispensation in state.standing_dispensations:
            if dispensation.finess == finess:
                for handed in dispensation.lines:
                    product, quantity = given.get(handed.line_no, (handed.product, 0))
                    given[handed.line_no] = (product, quantity + handed.quantity)
        lines = [
            {
                "line_no": line_no,
                "product": msgspec.to_builtins(product),
                "quantity": quantity,
                "amount_cents": 250 * quantity,
            }
            for line_no, (product, quantity) in sorted(given.items())
        ]
        number = state.prescription_id
        invoice_number = self._number()
        if (
            recorded is not None
            and finess == recorded.finess
            and outcome in ("matched", "amount_mismatch")
        ):
            invoice_number = recorded.invoice_number or invoice_number
        if outcome == "quantity_mismatch":
            rng.choice(lines)["quantity"] += 1
        elif outcome == "amount_mismatch":
            rng.choice(lines)["amount_cents"] += 1
        elif outcome == "product_mismatch":
            taken = {p.code for p in _products_of(state)}
            other = rng.choice([p for p in rng.sample(PRODUCTS, 8) if p.code not in taken])
            rng.choice(lines)["product"] = msgspec.to_builtins(other)
        elif outcome == "no_dispensation":
            finess = rng.choice([p for p in rng.sample(PHARMACIES, 4) if p not in pharmacies])
        elif outcome == "unknown_prescription":
            number = _unknown_number(rng, number)
        shown = number
        if outcome != "unknown_prescription" and rng.random() < 0.5:
            shown = PrescriptionNumber(number).display()  # as printed: groups of five
        return {
            "invoice_number": invoice_number,
            "finess": finess,
            "prescription_id": shown,
            "lines": lines,
        }

    def _invalid(self) -> bytes:
        number = self._number()
        kind = self.rng.randrange(5)
        good_line = {
            "line_no": 1,
            "product": msgspec.to_builtins(PRODUCTS[0]),
            "quantity": 1,
            "amount_cents": 250,
        }
        base = {
            "invoice_number": number,
            "finess": PHARMACIES[0],
            "prescription_id": PrescriptionNumber.generate(self.rng.getrandbits).value,
            "lines": [good_line],
        }
        if kind == 0:
            return b'{"invoice_number": "' + number.encode() + b'", "finess": '  # cut short
        if kind == 1:
            del base["finess"]
        elif kind == 2:
            base["finess"] = PHARMACIES[0][:-1] + str((int(PHARMACIES[0][-1]) + 1) % 10)
        elif kind == 3:
            base["lines"] = [{**good_line, "quantity": 0}]
        else:
            base["lines"] = []
        return self.encoder.encode(base)


def _billed_through_the_api(state: Prescription) -> Dispensation | None:
    """The dispensing whose pharmacy recorded its billing (the generator bills one at most),
    when that pharmacy dispensed nothing else of the prescription."""
    billed = next((d for d in state.standing_dispensations if d.billed), None)
    if billed is None:
        return None
    alone = all(d is billed or d.finess != billed.finess for d in state.standing_dispensations)
    return billed if alone else None


def _products_of(state: Prescription) -> Iterator[Product]:
    for line in state.lines:
        yield line.prescribed.product
    for dispensation in state.dispensations:
        for handed in dispensation.lines:
            yield handed.product


def _unknown_number(rng: random.Random, number: str) -> str:
    """A number no prescription has: new, or the real one with one character mistyped."""
    if rng.random() < 0.5:
        return PrescriptionNumber.generate(rng.getrandbits).value
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    position = rng.randrange(len(number))
    typo = rng.choice([c for c in alphabet if c != number[position]])
    return number[:position] + typo + number[position + 1 :]


def parse_share(text: str) -> dict[str, float]:
    share: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        if name.strip() not in OUTCOMES:
            raise argparse.ArgumentTypeError(f"unknown outcome {name!r}: {', '.join(OUTCOMES)}")
        share[name.strip()] = float(value)
    total = sum(share.values())
    if total <= 0:
        raise argparse.ArgumentTypeError("the shares must add up to more than 0")
    return {name: value / total for name, value in share.items()}


async def write_invoices(
    settings: Settings,
    out: Path,
    lines: int,
    share: dict[str, float],
    *,
    seed: int,
    prefix: str,
) -> Counter[str]:
    rng = random.Random(f"invoices-{seed}")
    maker = InvoiceMaker(rng, prefix)
    names, weights = list(share), list(share.values())
    expected: Counter[str] = Counter()
    written = 0
    started = time.perf_counter()
    with out.open("wb") as handle:
        async for state in states(settings):
            if not state.standing_dispensations:
                continue
            outcome = rng.choices(names, weights)[0]
            if outcome == "over_billed" and lines - written < 2:
                outcome = "matched"  # no room left for the pair
            for got, line in maker.make(outcome, state):
                handle.write(line + b"\n")
                expected[got] += 1
                written += 1
                if written % 200_000 == 0:
                    rate = written / (time.perf_counter() - started)
                    console.log(f"wrote {written:,} invoices ({rate:,.0f}/s)")
            if written >= lines:
                break
    if written < lines:
        console.print(
            f"only {written:,} invoices: each dispensed prescription is billed in one visit "
            "(a second would be over_billed); use --generate-log N with more prescriptions"
        )
        raise SystemExit(2)
    return expected


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/invoices",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="the NDJSON file to write")
    parser.add_argument("--lines", type=int, default=10_000, help="invoices (default 10,000)")
    parser.add_argument("--share", type=parse_share, default=parse_share(DEFAULT_SHARE))
    parser.add_argument(
        "--generate-log", type=int, metavar="N", help="append N prescriptions first"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prefix", default="F", help="of invoice numbers (default F)")
    parser.add_argument("--expect", type=Path, help="write the expected counts (JSON) there")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.generate_log:
        asyncio.run(generate_log(settings, args.generate_log, args.seed))
    started = time.perf_counter()
    expected = asyncio.run(
        write_invoices(
            settings, args.out, args.lines, args.share, seed=args.seed, prefix=args.prefix
        )
    )
    table = Table(title=f"{args.out}: {args.lines:,} invoices, expected outcomes")
    table.add_column("outcome")
    table.add_column("invoices", justify="right")
    for outcome in OUTCOMES:
        table.add_row(outcome, f"{expected[outcome]:,}")
    console.print(table)
    console.print(f"written in {time.perf_counter() - started:.1f} s")
    if args.expect:
        args.expect.write_text(json.dumps({o: expected[o] for o in OUTCOMES}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
