"""Memory stays flat however large the batch: upload, processing and items all stream.

Eight times more invoices must not take more memory: tracemalloc's peak (Python allocations)
while a batch is received, reconciled and read back is measured for 10,000 and for 80,000
invoices, with chunks of 1,000, and compared (a first small batch warms the caches up). Each
staged chunk is also checked to hold no more than a chunk's lines.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.librarylog import LibraryLog, open_library_log
from adapters.readmodels import open_read_models
from adapters.reconciliation import reconciliation_for
from adapters.reconciliation.ndjson import RawChunk
from adapters.reconciliation.processing import Reconciliation
from domain.events import DispensationRecorded, DispensedLine, PrescribedLine, PrescriptionIssued
from domain.events import Product as DomainProduct
from domain.identifiers import PrescriptionNumber
from projections.runner import ProjectionRunner
from tests.conftest import settings_for
from tools import cast

CHUNK = 1000
PRESCRIPTIONS = 200
PHARMACY = cast.PHARMACY.value
PRODUCT = DomainProduct(system="CIP13", code=cast.PARACETAMOL.value, label="P")


def append_prescriptions(log: LibraryLog) -> list[str]:
    now = datetime.now(UTC)
    numbers = [PrescriptionNumber.generate().value for _ in range(PRESCRIPTIONS)]
    line = PrescribedLine(
        line_no=1, product=PRODUCT, quantity=3, dosage="x", duration_days=8, narcotic=False
    )
    for n, number in enumerate(numbers):
        log.append(
            [
                PrescriptionIssued(
                    prescription_id=number,
                    version=1,
                    at=now,
                    prescriber_rpps=cast.PRESCRIBER.value,
                    patient_ins=cast.patient(n).value,
                    issued_on=now.date(),
                    kind="standard",
                    execution_view_consent=True,
                    lines=(line,),
                ),
                DispensationRecorded(
                    prescription_id=number,
                    version=2,
                    at=now,
                    dispensation_id=f"d{n}",
                    finess=PHARMACY,
                    pharmacist_rpps=cast.PHARMACIST.value,
                    dispensed_at=now,
                    lines=(DispensedLine(line_no=1, quantity=2, product=PRODUCT),),
                ),
            ]
        )
    return numbers


async def body(numbers: list[str], invoices: int, run: int) -> AsyncIterator[bytes]:
    """The NDJSON body, produced piece by piece as a network would deliver it."""
    encoder = msgspec.json.Encoder()
    piece = bytearray()
    for n in range(invoices):
        piece += encoder.encode(
            {
                "invoice_number": f"R{run}-{n:07d}",
                "finess": PHARMACY,
                "prescription_id": numbers[n % len(numbers)],
                "lines": [
                    {
                        "line_no": 1,
                        "product": msgspec.to_builtins(PRODUCT),
                        "quantity": 1 + n % 3,  # 3 is more than was dispensed
                        "amount_cents": 250,
                    }
                ],
            }
        )
        piece += b"\n" if n % 97 else b"{not json\n"  # this line is not JSON
        if len(piece) > 64 * 1024:
            yield bytes(piece)
            piece.clear()
    yield bytes(piece)


async def peak_while_reconciling(
    reconciliation: Reconciliation, numbers: list[str], invoices: int, run: int
) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        batch_id = await reconciliation.receive(body(numbers, invoices, run))
        assert await reconciliation.process(batch_id)
        read = 0
        async for page in reconciliation.item_pages(batch_id, None):
            read += len(page)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    batch = await reconciliation.store.batch(batch_id)
    assert batch is not None and batch.status == "done"
    assert read == batch.lines_done == batch.lines_total == invoices
    assert batch.counts["invalid"] == len(range(0, invoices, 97))  # a line spoilt now and then
    # the same 200 prescriptions are billed again and again: after the first packs are paid,
    # invoices are over_billed
    assert batch.counts["quantity_mismatch"] > 0
    assert batch.counts.get("matched", 0) + batch.counts.get("over_billed", 0) > 0
    return peak


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_eight_times_more_invoices_take_no_more_memory(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    settings = settings_for(tmp_path, url)
    log = open_library_log(settings.database_url, settings.data_dir)
    read_models = await open_read_models(settings, log)
    try:
        numbers = append_prescriptions(log)
        await ProjectionRunner(read_models.source, read_models.store).catch_up()
        reconciliation = reconciliation_for(read_models, chunk_lines=CHUNK)
        await reconciliation.store.create()
        staged: list[RawChunk] = []
        add_chunk = reconciliation.store.add_chunk

        async def watched(
            batch_id: str, owner: str, chunk_no: int, chunk: RawChunk, **kw: Any
        ) -> None:
            staged.append(chunk._replace(body=b""))
            await add_chunk(batch_id, owner, chunk_no, chunk, **kw)

        monkeypatch.setattr(reconciliation.store, "add_chunk", watched)

        await peak_while_reconciling(reconciliation, numbers, 2_000, 0)  # caches warm
        small = await peak_while_reconciling(reconciliation, numbers, 10_000, 1)
        large = await peak_while_reconciling(reconciliation, numbers, 80_000, 2)

        print(f"tracemalloc peak: {small / 2**20:.2f} MiB, then {large / 2**20:.2f} MiB")
        assert large < small * 1.25, (small, large)
        assert max(chunk.invoices for chunk in staged) == CHUNK
    finally:
        await read_models.close()
        log.close()
