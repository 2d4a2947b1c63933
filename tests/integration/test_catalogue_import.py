"""The full official snapshot (`../shared/data/bdpm/`) imported on SQLite and PostgreSQL.

Counts per file are the files' line counts less the reported malformed lines; importing the
same files again changes nothing visible; an import killed (SIGKILL) midway leaves the previous
snapshot in force; and the facts the rules need come out right for Skenan, Topalgic, Clamoxyl
and its generics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import pytest

from adapters.catalogue import SAMPLE_DIR, CatalogueSnapshot, load_snapshot, open_catalogue_store
from adapters.catalogue.bdpm import FILES
from adapters.catalogue.importer import ImportOutcome, import_directory
from adapters.catalogue.store import FACTS_DECODER, CatalogueStore
from adapters.config import Settings
from domain.catalogue import line_requirements, substitute_allowed
from tools.cast import SECRET

REPO = Path(__file__).resolve().parents[2]
FULL = REPO.parent / "shared" / "data" / "bdpm"
SNAPSHOT_DAY = date(2022, 6, 2)
SKENAN, TOPALGIC = "3400933323523", "3400933911881"
CLAMOXYL, AMOXICILLINE_ARROW = "3400931587538", "3400935765680"

needs_full_snapshot = pytest.mark.skipif(
    not FULL.is_dir(), reason=f"the official snapshot is not at {FULL}"
)


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[CatalogueStore]:
    """The store, opened in the test's own event loop (asyncpg pools belong to one loop)."""
    store = await open_catalogue_store(settings)
    try:
        yield store
    finally:
        await store.close()


def line_count(path: Path) -> int:
    """Lines as a reader counts them: a last line without its line end counts too."""
    data = path.read_bytes()
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


async def everything(store: CatalogueStore) -> dict[str, bytes]:
    info = await store.current()
    assert info is not None
    return {raw_cip13(raw): raw async for page in store.packs(info.snapshot_id) for raw in page}


def raw_cip13(raw: bytes) -> str:
    return FACTS_DECODER.decode(raw).cip13


@needs_full_snapshot
async def test_the_full_snapshot_imports_every_well_formed_line(settings: Settings) -> None:
    async with opened(settings) as store:
        await full_snapshot_counts(store)


async def full_snapshot_counts(store: CatalogueStore) -> None:
    outcome = await import_directory(store, FULL, snapshot_date=SNAPSHOT_DAY)

    assert outcome.status == "imported"
    info = outcome.snapshot
    assert info.snapshot_date == SNAPSHOT_DAY
    reported: dict[str, int] = {}
    for line in outcome.malformed:
        reported[line.file] = reported.get(line.file, 0) + 1
    for count in info.files:
        lines = line_count(FULL / count.file)
        assert count.lines == lines, count
        assert count.malformed == reported.get(count.file, 0), count
        assert count.imported == lines - count.malformed, count
    assert [count.file for count in info.files] == list(FILES)
    packs = next(count for count in info.files if count.file == "CIS_CIP_bdpm.txt")
    assert info.packs == packs.imported
    assert len(await everything(store)) == info.packs
    assert await store.current() == info


@needs_full_snapshot
async def test_importing_the_same_files_again_changes_nothing(settings: Settings) -> None:
    async with opened(settings) as store:
        await same_files_again(store)


async def same_files_again(store: CatalogueStore) -> None:
    first = await import_directory(store, FULL, snapshot_date=SNAPSHOT_DAY)
    before = await everything(store)

    again = await import_directory(store, FULL, snapshot_date=SNAPSHOT_DAY)
    assert again.status == "unchanged"
    assert again.snapshot == first.snapshot
    assert await everything(store) == before

    # Forced through, the same files make the same facts (a new snapshot id, nothing else).
    forced = await import_directory(store, FULL, snapshot_date=SNAPSHOT_DAY, force=True)
    assert forced.status == "imported"
    assert forced.snapshot.snapshot_id != first.snapshot.snapshot_id
    assert forced.snapshot.files == first.snapshot.files
    assert await everything(store) == before
    assert await store.loading() == []


@needs_full_snapshot
async def test_a_new_snapshot_replaces_the_previous_one(settings: Settings) -> None:
    async with opened(settings) as store:
        await sample_then_full(store)


async def sample_then_full(store: CatalogueStore) -> None:
    await import_directory(store, SAMPLE_DIR, snapshot_date=SNAPSHOT_DAY)
    sample = await load_snapshot(store)
    full: ImportOutcome = await import_directory(store, FULL, snapshot_date=date(2022, 6, 3))
    replaced = await load_snapshot(store)

    assert len(sample) < 100 < len(replaced) == full.snapshot.packs
    assert replaced.snapshot_date == date(2022, 6, 3)
    assert await store.prune() == 0  # the sample's snapshot is gone already


def run_import(
    settings: Settings, directory: Path, *args: str, failpoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`ordo catalogue import DIR` as its own process, on the settings' store."""
    env = {**os.environ, "ORDO_DATA_DIR": str(settings.data_dir), "ORDO_AUTH_SECRET": SECRET}
    env.pop("ORDO_DATABASE_URL", None)
    if settings.database_url:
        env["ORDO_DATABASE_URL"] = settings.database_url
    if failpoint:
        env["ORDO_FAILPOINT"] = failpoint
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "catalogue", "import", str(directory), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_full_snapshot
async def test_an_import_killed_midway_leaves_the_previous_snapshot_in_force(
    settings: Settings,
) -> None:
    async with opened(settings) as store:
        await killed_midway(settings, store)


async def killed_midway(settings: Settings, store: CatalogueStore) -> None:
    await import_directory(store, SAMPLE_DIR, snapshot_date=SNAPSHOT_DAY)
    before = await store.current()
    sample = await everything(store)

    # It SIGKILLs itself once 4,000 of the 20,747 packs are written.
    killed = run_import(settings, FULL, "--force", failpoint="catalogue_kill_midway")

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert await store.current() == before
    assert await everything(store) == sample
    assert len(await store.loading()) == 1  # its half-written snapshot, invisible

    # The next import clears what the killed one left and switches as usual.
    outcome = await import_directory(store, FULL, snapshot_date=SNAPSHOT_DAY)
    assert outcome.status == "imported"
    assert await store.loading() == []
    assert len(await everything(store)) == outcome.snapshot.packs


def test_a_missing_directory_is_one_line_and_a_failure(tmp_path: Path) -> None:
    settings = Settings.from_env({"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET})
    done = run_import(settings, tmp_path / "nowhere")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "nowhere" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_file_is_one_line_and_a_failure(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in FILES[:-1]:
        (partial / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    settings = Settings.from_env({"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET})
    done = run_import(settings, partial)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"ordo catalogue import: {partial} lacks {FILES[-1]} (the official BDPM files)"
    )


# --- the facts the rules need, from the real files ---------------------------------------------


@pytest.fixture(scope="module")
async def full_catalogue(tmp_path_factory: pytest.TempPathFactory) -> CatalogueSnapshot:
    if not FULL.is_dir():
        pytest.skip(f"the official snapshot is not at {FULL}")
    settings = Settings.from_env(
        {"ORDO_DATA_DIR": str(tmp_path_factory.mktemp("full")), "ORDO_AUTH_SECRET": SECRET}
    )
    async with opened(settings) as store:
        await import_directory(store, FULL, snapshot_date=SNAPSHOT_DAY)
        return await load_snapshot(store)


def test_skenan_is_a_narcotic_on_a_secure_prescription_for_28_days(
    full_catalogue: CatalogueSnapshot,
) -> None:
    skenan = full_catalogue.facts(SKENAN)
    assert skenan is not None and skenan.label.startswith("SKENAN L.P. 10 mg")
    requirements = line_requirements(skenan)
    assert requirements.narcotic and requirements.secure_prescription
    assert requirements.max_duration_days == 28
    assert not requirements.assimilated
    assert [s.name for s in skenan.substances] == ["SULFATE DE MORPHINE"]
    assert (skenan.price_cents, skenan.reimbursement_rate) == (309, 65)


def test_topalgic_is_assimilated_for_84_days(full_catalogue: CatalogueSnapshot) -> None:
    topalgic = full_catalogue.facts(TOPALGIC)
    assert topalgic is not None and topalgic.label == "TOPALGIC 50 mg, gélule"
    requirements = line_requirements(topalgic)
    assert requirements.assimilated and requirements.secure_prescription
    assert not requirements.narcotic
    assert requirements.max_duration_days == 84
    assert topalgic.lists == ("I",)


def test_a_generic_of_clamoxyl_is_an_allowed_substitute_and_skenan_is_not(
    full_catalogue: CatalogueSnapshot,
) -> None:
    clamoxyl = full_catalogue.facts(CLAMOXYL)
    arrow = full_catalogue.facts(AMOXICILLINE_ARROW)
    skenan = full_catalogue.facts(SKENAN)
    assert clamoxyl is not None and arrow is not None and skenan is not None
    assert clamoxyl.generic_group is not None and clamoxyl.generic_group.role == "princeps"
    assert arrow.generic_group is not None and arrow.generic_group.role == "generic"
    assert substitute_allowed(clamoxyl, None, arrow)
    assert not substitute_allowed(clamoxyl, None, skenan)
    assert substitute_allowed(None, "amoxicilline 500 mg", arrow)
    assert not substitute_allowed(None, "amoxicilline 500 mg", skenan)


def test_every_fractioned_narcotic_and_every_tramadol_pack(
    full_catalogue: CatalogueSnapshot,
) -> None:
    packs = list(full_catalogue)
    fractioned = [p for p in packs if p.fraction_days is not None]
    assert fractioned and {p.fraction_days for p in fractioned} == {7, 14}
    tramadol = [p for p in packs if any("TRAMADOL" in s.name for s in p.substances)]
    assert tramadol and all(p.assimilated and p.secure_prescription for p in tramadol)
    assert all((p.max_duration_days or 999) <= 84 for p in tramadol)
    narcotics = [p for p in packs if p.narcotic]
    assert narcotics and all(
        p.secure_prescription and (p.max_duration_days or 999) <= 28 for p in narcotics
    )
