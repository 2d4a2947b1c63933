"""`ordo reconcile FILE.ndjson [--out REPORT] [--format ndjson|csv]`: a batch from a file.

The same batches as the API (the same store, so invoice numbers reconciled here count for the
API too, and the other way round), processed in this process with a progress bar, then a
summary table; the report is the batch's items.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import IO, Literal

import anyio
import anyio.to_thread
import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from adapters.bootstrap import catalogue_snapshot_for, read_models_for
from adapters.config import Settings
from adapters.logging import configure_logging
from adapters.readmodels import ReadModels
from adapters.receipts import KeyRing, ReceiptVerifier
from adapters.reconciliation import reconciliation_for
from adapters.reconciliation.processing import Reconciliation
from adapters.reconciliation.store import Batch
from domain.reconciliation.invoices import OUTCOMES
from domain.reconciliation.records import catalogue_substitutes

ReportFormat = Literal["ndjson", "csv"]
READ_BYTES = 256 * 1024
VIEWS_WAIT_SECONDS = 30.0


async def reconcile_file(
    settings: Settings,
    source: Path,
    out: str | None,
    report_format: ReportFormat | None,
    console: Console,
) -> Batch:
    configure_logging(settings.log_hash_key, logging.WARNING)
    async with (
        read_models_for(settings) as read_models,
        catalogue_snapshot_for(settings) as snapshot,
    ):
        await catch_up_views(read_models, console)
        packs = snapshot if snapshot.info is not None else None
        reconciliation = reconciliation_for(
            read_models,
            views_wait_seconds=0.0,
            substitute=catalogue_substitutes(lambda: packs),
            receipts=ReceiptVerifier(KeyRing(settings.data_dir, settings.receipt_key)),
        )
        await reconciliation.store.create()
        started = time.perf_counter()
        batch_id = await _run(reconciliation, source, console)
        elapsed = time.perf_counter() - started
        batch = await reconciliation.store.batch(batch_id)
        assert batch is not None
        if out is not None:
            await write_report(reconciliation, batch_id, out, report_format or _format_of(out))
    console.print(summary(batch, elapsed))
    if out is not None and out != "-":
        console.print(f"report: {out}")
    return batch


async def _run(reconciliation: Reconciliation, source: Path, console: Console) -> str:
    with Progress(
        TextColumn("{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        size = (await anyio.Path(source).stat()).st_size
        staging = progress.add_task("staging", total=size, rate="")
        began = time.perf_counter()

        def staged(count: int) -> None:
            rate = count / max(time.perf_counter() - began, 1e-6) / 1e6
            progress.update(staging, completed=count, rate=f"{rate:,.1f} MB/s")

        batch_id = await reconciliation.receive(_read(source, staged))
        progress.update(staging, completed=size)
        batch = await reconciliation.store.batch(batch_id)
        assert batch is not None
        task = progress.add_task("reconciling", total=batch.lines_total, rate="")
        began = time.perf_counter()

        def advanced(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - began, 1e-6)
            progress.update(task, completed=done, total=total, rate=f"{rate:,.0f} lines/s")

        await reconciliation.process(batch_id, advanced)
    return batch_id


async def _read(path: Path, on_bytes: Callable[[int], None]) -> AsyncIterator[bytes]:
    count = 0
    with path.open("rb") as handle:
        while piece := await anyio.to_thread.run_sync(handle.read, READ_BYTES):
            count += len(piece)
            on_bytes(count)
            yield piece


async def catch_up_views(read_models: ReadModels, console: Console) -> None:
    """Reconcile against the whole log: if the views trail it and no process follows the log
    (no server, no `ordo project`), bring them up to date here first; else wait for them."""
    head = await read_models.source.head()
    if await read_models.store.position() >= head:
        return
    async with AsyncExitStack() as stack:
        try:
            async with asyncio.timeout(1.5):
                await stack.enter_async_context(read_models.store.leadership())
        except TimeoutError:  # another process leads: it is catching up
            await read_models.caught_up(head, VIEWS_WAIT_SECONDS)
            return
        with console.status(f"bringing the views up to the log head ({head})"):
            await read_models.catch_up(batch_size=5000)


async def write_report(
    reconciliation: Reconciliation, batch_id: str, out: str, report_format: ReportFormat
) -> None:
    with _opened(out) as handle:
        if report_format == "csv":
            writer = csv.writer(handle)
            writer.writerow(["line", "invoice_number", "outcome", "detail"])
            async for page in reconciliation.item_pages(batch_id, None):
                writer.writerows(page)
        else:
            encoder = msgspec.json.Encoder()
            async for page in reconciliation.item_pages(batch_id, None):
                handle.write(
                    encoder.encode_lines(
                        [
                            {
                                "line": item.line,
                                "invoice_number": item.invoice_number,
                                "outcome": item.outcome,
                                "detail": item.detail,
                            }
                            for item in page
                        ]
                    ).decode()
                )


@contextmanager
def _opened(out: str) -> Iterator[IO[str]]:
    if out == "-":
        yield sys.stdout
        return
    with Path(out).open("w", newline="", encoding="utf-8") as handle:
        yield handle


def _format_of(out: str) -> ReportFormat:
    return "csv" if out.lower().endswith(".csv") else "ndjson"


def summary(batch: Batch, elapsed: float) -> Table:
    """Invoices and amounts per outcome: what the insurer pays (`matched`), what it does not."""
    counts = batch.counts_of_every_outcome()
    amounts = batch.amounts_of_every_outcome()
    total = sum(counts.values())
    table = Table(
        title=f"reconciliation batch {batch.batch_id}",
        caption=f"{total:,} invoices in {elapsed:.1f} s ({total / max(elapsed, 1e-6):,.0f}/s)",
    )
    table.add_column("outcome")
    table.add_column("invoices", justify="right")
    table.add_column("share", justify="right")
    table.add_column("amount (EUR)", justify="right")
    for outcome in OUTCOMES:
        share = counts[outcome] / total if total else 0.0
        table.add_row(outcome, f"{counts[outcome]:,}", f"{share:.1%}", euros(amounts[outcome]))
    table.add_row(
        "total",
        f"{total:,}",
        "100.0%" if total else "-",
        euros(sum(amounts.values())),
        style="bold",
    )
    held = sum(amount for outcome, amount in amounts.items() if outcome != "matched")
    table.add_row("not paid", "", "", euros(held), style="bold")
    return table


def euros(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"
