"""What the medicines catalogue says about a pack, and the rules that follow from it.

The catalogue is the French public medicines database (Base de données publique des
médicaments, BDPM). Its files describe medicines (CIS codes), their packs (présentations, CIP13
codes), substances, generic groups and prescribing conditions (conditions de prescription et de
délivrance, free French text). Reading the files is the adapters' business; here are the facts
per pack (`PackFacts`), what the condition texts mean (`prescribing_conditions`), and the pure
functions the dispensing rules use: `line_requirements` and `substitute_allowed`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Protocol

import msgspec

from domain.errors import DomainError
from domain.events import PrescribedLine, Product
from domain.pack_contents import is_contraceptive, units_in_pack
from domain.prescription import LineState, Prescription
from domain.text import normalized, words
from domain.units import PackSizes

GenericRole = Literal["princeps", "generic", "complementary", "substitutable"]
# CIS_GENER's type column: 0 princeps, 1 générique, 2 générique par complémentarité
# posologique, 4 générique substituable.
GENERIC_ROLES: dict[int, GenericRole] = {
    0: "princeps",
    1: "generic",
    2: "complementary",
    4: "substitutable",
}

NARCOTIC_MAX_DAYS = 28  # R5132-30: a narcotic is prescribed for 28 days at most
ASSIMILATED_MAX_DAYS = 84  # since 1 March 2025: 12 weeks for tramadol, codeine, dihydrocodeine
# Matched as whole words of the normalised substance names ("CHLORHYDRATE DE TRAMADOL",
# "PHOSPHATE DE CODÉINE HÉMIHYDRATÉ", "TARTRATE DE DIHYDROCODÉINE").
ASSIMILATED_SUBSTANCES = frozenset({"tramadol", "codeine", "dihydrocodeine"})
DAYS_PER_UNIT = {"jour": 1, "semaine": 7, "mois": 30}  # a month as 30 days: our design choice

# Words of a substance's name that say which salt, hydrate or form it is, not what it is:
# "SULFATE DE MORPHINE" is morphine for a prescription written by substance (DCI).
SALT_WORDS = frozenset(
    {
        "acetate", "anhydre", "base", "besilate", "bromhydrate", "calcique", "chlorhydrate",
        "citrate", "de", "dihydrate", "disodique", "d", "du", "des", "equivalant", "a",
        "fumarate", "hemihydrate", "hydrate", "hydrochlorure", "magnesique", "maleate",
        "mesilate", "monohydrate", "monosodique", "phosphate", "potassique", "potassium",
        "sel", "sesquihydrate", "sodique", "sodium", "succinate", "sulfate", "tartrate",
        "trihydrate", "la", "le", "les", "l", "et", "exprime", "en", "forme",
    }
)  # fmt: skip


class Substance(msgspec.Struct, frozen=True, kw_only=True):
    """One line of CIS_COMPO: an active substance (SA) or its therapeutic fraction (FT).

    An SA and an FT with the same element and link number are one component of the medicine,
    named two ways ("AMOXICILLINE TRIHYDRATÉE" and "AMOXICILLINE ANHYDRE")."""

    code: str
    name: str
    dosage: str
    reference: str
    nature: str  # SA (substance active) or FT (fraction thérapeutique)
    element: str
    link: int


class GenericGroup(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str
    role: GenericRole


class PrescribingConditions(msgspec.Struct, frozen=True, kw_only=True):
    """What CIS_CPD's texts say, for the rules ordo enforces."""

    narcotic: bool = False
    secure_prescription: bool = False
    max_duration_days: int | None = None
    fraction_days: int | None = None
    lists: tuple[str, ...] = ()


class PackFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the catalogue knows about one pack (CIP13), with the rules applied.

    `secure_prescription` and `max_duration_days` are what a prescription of this pack needs
    today: a narcotic needs a secure prescription for 28 days at most even where CIS_CPD omits
    it, and an `assimilated` product (tramadol, codeine, dihydrocodeine: a rule later than
    older snapshots) needs one for 84 days at most. `conditions` keeps CIS_CPD's texts as
    written."""

    cip13: str
    cip7: str
    cis: str
    label: str  # the medicine (dénomination), "" when CIS_bdpm does not list its CIS
    pack: str  # the presentation ("plaquette(s) PVC-Aluminium de 14 gélule(s)")
    form: str
    routes: tuple[str, ...]
    marketed: bool  # the pack's marketing declaration is not an end of marketing
    substances: tuple[Substance, ...]
    generic_group: GenericGroup | None
    other_generic_groups: tuple[GenericGroup, ...]
    price_cents: int | None
    price_with_fee_cents: int | None
    reimbursement_rate: int | None  # percent
    narcotic: bool
    secure_prescription: bool
    max_duration_days: int | None
    fraction_days: int | None
    lists: tuple[str, ...]
    assimilated: bool
    conditions: tuple[str, ...]
    # Read from the label and the substances (`domain.pack_contents`); snapshots imported
    # before they were read hold neither: no unit count, not a contraceptive.
    units: int | None = None
    contraceptive: bool = False

    def generic_groups(self) -> tuple[GenericGroup, ...]:
        first = (self.generic_group,) if self.generic_group else ()
        return first + self.other_generic_groups

    @property
    def hospital_only(self) -> bool:
        """Reserved to hospital use (`hospital_only`): never on a community prescription."""
        return hospital_only(self.conditions)

    @property
    def overlap_forbidden(self) -> bool:
        """Its conditions say "chevauchement interdit" (`overlap_forbidden`): no two
        prescriptions of its substance cover the same day."""
        return overlap_forbidden(self.conditions)

    @property
    def substance_key(self) -> str:
        """What it is, whatever the brand, salt or form: the core words of its substances'
        names ("TARTRATE DE ZOLPIDEM" and "ZOLPIDEM (TARTRATE DE)" are "zolpidem"); its CIS
        when the catalogue lists none."""
        core = set().union(*(core_words(s.name) for s in self.substances))
        return " ".join(sorted(core)) or f"CIS {self.cis}"


class LineRequirements(msgspec.Struct, frozen=True, kw_only=True):
    """What a prescription line of this pack must say, and how it may be dispensed."""

    narcotic: bool
    secure_prescription: bool
    max_duration_days: int | None
    fraction_days: int | None
    assimilated: bool


class PackLookup(Protocol):
    """A catalogue snapshot as the rules see it: facts per CIP13, None when it does not know
    the pack (or when no catalogue was imported)."""

    def facts(self, cip13: str) -> PackFacts | None: ...


_LIMITED = re.compile(r"prescription limitee a (.+)$")
_SPAN = re.compile(r"(\d+)\s*(jour|semaine|mois)s?")
_FRACTIONED = re.compile(r"delivrance fractionnee de (\d+)\s*(jour|semaine|mois)")
_LIST = re.compile(r"^liste (i{1,2})$")


def prescribing_conditions(texts: Iterable[str]) -> PrescribingConditions:
    """Read CIS_CPD's condition texts: `stupéfiants`, `… ordonnance sécurisée`,
    `prescription limitée à 4 semaines` (also `12 semaines`, `6 mois`, `7 jours ou 28 jours`,
    whose longest span is the limit: the shorter one applies to some forms, which the prescriber
    writes), `délivrance fractionnée de 7 jours`, `liste I`, `liste II`. Other conditions
    (hospital prescription, specialists) are kept as text by the caller, not enforced here."""
    narcotic = secure = False
    limits: list[int] = []
    fractions: list[int] = []
    lists: list[str] = []
    for text in texts:
        plain = " ".join(normalized(text).split())
        narcotic = narcotic or plain in {"stupefiants", "stupefiant"}
        secure = secure or "ordonnance securisee" in plain
        if limited := _LIMITED.search(plain):
            limits.extend(_days(m) for m in _SPAN.finditer(limited.group(1)))
        if fraction := _FRACTIONED.search(plain):
            fractions.append(_days(fraction))
        if listed := _LIST.match(plain):
            lists.append(listed.group(1).upper())
    return PrescribingConditions(
        narcotic=narcotic,
        secure_prescription=secure,
        max_duration_days=max(limits) if limits else None,
        fraction_days=min(fractions) if fractions else None,
        lists=tuple(sorted(set(lists))),
    )


# CIS_CPD's "réservé à l'usage hospitalier" and "délivrance réservée aux pharmacies à usage
# intérieur" (CSP R5121-84, R5126-1: dispensed by a hospital's own pharmacy only), whatever the
# case, accents and apostrophe.
_HOSPITAL_ONLY = re.compile(
    r"reserve a l'usage hospitalier|delivrance reservee aux pharmacies a usage interieur"
)


def hospital_only(texts: Iterable[str]) -> bool:
    """Do CIS_CPD's condition texts reserve the product to hospital use?"""
    return any(_HOSPITAL_ONLY.search(" ".join(normalized(text).split())) for text in texts)


# CIS_CPD's "chevauchement interdit sauf mention expresse du prescripteur portée sur
# l'ordonnance" (R5132-33 applied beyond narcotics: zolpidem, tianeptine, clonazépam…).
_OVERLAP_FORBIDDEN = re.compile(r"chevauchement interdit")


def overlap_forbidden(texts: Iterable[str]) -> bool:
    """Do CIS_CPD's condition texts forbid a prescription to overlap another?"""
    return any(_OVERLAP_FORBIDDEN.search(" ".join(normalized(text).split())) for text in texts)


def _days(match: re.Match[str]) -> int:
    return int(match.group(1)) * DAYS_PER_UNIT[match.group(2)]


def is_assimilated(substance_names: Iterable[str]) -> bool:
    """Contains tramadol, codeine or dihydrocodeine, whatever the salt, case or accents."""
    return any(ASSIMILATED_SUBSTANCES.intersection(words(name)) for name in substance_names)


def pack_facts(
    *,
    cip13: str,
    cip7: str,
    cis: str,
    label: str,
    pack: str,
    form: str = "",
    routes: tuple[str, ...] = (),
    marketed: bool = True,
    substances: tuple[Substance, ...] = (),
    generic_groups: tuple[GenericGroup, ...] = (),
    price_cents: int | None = None,
    price_with_fee_cents: int | None = None,
    reimbursement_rate: int | None = None,
    conditions: tuple[str, ...] = (),
) -> PackFacts:
    """The facts of one pack, the rules applied to what the files say."""
    read = prescribing_conditions(conditions)
    assimilated = is_assimilated(s.name for s in substances)
    return PackFacts(
        cip13=cip13,
        cip7=cip7,
        cis=cis,
        label=label,
        pack=pack,
        form=form,
        routes=routes,
        marketed=marketed,
        substances=substances,
        generic_group=generic_groups[0] if generic_groups else None,
        other_generic_groups=generic_groups[1:],
        price_cents=price_cents,
        price_with_fee_cents=price_with_fee_cents,
        reimbursement_rate=reimbursement_rate,
        narcotic=read.narcotic,
        secure_prescription=read.secure_prescription or read.narcotic or assimilated,
        max_duration_days=_max_duration(read, assimilated=assimilated),
        fraction_days=read.fraction_days,
        lists=read.lists,
        assimilated=assimilated,
        conditions=conditions,
        units=units_in_pack(pack),
        contraceptive=is_contraceptive(s.name for s in substances),
    )


def _max_duration(read: PrescribingConditions, *, assimilated: bool) -> int | None:
    caps = [read.max_duration_days] if read.max_duration_days is not None else []
    if read.narcotic:
        caps.append(NARCOTIC_MAX_DAYS)
    if assimilated:
        caps.append(ASSIMILATED_MAX_DAYS)
    return min(caps) if caps else None


def line_requirements(facts: PackFacts) -> LineRequirements:
    return LineRequirements(
        narcotic=facts.narcotic,
        secure_prescription=facts.secure_prescription,
        max_duration_days=facts.max_duration_days,
        fraction_days=facts.fraction_days,
        assimilated=facts.assimilated,
    )


def substitute_allowed(
    prescribed: PackFacts | None, prescribed_substance_label: str | None, handed: PackFacts
) -> bool:
    """May `handed` be dispensed for a line prescribing `prescribed` (a CIP13 line the
    catalogue knows) or, for a line written by substance (DCI), `prescribed_substance_label`?

    A pack of the same medicine (same CIS, another pack size) or of the same generic group is
    a substitute. For a DCI line, every component of the handed pack must be named in the
    prescribed label: "amoxicilline 500 mg" allows Clamoxyl or a generic of it, but a line
    for paracetamol does not allow paracetamol with codeine. With neither a known prescribed
    pack nor a label there is nothing to compare with: False (callers decide unknown packs)."""
    if prescribed is not None:
        return prescribed.cis == handed.cis or _share_a_group(prescribed, handed)
    if prescribed_substance_label is not None:
        return contains_only_substances_of(prescribed_substance_label, handed)
    return False


def _share_a_group(one: PackFacts, other: PackFacts) -> bool:
    ids = {group.id for group in one.generic_groups()}
    return any(group.id in ids for group in other.generic_groups())


def contains_only_substances_of(label: str, facts: PackFacts) -> bool:
    """Whether each component of the pack is named in `label` (by its SA or FT name)."""
    written = set(words(label))
    components = _components(facts.substances)
    return bool(components) and all(
        any(core_words(name) and core_words(name) <= written for name in names)
        for names in components.values()
    )


def _components(substances: Iterable[Substance]) -> dict[tuple[str, int], list[str]]:
    components: dict[tuple[str, int], list[str]] = {}
    for substance in substances:
        components.setdefault((substance.element, substance.link), []).append(substance.name)
    return components


def core_words(name: str) -> set[str]:
    """The words that say what a substance is: "SULFATE DE MORPHINE" is {"morphine"}."""
    return {word for word in words(name) if not _qualifier(word)}


def _qualifier(word: str) -> bool:
    """A salt, a hydrate ("TRIHYDRATÉE", "HÉMIHYDRATÉ"), a connector or a number."""
    return word in SALT_WORDS or word.isdigit() or _HYDRATE.fullmatch(word) is not None


_HYDRATE = re.compile(r"[a-z]*hydrate[es]{0,2}")


def catalogued_line(line: PrescribedLine, catalogue: PackLookup | None) -> PrescribedLine:
    """A prescribed line as the catalogue knows its pack: a narcotic or assimilated product is
    one whatever the prescriber's software said, and the product's fractioning (narcotic or
    not: "délivrance fractionnée de 7 jours") applies when the prescriber wrote none. Lines
    written before a catalogue was imported are dispensed by the rules their product needs,
    like the ones written after."""
    facts = _facts_of(line.product, catalogue)
    if facts is None:
        return line
    narcotic = line.narcotic or facts.narcotic
    return msgspec.structs.replace(
        line,
        narcotic=narcotic,
        assimilated=line.assimilated or (facts.assimilated and not narcotic),
        fraction_days=line.fraction_days or product_fraction(facts, line.duration_days),
    )


def catalogued(state: Prescription, catalogue: PackLookup | None) -> Prescription:
    """The prescription with each line as the catalogue knows it (`catalogued_line`, and the
    substance whose overlap it forbids), its packs' units known (`sized`)."""
    if catalogue is None:
        return state
    lines = tuple(_catalogued_state(line, catalogue) for line in state.lines)
    return sized(msgspec.structs.replace(state, lines=lines), catalogue)


def _catalogued_state(line: LineState, catalogue: PackLookup) -> LineState:
    prescribed = catalogued_line(line.prescribed, catalogue)
    facts = _facts_of(prescribed.product, catalogue)
    substance = None
    if facts is not None and facts.overlap_forbidden and not prescribed.narcotic:
        substance = facts.substance_key
    return msgspec.structs.replace(line, prescribed=prescribed, overlap_substance=substance)


def sized(
    state: Prescription, catalogue: PackLookup | None, handing: Iterable[Product] = ()
) -> Prescription:
    """The prescription with the units of its packs (prescribed, handed over, and `handing`:
    about to be) as the catalogue states them, so that its lines are counted in units
    (`domain.units`)."""
    if catalogue is None:
        return state
    products = (*_products_of(state), *handing)
    return msgspec.structs.replace(state, pack_sizes=pack_sizes(products, catalogue))


def pack_sizes(products: Iterable[Product], catalogue: PackLookup) -> PackSizes:
    """The units of these packs as the catalogue states them, and which are contraceptives."""
    units: dict[str, int] = {}
    contraceptives: set[str] = set()
    for product in products:
        facts = _facts_of(product, catalogue)
        if facts is not None and facts.units is not None:
            units[facts.cip13] = facts.units
            if facts.contraceptive:
                contraceptives.add(facts.cip13)
    return PackSizes(units=units, contraceptives=frozenset(contraceptives))


def _products_of(state: Prescription) -> Iterable[Product]:
    yield from (line.prescribed.product for line in state.lines)
    for dispensation in state.dispensations:
        yield from (line.product for line in dispensation.lines)


def _facts_of(product: Product, catalogue: PackLookup | None) -> PackFacts | None:
    if catalogue is None or product.system != "CIP13" or product.code is None:
        return None
    return catalogue.facts(product.code)


def product_fraction(facts: PackFacts, duration_days: int) -> int | None:
    """The product's fractioning, when it splits this line at all."""
    fraction = facts.fraction_days
    return fraction if fraction is not None and fraction < duration_days else None


class Catalogue(msgspec.Struct, frozen=True):
    """The medicines catalogue as the rules consult it; `strict`: a CIP13 it does not know is
    refused (ORDO_CATALOGUE_STRICT), else it is taken at the prescriber's word."""

    packs: PackLookup
    strict: bool = False

    def facts(self, product: Product, field: str) -> PackFacts | None:
        if product.system != "CIP13" or product.code is None:
            return None
        facts = self.packs.facts(product.code)
        if facts is None and self.strict:
            raise DomainError(
                "unknown_product",
                f"the medicines catalogue knows no pack {product.code}",
                field=f"{field}.code",
            )
        return facts
