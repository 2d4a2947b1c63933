"""Units, contraceptives and prescribing conditions as the import reads them from the full
official snapshot (`ORDO_BDPM_DIR`, by default `../shared/data/bdpm/` beside the repository;
skipped without it): the share of packs with a unit count, the contraceptives, the medicines
reserved to hospital use, and real packs read right."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.catalogue.cli import conditions_summary, units_summary
from adapters.catalogue.importer import Reading, Silent, check_files
from domain.catalogue import PackFacts

REPO = Path(__file__).resolve().parents[2]
FULL = Path(os.environ.get("ORDO_BDPM_DIR", REPO.parent / "shared" / "data" / "bdpm"))

pytestmark = pytest.mark.skipif(
    not FULL.is_dir(), reason=f"the official snapshot is not at {FULL} (ORDO_BDPM_DIR)"
)


@pytest.fixture(scope="module")
def packs() -> dict[str, PackFacts]:
    reading = Reading(check_files(FULL), Silent())
    return {facts.cip13: facts for facts in reading.packs(reading.medicines())}


def test_most_packs_state_their_units_and_the_contraceptives_are_found(
    packs: dict[str, PackFacts],
) -> None:
    counted = sum(facts.units is not None for facts in packs.values())
    contraceptives = {facts.label for facts in packs.values() if facts.contraceptive}

    assert counted / len(packs) > 0.7
    assert 100 < len(contraceptives) < 300  # 145 medicines in the snapshot of 2 June 2022
    assert not any(name.startswith(("DIANE", "ANGELIQ", "VISANNE")) for name in contraceptives)
    assert units_summary(packs.values()) == (
        f"units stated for {counted:,} of {len(packs):,} packs ({counted / len(packs):.1%}); "
        f"{sum(f.contraceptive for f in packs.values()):,} contraceptive packs"
    )


def test_the_medicines_reserved_to_hospital_use_are_those_cis_cpd_names(
    packs: dict[str, PackFacts],
) -> None:
    texts = (
        "réservé à l'usage hospitalier",
        "délivrance réservée aux pharmacies à usage intérieur",
    )
    named = {
        cis
        for cis, text in (
            line.split("\t")[:2]
            for line in (FULL / "CIS_CPD_bdpm.txt").read_text("windows-1252").splitlines()
            if "\t" in line
        )
        if text.strip().lower() in texts
    }
    with_packs = named & {facts.cis for facts in packs.values()}

    assert 500 < len(with_packs) < 900  # 711 + 85 texts in the snapshot of 2 June 2022
    assert conditions_summary(packs.values()) == (
        f"{len(with_packs):,} medicines reserved to hospital use (refused at prescribing)"
    )
    assert packs["3400957128340"].hospital_only  # VENOFER 20 mg/mL


@pytest.mark.parametrize(
    ("cip13", "units", "contraceptive"),
    [
        ("3400930065556", 30, False),  # LEVOTHYROX 25 µg, B/30
        ("3400930065570", 90, False),  # LEVOTHYROX 25 µg, B/90
        ("3400931823902", 21, True),  # MINIDRIL, 1 cycle
        ("3400931824091", 63, True),  # MINIDRIL, 3 cycles
        ("3400934615467", None, False),  # DOLIPRANE 2,4 % suspension, 100 ml
        ("3400933323523", 14, False),  # SKENAN LP 10 mg
    ],
)
def test_real_packs_are_read_right(
    packs: dict[str, PackFacts], cip13: str, units: int | None, contraceptive: bool
) -> None:
    assert (packs[cip13].units, packs[cip13].contraceptive) == (units, contraceptive)
