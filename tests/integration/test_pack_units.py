"""Units, contraceptives and prescribing conditions as the import reads them from the full
official snapshot (`ORDO_BDPM_DIR`, by default `../shared/data/bdpm/` beside the repository;
skipped without it): the share of packs with a unit count, the contraceptives, the medicines
in fractions, whose prescriptions may not overlap or reserved to hospital use, and real packs
read right."""

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


def named_by(packs: dict[str, PackFacts], *texts: str) -> set[str]:
    """The medicines with packs that CIS_CPD gives one of these texts (in lower case)."""
    named = {
        cis
        for cis, text in (
            line.split("\t")[:2]
            for line in (FULL / "CIS_CPD_bdpm.txt").read_text("windows-1252").splitlines()
            if "\t" in line
        )
        if text.strip().lower() in texts
    }
    return named & {facts.cis for facts in packs.values()}


def test_the_conditions_enforced_are_counted_as_cis_cpd_names_them(
    packs: dict[str, PackFacts],
) -> None:
    hospital = named_by(
        packs,
        "réservé à l'usage hospitalier",
        "délivrance réservée aux pharmacies à usage intérieur",
    )
    seven = named_by(packs, "délivrance fractionnée de 7 jours")
    fourteen = named_by(packs, "délivrance fractionnée de 14 jours")
    no_overlap = named_by(
        packs,
        "chevauchement interdit sauf mention expresse du prescripteur portée sur l'ordonnance",
    )

    # The snapshot of 2 June 2022: 711 + 85 hospital texts (790 medicines with packs), 115
    # fractions of 7 days (buprénorphine, midazolam, narcotics), 48 of 14 days (fentanyl
    # patches…), 21 "chevauchement interdit" (zolpidem, tianeptine, clonazépam, clorazépate).
    assert (len(hospital), len(seven), len(fourteen), len(no_overlap)) == (790, 115, 48, 21)
    assert conditions_summary(packs.values()) == (
        "163 medicines dispensed in fractions (115 of 7 days, 48 of 14 days); 21 whose "
        "prescriptions may not overlap (chevauchement interdit); 790 reserved to hospital use "
        "(refused at prescribing)"
    )
    assert packs["3400957128340"].hospital_only  # VENOFER 20 mg/mL
    assert packs["3400933943998"].fraction_days == 7  # SUBUTEX 8 mg
    stilnox = packs["3400934658570"]  # STILNOX 10 mg, 14 comprimés
    assert stilnox.overlap_forbidden and stilnox.substance_key == "zolpidem"
    assert {packs[c].substance_key for c in packs if packs[c].cis in no_overlap} == {
        "zolpidem",
        "tianeptine",
        "clonazepam",
        "clorazepate dipotassique",
    }


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
