"""The catalogue's pure rules: what the condition texts mean, assimilated products, the
requirements of a line, and which packs may be handed over for which prescription."""

from __future__ import annotations

import pytest

from domain.catalogue import (
    GenericGroup,
    LineRequirements,
    PackFacts,
    PrescribingConditions,
    Substance,
    is_assimilated,
    line_requirements,
    pack_facts,
    prescribing_conditions,
    substitute_allowed,
)
from domain.text import normalized


def substance(name: str, nature: str = "SA", link: int = 1) -> Substance:
    return Substance(
        code="0", name=name, dosage="", reference="", nature=nature, element="gélule", link=link
    )


def pack(
    cip13: str,
    cis: str,
    *substances: Substance,
    group: str | None = None,
    conditions: tuple[str, ...] = (),
) -> PackFacts:
    groups = (GenericGroup(id=group, label=f"group {group}", role="generic"),) if group else ()
    return pack_facts(
        cip13=cip13,
        cip7=cip13[5:12],
        cis=cis,
        label=f"medicine {cis}",
        pack="a box",
        substances=substances,
        generic_groups=groups,
        conditions=conditions,
    )


CLAMOXYL = pack(
    "3400931587538",
    "67707794",
    substance("AMOXICILLINE ANHYDRE", "FT"),
    substance("AMOXICILLINE TRIHYDRATÉE"),
    group="148",
)
AMOXICILLINE_ARROW = pack(
    "3400935765680",
    "66082724",
    substance("AMOXICILLINE ANHYDRE", "FT"),
    substance("AMOXICILLINE TRIHYDRATÉE"),
    group="148",
)
SKENAN = pack(
    "3400933323523",
    "61227030",
    substance("SULFATE DE MORPHINE"),
    conditions=(
        "prescription limitée à 4 semaines",
        "prescription en toutes lettres sur ordonnance sécurisée",
        "stupéfiants",
    ),
)
CODOLIPRANE = pack(
    "3400936129832",
    "60904643",
    substance("PARACÉTAMOL"),
    substance("PHOSPHATE DE CODÉINE HÉMIHYDRATÉ", link=2),
    conditions=("liste I",),
)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("prescription limitée à 4 semaines", 28),
        ("prescription limitée à 12 semaines", 84),
        ("prescription limitée à 2 semaines", 14),
        ("prescription limitée à 6 mois", 180),
        ("prescription limitée à 7 jours", 7),
        ("prescription limitée à 3 jours", 3),
        ("prescription limitée à 7 jours ou 28 jours", 28),
        ("PRESCRIPTION LIMITEE A 4 SEMAINES", 28),
        ("liste I", None),
        ("ordonnance avec NFL datée dont valeurs dans les limites usuelles", None),
    ],
)
def test_the_longest_duration_a_condition_allows(text: str, days: int | None) -> None:
    assert prescribing_conditions([text]).max_duration_days == days


def test_conditions_of_a_narcotic_with_fractions() -> None:
    read = prescribing_conditions(
        [
            "prescription limitée à 4 semaines",
            "délivrance fractionnée de 14 jours",
            "prescription en toutes lettres sur ordonnance sécurisée",
            "stupéfiants",
        ]
    )
    assert (read.narcotic, read.secure_prescription) == (True, True)
    assert (read.max_duration_days, read.fraction_days, read.lists) == (28, 14, ())


def test_lists_and_what_is_not_a_narcotic() -> None:
    read = prescribing_conditions(["liste II", "liste I", "réservé à l'usage HOSPITALIER"])
    assert read.lists == ("I", "II")
    assert not read.narcotic and not read.secure_prescription
    assert read.max_duration_days is None and read.fraction_days is None


@pytest.mark.parametrize(
    ("names", "assimilated"),
    [
        (["CHLORHYDRATE DE TRAMADOL"], True),
        (["TRAMADOL BASE"], True),
        (["PARACÉTAMOL", "PHOSPHATE DE CODÉINE HÉMIHYDRATÉ"], True),
        (["Codeine"], True),
        (["TARTRATE DE DIHYDROCODÉINE"], True),
        (["SULFATE DE MORPHINE"], False),
        (["PARACÉTAMOL"], False),
        (["NORCODEINE"], False),  # a whole word only
    ],
)
def test_assimilated_products_are_recognised_by_substance(
    names: list[str], assimilated: bool
) -> None:
    assert is_assimilated(names) is assimilated


def test_a_narcotic_needs_a_secure_prescription_for_28_days_at_most() -> None:
    requirements = line_requirements(SKENAN)
    assert requirements.narcotic and requirements.secure_prescription
    assert requirements.max_duration_days == 28
    assert not requirements.assimilated and requirements.fraction_days is None


def test_a_narcotic_without_a_written_limit_still_has_28_days() -> None:
    hospital = pack("3400930000008", "60811559", conditions=("stupéfiants",))
    assert line_requirements(hospital).max_duration_days == 28
    assert line_requirements(hospital).secure_prescription


def test_an_assimilated_product_needs_a_secure_prescription_for_84_days_at_most() -> None:
    requirements = line_requirements(CODOLIPRANE)
    assert requirements.assimilated and requirements.secure_prescription
    assert not requirements.narcotic
    assert requirements.max_duration_days == 84


def test_an_assimilated_product_keeps_a_shorter_limit_of_its_own() -> None:
    short = pack(
        "3400930000008",
        "60000001",
        substance("CHLORHYDRATE DE TRAMADOL"),
        conditions=("prescription limitée à 4 semaines",),
    )
    assert line_requirements(short).max_duration_days == 28


def test_a_generic_of_the_same_group_may_be_handed_over() -> None:
    assert substitute_allowed(CLAMOXYL, None, AMOXICILLINE_ARROW)
    assert substitute_allowed(AMOXICILLINE_ARROW, None, CLAMOXYL)


def test_a_pack_of_another_group_or_of_none_may_not() -> None:
    assert not substitute_allowed(CLAMOXYL, None, SKENAN)
    assert not substitute_allowed(SKENAN, None, CLAMOXYL)
    other_group = pack("3400930000008", "60000002", substance("AMOXICILLINE"), group="149")
    assert not substitute_allowed(CLAMOXYL, None, other_group)


def test_another_pack_size_of_the_same_medicine_may_be_handed_over() -> None:
    bigger = pack("3400930000015", SKENAN.cis, substance("SULFATE DE MORPHINE"))
    assert substitute_allowed(SKENAN, None, bigger)


def test_a_line_by_substance_allows_packs_of_that_substance_only() -> None:
    assert substitute_allowed(None, "Amoxicilline 500 mg", CLAMOXYL)
    assert substitute_allowed(None, "AMOXICILLINE 500 MG gélule", AMOXICILLINE_ARROW)
    assert substitute_allowed(None, "morphine 10 mg LP", SKENAN)
    assert not substitute_allowed(None, "Paracétamol 1 g", SKENAN)
    # Paracetamol with codeine is not what a line for paracetamol prescribes...
    assert not substitute_allowed(None, "paracetamol 500 mg", CODOLIPRANE)
    # ...but it is what a line for both prescribes.
    assert substitute_allowed(None, "paracétamol 500 mg + codéine 30 mg", CODOLIPRANE)


def test_with_nothing_to_compare_with_no_substitute_is_allowed() -> None:
    assert not substitute_allowed(None, None, CLAMOXYL)
    no_substances = pack("3400930000008", "60000003")
    assert not substitute_allowed(None, "anything", no_substances)


# --- built when the test runs (the packs above are built once, when the module is imported) ----


def test_a_pack_keeps_what_the_files_say_and_the_rules_it_follows() -> None:
    groups = tuple(GenericGroup(id=g, label=f"group {g}", role="generic") for g in "123")

    facts = pack_facts(
        cip13="3400930000015",
        cip7="3000001",
        cis="60000010",
        label="SKENAN LP 10 mg",
        pack="plaquette de 14 gélules",
        substances=(substance("SULFATE DE MORPHINE"),),
        generic_groups=groups,
        price_cents=512,
        price_with_fee_cents=614,
        reimbursement_rate=65,
        conditions=("stupéfiant", "délivrance fractionnée de 7 jours"),
    )

    assert facts == PackFacts(
        cip13="3400930000015",
        cip7="3000001",
        cis="60000010",
        label="SKENAN LP 10 mg",
        pack="plaquette de 14 gélules",
        form="",
        routes=(),
        marketed=True,
        substances=(substance("SULFATE DE MORPHINE"),),
        generic_group=groups[0],
        other_generic_groups=groups[1:],
        price_cents=512,
        price_with_fee_cents=614,
        reimbursement_rate=65,
        narcotic=True,
        secure_prescription=True,
        max_duration_days=28,
        fraction_days=7,
        lists=(),
        assimilated=False,
        conditions=("stupéfiant", "délivrance fractionnée de 7 jours"),
        units=14,
        contraceptive=False,
    )
    assert line_requirements(facts) == LineRequirements(
        narcotic=True,
        secure_prescription=True,
        max_duration_days=28,
        fraction_days=7,
        assimilated=False,
    )


def test_tramadol_needs_a_secure_prescription_for_84_days_where_the_files_say_nothing() -> None:
    facts = pack("3400930000022", "60000011", substance("CHLORHYDRATE DE TRAMADOL"))

    assert line_requirements(facts) == LineRequirements(
        narcotic=False,
        secure_prescription=True,
        max_duration_days=84,
        fraction_days=None,
        assimilated=True,
    )


def test_conditions_that_say_nothing_ask_nothing() -> None:
    read = prescribing_conditions([])

    assert read == PrescribingConditions()
    assert read.narcotic is False and read.secure_prescription is False


def test_stupefiant_in_the_singular_is_a_narcotic() -> None:
    assert prescribing_conditions(["Stupéfiant"]).narcotic is True


def test_a_label_naming_exactly_the_substance_allows_its_packs() -> None:
    assert substitute_allowed(None, "morphine", SKENAN)


def test_hydrates_and_numbers_in_a_substance_name_are_not_needed_in_the_label() -> None:
    trihydrate = pack("3400930000039", "60000012", substance("AMOXICILLINE TRIHYDRATÉE"))
    macrogol = pack("3400930000046", "60000013", substance("MACROGOL 4000"))

    assert substitute_allowed(None, "amoxicilline 1 g", trihydrate)
    assert substitute_allowed(None, "macrogol sachet", macrogol)


def test_accents_case_and_typographic_apostrophes_are_normalised() -> None:
    assert normalized("Déclaration d’ARRÊT de commercialisation") == (
        "declaration d'arret de commercialisation"
    )
