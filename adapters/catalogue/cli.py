"""`ordo catalogue import DIR` and `ordo catalogue status`, with a progress bar and tables."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from adapters.bootstrap import catalogue_store_for
from adapters.catalogue.bdpm import PACKS, Malformed
from adapters.catalogue.importer import ImportOutcome, import_directory
from adapters.catalogue.index import EMPTY, load_snapshot
from adapters.catalogue.store import SnapshotInfo
from adapters.config import Settings
from adapters.logging import configure_logging
from domain.catalogue import PackFacts

# Crash test: die the hard way once this many packs are written, before the switch.
KILL_MIDWAY = "catalogue_kill_midway"
KILL_AFTER_PACKS = 4_000
MALFORMED_SHOWN = 20


async def import_files(
    settings: Settings,
    directory: Path,
    snapshot_date: date | None,
    *,
    force: bool,
    console: Console,
) -> ImportOutcome:
    configure_logging(settings.log_hash_key, logging.WARNING)
    started = time.perf_counter()
    async with catalogue_store_for(settings) as store:
        with Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            progress = BarProgress(bar)
            outcome = await import_directory(
                store,
                directory,
                snapshot_date=snapshot_date,
                force=force,
                progress=progress,
                after_batch=_failpoint(settings.failpoint),
            )
    elapsed = time.perf_counter() - started
    if outcome.status == "unchanged":
        info = outcome.snapshot
        console.print(
            f"unchanged: snapshot {info.snapshot_id} ({info.snapshot_date}) already holds "
            f"these files (sha256 {info.content_hash[:12]}); use --force to import them again"
        )
    else:
        console.print(snapshot_table(outcome.snapshot, f"imported in {elapsed:.1f} s"))
    return outcome


async def show_status(settings: Settings, console: Console) -> SnapshotInfo | None:
    async with catalogue_store_for(settings) as store:
        info = await store.current()
        unfinished = await store.loading()
        snapshot = await load_snapshot(store) if info is not None else EMPTY
    if info is None:
        console.print(
            "no catalogue imported: every pack is unknown (the prescriber's word decides)"
        )
    else:
        console.print(snapshot_table(info, f"imported at {info.imported_at:%Y-%m-%d %H:%M %Z}"))
        console.print(units_summary(snapshot), highlight=False)
        console.print(conditions_summary(snapshot), highlight=False)
        for line in info.malformed[:MALFORMED_SHOWN]:
            console.print(f"malformed: {line}", highlight=False)
    if unfinished:
        console.print(
            f"unfinished imports (running, or killed; the next import clears them): "
            f"{', '.join(map(str, unfinished))}"
        )
    return info


def units_summary(packs: Iterable[PackFacts]) -> str:
    """How many packs state their units (their lines are counted in units), how many are
    contraceptives."""
    total = counted = contraceptives = 0
    for facts in packs:
        total += 1
        counted += facts.units is not None
        contraceptives += facts.contraceptive
    share = counted / total if total else 0.0
    return (
        f"units stated for {counted:,} of {total:,} packs ({share:.1%}); "
        f"{contraceptives:,} contraceptive packs"
    )


def conditions_summary(packs: Iterable[PackFacts]) -> str:
    """How many medicines (CIS) carry each prescribing condition ordo enforces on every
    product: dispensed in fractions (by the fraction's days), no overlap ("chevauchement
    interdit"), reserved to hospital use (422 hospital_use_only at prescribing)."""
    fractioned: dict[int, set[str]] = {}
    no_overlap: set[str] = set()
    hospital: set[str] = set()
    for facts in packs:
        if facts.fraction_days is not None:
            fractioned.setdefault(facts.fraction_days, set()).add(facts.cis)
        if facts.overlap_forbidden:
            no_overlap.add(facts.cis)
        if facts.hospital_only:
            hospital.add(facts.cis)
    by_days = ", ".join(f"{len(cis):,} of {days} days" for days, cis in sorted(fractioned.items()))
    in_fractions = sum(len(cis) for cis in fractioned.values())
    return (
        f"{in_fractions:,} medicines dispensed in fractions ({by_days or 'none'}); "
        f"{len(no_overlap):,} whose prescriptions may not overlap (chevauchement interdit); "
        f"{len(hospital):,} reserved to hospital use (refused at prescribing)"
    )


def snapshot_table(info: SnapshotInfo, caption: str) -> Table:
    table = Table(
        title=f"catalogue snapshot {info.snapshot_id} of {info.snapshot_date} "
        f"({info.packs:,} packs)",
        caption=f"{caption}; sha256 {info.content_hash[:12]}; from {info.source}",
    )
    table.add_column("file")
    table.add_column("lines", justify="right")
    table.add_column("imported", justify="right")
    table.add_column("malformed", justify="right")
    for count in info.files:
        table.add_row(count.file, f"{count.lines:,}", f"{count.imported:,}", f"{count.malformed}")
    return table


class BarProgress:
    """One bar per file, by bytes read; malformed lines printed above the bars as they come."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}
        self.shown = 0

    def file_started(self, name: str, size: int) -> None:
        self.tasks[name] = self.bar.add_task(name, total=size, note="")

    def advanced(self, name: str, size: int) -> None:
        self.bar.advance(self.tasks[name], size)

    def malformed(self, line: Malformed) -> None:
        self.shown += 1
        if self.shown <= MALFORMED_SHOWN:
            self.bar.console.print(f"skipped {line}", highlight=False, markup=False)
        elif self.shown == MALFORMED_SHOWN + 1:
            self.bar.console.print("more malformed lines: see `ordo catalogue status`")

    def packs_written(self, count: int) -> None:
        self.bar.update(self.tasks[PACKS], note=f"{count:,} packs")


def _failpoint(failpoint: str | None) -> Callable[[int], None]:
    def after_batch(packs: int) -> None:
        if failpoint == KILL_MIDWAY and packs >= KILL_AFTER_PACKS:
            os.kill(os.getpid(), signal.SIGKILL)

    return after_batch
