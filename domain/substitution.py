"""Substitution: which product a pharmacy may hand over for the one prescribed, and the mentions
that say so.

- The prescriber's "non substituable" mention (CSP L5125-23; arrêté of 12 November 2019) is
  allowed for three reasons only: **MTE**, a narrow-therapeutic-margin substance of the list
  (`MTE_SUBSTANCES`: that arrêté, completed by the arrêté of 20 July 2022), **EFG**, a child under
  6, **CIF**, a contra-indicated excipient in every generic. On such a line no other medicine may
  be handed over (`substitution_excluded`).
- The pharmacist's own exclusion, "non substituable (MTE-PH)" (arrêté of 30 January 2020), is for
  the listed MTE substances only, and the prescriber is told.
- The patient may refuse the generic offered on a substitutable line ("tiers payant contre
  génériques"): recorded on the dispensing, for billing.
- A biological medicine of a substitutable biosimilar group (`BIOSIMILAR_SUBSTANCES`: arrêté of 20
  February 2025) may be replaced by another medicine of the same substance, its lot recorded
  (`lot_required`).

A product's substances are the catalogue's (CIS_COMPO); a pack the catalogue does not know is
judged by the words of its label. Matching ignores case, accents, salts and hydrates:
"LÉVOTHYROXINE SODIQUE" is lévothyroxine.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from domain.catalogue import PackFacts, core_words
from domain.errors import DomainError, invalid
from domain.events import NonSubstitutable, PrescribedLine, Product
from domain.identifiers import Ins

# Arrêté of 12 November 2019, annex; lacosamide and oxcarbazépine added by the arrêté of 20 July
# 2022 (ordre.pharmacien.fr, "La liste des médicaments à marge thérapeutique étroite").
MTE_SUBSTANCES = (
    "lamotrigine",
    "prégabaline",
    "zonisamide",
    "lévétiracétam",
    "topiramate",
    "valproate de sodium",
    "lévothyroxine",
    "mycophénolate mofétil",
    "mycophénolate sodique",
    "buprénorphine",
    "azathioprine",
    "ciclosporine",
    "évérolimus",
    "lacosamide",
    "oxcarbazépine",
)
# Arrêté of 20 February 2025, annex: the 9 biosimilar groups a community pharmacist may
# substitute within (ameli.fr, meddispar.fr).
BIOSIMILAR_SUBSTANCES = (
    "filgrastim",
    "pegfilgrastim",
    "ranibizumab",
    "tériparatide",
    "étanercept",
    "adalimumab",
    "énoxaparine",
    "follitropine alfa",
    "époétine",
)
# EFG: a child under 6 (arrêté of 12 November 2019).
EFG_AGE_YEARS = 6


def listed_substance(names: Iterable[str], listed: Iterable[str]) -> str | None:
    """The first substance of `listed` that one of `names` (a product's substances or its
    label) is, whatever its salt, case or accents; None when none is."""
    written = [core_words(name) for name in names]
    for substance in listed:
        wanted = core_words(substance)
        if any(wanted <= words for words in written):
            return substance
    return None


def substances_of(product: Product, facts: PackFacts | None) -> tuple[str, ...]:
    """The names a product is judged by: the catalogue's substances, else its label."""
    if facts is not None and facts.substances:
        return tuple(substance.name for substance in facts.substances)
    return (product.label,)


def check_non_substitutable(  # noqa: PLR0917 - the mention, the product and the patient's age
    mention: NonSubstitutable,
    product: Product,
    facts: PackFacts | None,
    patient: Ins,
    issued_on: date,
    field: str,
) -> None:
    """The prescriber's mention is allowed for its reason, else `non_substitution_reason_invalid`
    naming `<field>.non_substitutable.reason`."""
    at = f"{field}.non_substitutable.reason"
    if product.system == "DCI":
        raise DomainError(
            "non_substitution_reason_invalid",
            "a line written by substance (DCI) names no medicine to keep: "
            "non_substitutable needs a product",
            field=at,
        )
    if (
        mention.reason == "MTE"
        and listed_substance(substances_of(product, facts), MTE_SUBSTANCES) is None
    ):
        name = facts.label if facts is not None and facts.label else product.label
        raise DomainError(
            "non_substitution_reason_invalid",
            f"MTE is for a narrow-therapeutic-margin substance ({', '.join(MTE_SUBSTANCES)}); "
            f"{name} contains none",
            field=at,
        )
    if mention.reason == "EFG" and not under_six(patient, issued_on):
        raise DomainError(
            "non_substitution_reason_invalid",
            f"EFG is for a child under {EFG_AGE_YEARS} on issued_on",
            field=at,
        )


def under_six(patient: Ins, on: date) -> bool:
    """Whether the patient may be under 6 on `on`. The INS states the month of birth, not the
    day: a child is taken as under 6 until the month of their sixth birthday is over, and one
    whose month is not stated is given the benefit of the doubt."""
    born = patient.born_in(on)
    if born is None:
        return True
    sixth = born.replace(year=born.year + EFG_AGE_YEARS)
    return on < sixth.replace(year=sixth.year + sixth.month // 12, month=sixth.month % 12 + 1)


def is_substitution(
    prescribed: Product,
    handed: Product,
    prescribed_facts: PackFacts | None,
    handed_facts: PackFacts | None,
) -> bool:
    """Whether `handed` is another medicine than the one prescribed: another code, unless the
    catalogue knows both packs as one medicine (the same CIS in another pack size). A line written
    by substance (DCI) names no medicine: any pack of it is what was prescribed."""
    if prescribed.system == "DCI" or (prescribed.system, prescribed.code) == (
        handed.system,
        handed.code,
    ):
        return False
    if prescribed_facts is not None and handed_facts is not None:
        return prescribed_facts.cis != handed_facts.cis
    return True


def check_mentions(
    line: PrescribedLine,
    *,
    substituted: bool,
    generic_refused: bool,
    pharmacist_excludes: bool,
    prescribed_facts: PackFacts | None,
    field: str,
) -> None:
    """A dispensing line's substitution against the line's mentions: nothing else on a
    non-substitutable line (`substitution_excluded`); the generic refused only on a
    substitutable line where the prescribed medicine is given; MTE-PH only for a listed
    substance on a line the prescriber left substitutable, the prescribed medicine given."""
    mention = line.non_substitutable
    if mention is not None and substituted:
        raise DomainError(
            "substitution_excluded",
            f"line {line.line_no} is non substituable ({mention.reason}): "
            f"give {line.product.label} itself",
            field=f"{field}.product",
        )
    if generic_refused:
        _check_generic_refused(line, substituted=substituted, field=f"{field}.generic_refused")
    if pharmacist_excludes:
        _check_pharmacist_exclusion(
            line, substituted=substituted, facts=prescribed_facts, field=f"{field}.non_substitution"
        )


def _check_generic_refused(line: PrescribedLine, *, substituted: bool, field: str) -> None:
    if line.non_substitutable is not None:
        raise invalid(f"line {line.line_no} is non substituable: no generic was offered", field)
    if substituted:
        raise invalid("the patient refused the generic: the prescribed medicine is given", field)


def _check_pharmacist_exclusion(
    line: PrescribedLine, *, substituted: bool, facts: PackFacts | None, field: str
) -> None:
    if line.non_substitutable is not None:
        detail = (
            f"line {line.line_no} is already non substituable ({line.non_substitutable.reason})"
        )
    elif substituted:
        detail = "MTE-PH keeps the prescribed medicine: it cannot come with a substitute"
    elif listed_substance(substances_of(line.product, facts), MTE_SUBSTANCES) is None:
        detail = (
            f"MTE-PH is for a narrow-therapeutic-margin substance; {line.product.label} "
            "contains none"
        )
    else:
        return
    raise DomainError("non_substitution_reason_invalid", detail, field=field)


def biosimilar_of(prescribed: PackFacts, handed: PackFacts) -> str | None:
    """The listed biosimilar substance both medicines are made of, when the prescribed one is a
    biological of a substitutable group and the handed one is made of that substance alone."""
    substance = listed_substance(substances_of_pack(prescribed), BIOSIMILAR_SUBSTANCES)
    names = substances_of_pack(handed)
    if substance is None or not names or not all(_is(name, substance) for name in names):
        return None
    return substance


def substances_of_pack(facts: PackFacts) -> tuple[str, ...]:
    return tuple(substance.name for substance in facts.substances)


def _is(name: str, substance: str) -> bool:
    return core_words(substance) <= core_words(name)


def check_lot(lot: str | None, substance: str, line_no: int, field: str) -> None:
    """A biosimilar handed over for its reference is traced by its lot (arrêté of 20 February
    2025, general conditions)."""
    if lot is None or not lot.strip():
        raise DomainError(
            "lot_required",
            f"line {line_no} is a biosimilar substitution ({substance}): record its lot",
            field=f"{field}.lot",
        )
