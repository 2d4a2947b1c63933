"""What a pack holds, read from the BDPM: how many units (tablets, capsules, sachets, doses…)
and whether it is a contraceptive.

The units come from the presentation label of CIS_CIP_bdpm.txt, written by the ANSM in a
regular French: "plaquette(s) thermoformée(s) PVC aluminium de 30 comprimé(s)" holds 30,
"3 plaquette(s) PVC-Aluminium de 28 comprimé(s)" 84, "20 sachet(s) papier aluminium de 4 g"
20, "1 flacon(s) pressurisé(s) … de 200 dose(s)" 200. A pack of several parts, each of tablets
or capsules, adds them up ("… de 24 comprimé(s) - … de 4 comprimé(s)" holds 28: a pill's active
and placebo tablets, or an initiation pack's strengths). A pack measured in volume or weight
("1 flacon(s) en verre de 150 ml", "1 tube(s) de 30 g"), or a kit of other parts ("1 flacon(s)
de poudre - 1 seringue(s) de solvant", a dose and its solvent), states no unit count: None.

A contraceptive is read from its substances (CIS_COMPO_bdpm.txt; the files carry no ATC
class): an estrogen of the pill (ethinylestradiol, estetrol) with a progestin, estradiol with
nomegestrol or dienogest (Zoely, Qlaira), or a progestin that is only ever a contraceptive on
its own (desogestrel, etonogestrel, levonorgestrel, drospirenone: pills, implant, intrauterine
system, emergency contraception). Cyproterone, the progestin of Diane (acne), is none of them, and
estradiol with another progestin is a menopause treatment: neither is a contraceptive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from domain.text import normalized, words

# Units counted after "de N": the dosage forms a patient takes one at a time.
_COUNTED = (
    r"comprimes?|gelules?|capsules?|sachets?|suppositoires?|ovules?|pastilles?|lyophilisats?"
    r"|doses?|dispositifs?|films?|gommes?|dragees?|implants?"
)
# Containers that are themselves the unit when the label starts with their count.
_UNIT_CONTAINERS = (
    r"sachets?|ampoules?|recipients?|seringues?|stylos?|suppositoires?|ovules?|dispositifs?"
    r"|comprimes?|gelules?|capsules?|pastilles?|films?|implants?|unidoses?"
)
_CONTENT = re.compile(rf"\bde (\d+) (?:{_COUNTED})\b")
_LEADING_COUNT = re.compile(r"^(\d+) ")
_LEADING_UNITS = re.compile(rf"^(\d+) (?:{_UNIT_CONTAINERS})\b")
_TABLETS = re.compile(r"\b(?:comprimes?|gelules?|capsules?)\b")
_LEADING_TABLETS = re.compile(r"^(\d+) (?:comprimes?|gelules?|capsules?)\b")
_NOTES = re.compile(r"\([^)]*\)")  # "(s)", "(PEHD)", "(distributeur parallèle : …)"

PILL_ESTROGENS = frozenset({"ethinylestradiol", "estetrol"})
PROGESTINS = frozenset(
    {
        "levonorgestrel", "desogestrel", "gestodene", "norgestimate", "norelgestromine",
        "etonogestrel", "drospirenone", "dienogest", "nomegestrol", "chlormadinone",
        "norethisterone",
    }
)  # fmt: skip
ESTRADIOL_PILL_PROGESTINS = frozenset({"nomegestrol", "dienogest"})
CONTRACEPTIVE_ALONE = frozenset({"desogestrel", "etonogestrel", "levonorgestrel", "drospirenone"})


def units_in_pack(label: str) -> int | None:
    """The units a pack holds, from its BDPM presentation label; None when it states none."""
    plain = " ".join(normalized(_NOTES.sub(" ", label)).split())
    parts = [part.strip() for part in plain.split(" - ")]
    if len(parts) == 1:
        return _units_of_part(plain)
    if not all(_TABLETS.search(part) for part in parts):
        return None  # a kit: powder and solvent, a dose and its syringe…
    leading = _LEADING_COUNT.match(parts[0])
    containers = int(leading.group(1)) if leading else 1
    total = 0
    for part in parts:
        # "3 plaquette(s) de 6 comprimé(s) beiges - 5 comprimé(s) marrons - …": the tablets
        # of a part without its own container are in each of the first part's containers.
        more = _LEADING_TABLETS.match(part)
        units = containers * int(more.group(1)) if more else _units_of_part(part)
        if units is None:
            return None
        total += units
    return total


def _units_of_part(plain: str) -> int | None:
    if content := _CONTENT.search(plain):
        leading = _LEADING_COUNT.match(plain)
        containers = int(leading.group(1)) if leading else 1
        return _positive(containers * int(content.group(1)))
    if leading_units := _LEADING_UNITS.match(plain):
        return _positive(int(leading_units.group(1)))
    return None


def _positive(units: int) -> int | None:
    return units if units > 0 else None


def is_contraceptive(substance_names: Iterable[str]) -> bool:
    """Whether a medicine of these substances (CIS_COMPO names) is a contraceptive."""
    named = {word for name in substance_names for word in words(name)}
    if named & PILL_ESTROGENS:
        return bool(named & PROGESTINS)
    if "estradiol" in named:
        return bool(named & ESTRADIOL_PILL_PROGESTINS)
    return bool(named & CONTRACEPTIVE_ALONE)
