"""`ordo catalogue status`'s lines on units (`adapters.catalogue.cli.units_summary`): how many
packs state their units, and how many are contraceptives; and on the prescribing conditions
enforced on every product (`conditions_summary`): how many medicines are dispensed in fractions,
may not overlap, are reserved to hospital use."""

from __future__ import annotations

from adapters.catalogue.cli import conditions_summary, units_summary
from tests.domain.real_packs import (
    DOLIPRANE_SYRUP,
    LEVOTHYROX_30,
    LEVOTHYROX_90,
    MINIDRIL_1,
    MINIDRIL_3,
    RealPacks,
)
from tests.domain.test_catalogue import pack


def test_the_status_says_the_share_of_packs_with_units_and_the_contraceptives() -> None:
    packs = RealPacks()
    codes = (LEVOTHYROX_30, LEVOTHYROX_90, MINIDRIL_1, MINIDRIL_3, DOLIPRANE_SYRUP)
    facts = [found for code in codes if (found := packs.facts(code)) is not None]

    assert units_summary(facts) == "units stated for 4 of 5 packs (80.0%); 2 contraceptive packs"
    assert units_summary([]) == "units stated for 0 of 0 packs (0.0%); 0 contraceptive packs"


def test_the_status_counts_the_medicines_reserved_to_hospital_use() -> None:
    hospital = ("réservé à l'usage HOSPITALIER",)
    facts = [
        pack("3400957128340", "60080232", conditions=hospital),
        pack("3400957128341", "60080232", conditions=hospital),  # another pack, same medicine
        pack(
            "3400930000014",
            "60000000",
            conditions=("délivrance réservée aux pharmacies à usage intérieur",),
        ),
        pack("3400931587538", "67707794", conditions=("prescription hospitalière",)),
    ]

    assert conditions_summary(facts).endswith(
        "; 2 reserved to hospital use (refused at prescribing)"
    )
    assert conditions_summary([]) == (
        "0 medicines dispensed in fractions (none); 0 whose prescriptions may not overlap "
        "(chevauchement interdit); 0 reserved to hospital use (refused at prescribing)"
    )


def test_the_status_counts_the_medicines_in_fractions_by_days_and_those_that_may_not_overlap() -> (
    None
):
    seven = ("délivrance fractionnée de 7 jours",)
    facts = [
        pack("3400933943998", "68945058", conditions=seven),  # SUBUTEX 8 mg
        pack("3400933943999", "68945058", conditions=seven),  # another pack, same medicine
        pack("3400930000021", "65150204", conditions=seven),
        pack("3400934238307", "60914025", conditions=("délivrance fractionnée de 14 jours",)),
        pack(
            "3400934658570",
            "63179285",
            conditions=("chevauchement interdit sauf mention expresse du prescripteur",),
        ),
    ]

    assert conditions_summary(facts) == (
        "3 medicines dispensed in fractions (2 of 7 days, 1 of 14 days); 1 whose "
        "prescriptions may not overlap (chevauchement interdit); 0 reserved to hospital use "
        "(refused at prescribing)"
    )
