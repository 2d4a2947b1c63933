"""`ordo catalogue import DIR`: the official files into a new snapshot, switched in atomically.

The small files (medicines, compositions, conditions, generic groups) are read line by line
into dictionaries by CIS; then the packs file is streamed, each pack joined with its medicine's
facts and written in batches under a new snapshot id. Only when every file was read is the
snapshot put in force (one transaction, see `store`). Files identical to the snapshot in force
(same SHA-256) change nothing: the import reports "unchanged".
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, TypeVar

import anyio.to_thread

from adapters.catalogue.bdpm import (
    COMPOSITIONS,
    CONDITIONS,
    FILES,
    GENERICS,
    MEDICINES,
    PACKS,
    Malformed,
    MalformedLine,
    Medicine,
    PackRow,
    lines_of,
    parse_composition,
    parse_condition,
    parse_generic,
    parse_medicine,
    parse_pack,
)
from adapters.catalogue.store import (
    MALFORMED_KEPT,
    PACKS_PER_BATCH,
    CatalogueStore,
    FileCount,
    NewSnapshot,
    SnapshotInfo,
    pack_row,
)
from domain.catalogue import GenericGroup, PackFacts, Substance, pack_facts

T = TypeVar("T")
HASH_CHUNK = 1 << 20


class MissingFiles(Exception):  # noqa: N818 - reads as what is wrong
    """The directory lacks official files: nothing was imported."""


class ImportProgress(Protocol):
    def file_started(self, name: str, size: int) -> None: ...

    def advanced(self, name: str, size: int) -> None: ...

    def malformed(self, line: Malformed) -> None: ...

    def packs_written(self, count: int) -> None: ...


class Silent:
    def file_started(self, name: str, size: int) -> None:
        pass

    def advanced(self, name: str, size: int) -> None:
        pass

    def malformed(self, line: Malformed) -> None:
        pass

    def packs_written(self, count: int) -> None:
        pass


class ImportOutcome(NamedTuple):
    status: Literal["imported", "unchanged"]
    snapshot: SnapshotInfo
    malformed: list[Malformed]


class Medicines(NamedTuple):
    """What the packs are joined with, by CIS."""

    medicines: dict[str, Medicine]
    substances: dict[str, list[Substance]]
    conditions: dict[str, list[str]]
    groups: dict[str, list[GenericGroup]]


class Examined(NamedTuple):
    paths: dict[str, Path]
    digest: str
    newest: date
    source: str


def examine(directory: Path) -> Examined:
    """The files are all there; their content hash and date."""
    paths = check_files(directory)
    return Examined(paths, content_hash(paths), files_date(paths), str(directory.resolve()))


def check_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise MissingFiles(f"no such directory: {directory}")
    paths = {name: directory / name for name in FILES}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        raise MissingFiles(f"{directory} lacks {', '.join(missing)} (the official BDPM files)")
    return paths


def content_hash(paths: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for name in sorted(paths):
        digest.update(name.encode() + b"\0")
        with paths[name].open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def files_date(paths: dict[str, Path]) -> date:
    """The snapshot's date when none is given: the newest file's modification day (the day
    they were downloaded, as the official site publishes no date inside the files)."""
    newest = max(path.stat().st_mtime for path in paths.values())
    return datetime.fromtimestamp(newest).astimezone().date()


async def import_directory(
    store: CatalogueStore,
    directory: Path,
    *,
    snapshot_date: date | None = None,
    force: bool = False,
    progress: ImportProgress | None = None,
    after_batch: Callable[[int], None] = lambda _: None,
) -> ImportOutcome:
    """Import the five files of `directory` as the snapshot in force (see the module doc)."""
    report = progress or Silent()
    files = await anyio.to_thread.run_sync(examine, directory)
    paths, digest, source = files.paths, files.digest, files.source
    day = snapshot_date or files.newest
    async with store.importing():
        await store.prune()  # what an import killed midway left behind
        current = await store.current()
        if current is not None and current.content_hash == digest and not force:
            return ImportOutcome("unchanged", current, [])
        reading = Reading(paths, report)
        medicines = reading.medicines()
        snapshot_id = await store.begin()
        packs = 0
        for batch in _batches(reading.packs(medicines), PACKS_PER_BATCH):
            await store.add_packs(snapshot_id, [pack_row(facts) for facts in batch])
            packs += len(batch)
            report.packs_written(packs)
            after_batch(packs)
        new = NewSnapshot(
            content_hash=digest,
            snapshot_date=day,
            source=source,
            packs=packs,
            files=tuple(reading.counts[name] for name in FILES),
            malformed=tuple(str(line) for line in reading.malformed[:MALFORMED_KEPT]),
        )
        await store.publish(snapshot_id, new)
        await store.prune()
        published = await store.current()
    assert published is not None
    return ImportOutcome("imported", published, reading.malformed)


class Reading:
    """One pass over the files, counting lines and collecting the malformed ones."""

    def __init__(self, paths: dict[str, Path], progress: ImportProgress) -> None:
        self.paths = paths
        self.progress = progress
        self.counts: dict[str, FileCount] = {}
        self.malformed: list[Malformed] = []
        self.rejected: dict[str, int] = defaultdict(int)

    def medicines(self) -> Medicines:
        joined = Medicines({}, defaultdict(list), defaultdict(list), defaultdict(list))
        for medicine in self._rows(MEDICINES, parse_medicine):
            joined.medicines[medicine.cis] = medicine
        for composition in self._rows(COMPOSITIONS, parse_composition):
            joined.substances[composition.cis].append(composition.substance)
        for condition in self._rows(CONDITIONS, parse_condition):
            joined.conditions[condition.cis].append(condition.text)
        for member in self._rows(GENERICS, parse_generic):
            group = GenericGroup(id=member.group_id, label=member.label, role=member.role)
            joined.groups[member.cis].append(group)
        return joined

    def packs(self, joined: Medicines) -> Iterator[PackFacts]:
        seen: dict[str, int] = {}
        for number, row in self._numbered_rows(PACKS, parse_pack):
            if (first := seen.setdefault(row.cip13, number)) != number:
                self._reject(PACKS, number, f"CIP13 {row.cip13} already on line {first}")
                continue
            yield facts_of(row, joined)

    def _rows(self, name: str, parse: Callable[[str], T]) -> Iterator[T]:
        for _, row in self._numbered_rows(name, parse):
            yield row

    def _numbered_rows(self, name: str, parse: Callable[[str], T]) -> Iterator[tuple[int, T]]:
        path = self.paths[name]
        self.progress.file_started(name, path.stat().st_size)
        lines = 0
        for number, text in lines_of(path, lambda size: self.progress.advanced(name, size)):
            lines = number
            try:
                row = parse(_decoded(text))
            except MalformedLine as error:
                self._reject(name, number, str(error))
                continue
            yield number, row
        # Every line is imported or reported, duplicates rejected by the caller included.
        rejected = self.rejected[name]
        self.counts[name] = FileCount(
            file=name, lines=lines, imported=lines - rejected, malformed=rejected
        )

    def _reject(self, name: str, number: int, reason: str) -> None:
        line = Malformed(name, number, reason)
        self.malformed.append(line)
        self.rejected[name] += 1
        self.progress.malformed(line)


def _decoded(text: str | None) -> str:
    if text is None:
        raise MalformedLine("a byte that Windows-1252 does not define")
    if not text.strip():
        raise MalformedLine("empty line")
    return text


def facts_of(row: PackRow, joined: Medicines) -> PackFacts:
    medicine = joined.medicines.get(row.cis)
    return pack_facts(
        cip13=row.cip13,
        cip7=row.cip7,
        cis=row.cis,
        label=medicine.label if medicine else "",
        pack=row.pack,
        form=medicine.form if medicine else "",
        routes=medicine.routes if medicine else (),
        marketed=row.marketed,
        substances=tuple(joined.substances.get(row.cis, ())),
        generic_groups=tuple(joined.groups.get(row.cis, ())),
        price_cents=row.price_cents,
        price_with_fee_cents=row.price_with_fee_cents,
        reimbursement_rate=row.reimbursement_rate,
        conditions=tuple(joined.conditions.get(row.cis, ())),
    )


def _batches(items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
