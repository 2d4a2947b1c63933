"""`ordo catalogue status`'s line on units (`adapters.catalogue.cli.units_summary`): how many
packs state their units, and how many are contraceptives."""

from __future__ import annotations

from adapters.catalogue.cli import units_summary
from tests.domain.real_packs import (
    DOLIPRANE_SYRUP,
    LEVOTHYROX_30,
    LEVOTHYROX_90,
    MINIDRIL_1,
    MINIDRIL_3,
    RealPacks,
)


def test_the_status_says_the_share_of_packs_with_units_and_the_contraceptives() -> None:
    packs = RealPacks()
    codes = (LEVOTHYROX_30, LEVOTHYROX_90, MINIDRIL_1, MINIDRIL_3, DOLIPRANE_SYRUP)
    facts = [found for code in codes if (found := packs.facts(code)) is not None]

    assert units_summary(facts) == "units stated for 4 of 5 packs (80.0%); 2 contraceptive packs"
    assert units_summary([]) == "units stated for 0 of 0 packs (0.0%); 0 contraceptive packs"
