"""Real packs of the BDPM snapshot of 2 June 2022, as the catalogue import reads them
(`domain.catalogue.pack_facts` over their CIS_CIP label and CIS_COMPO substances), for the
tests of lines counted in units (`domain.units`)."""

from __future__ import annotations

from domain.catalogue import PackFacts, Substance, pack_facts
from domain.events import Product

LEVOTHYROX_30 = "3400930065556"  # LEVOTHYROX 25 microgrammes, B/30
LEVOTHYROX_90 = "3400930065570"  # LEVOTHYROX 25 microgrammes, B/90
MINIDRIL_1 = "3400931823902"  # MINIDRIL, 1 plaquette de 21 comprimés (one cycle, 28 days)
MINIDRIL_3 = "3400931824091"  # MINIDRIL, 3 plaquettes de 21 comprimés (three cycles)
DOLIPRANE_SYRUP = "3400934615467"  # DOLIPRANE 2,4 %, 1 flacon de 100 ml: no unit count
SKENAN = "3400933323523"  # SKENAN LP 10 mg, 14 gélules (morphine: a narcotic)
EFFENTORA_4 = "3400939220710"  # EFFENTORA 100 µg (fentanyl: a narcotic in fractions), B/4
EFFENTORA_28 = "3400939220888"  # EFFENTORA 100 µg, B/28


def _substance(name: str, link: int = 1) -> Substance:
    return Substance(
        code="0", name=name, dosage="", reference="", nature="SA", element="comprimé", link=link
    )


_LEVOTHYROXINE = (_substance("LÉVOTHYROXINE SODIQUE"),)
_MINIDRIL = (_substance("LÉVONORGESTREL"), _substance("ÉTHINYLESTRADIOL", 2))
_PACKS = {
    LEVOTHYROX_30: ("68588503", "plaquette(s) PVC aluminium de 30 comprimé(s)", _LEVOTHYROXINE),
    LEVOTHYROX_90: ("68588503", "plaquette(s) PVC aluminium de 90 comprimé(s)", _LEVOTHYROXINE),
    MINIDRIL_1: ("64558256", "1 plaquette(s) PVC aluminium de 21 comprimé(s)", _MINIDRIL),
    MINIDRIL_3: ("64558256", "3 plaquette(s) PVC aluminium de 21 comprimé(s)", _MINIDRIL),
    SKENAN: (
        "61227030",
        "plaquette(s) PVC-Aluminium de 14 gélule(s)",
        (_substance("SULFATE DE MORPHINE"),),
    ),
    EFFENTORA_4: (
        "64957305",
        "plaquette(s) thermoformée(s) PVC aluminium polyamide de 4 comprimé(s)",
        (_substance("CITRATE DE FENTANYL"),),
    ),
    EFFENTORA_28: (
        "64957305",
        "plaquette(s) thermoformée(s) PVC aluminium polyamide de 28 comprimé(s)",
        (_substance("CITRATE DE FENTANYL"),),
    ),
    DOLIPRANE_SYRUP: (
        "66477582",
        "1 flacon(s) en verre brun de 100 ml avec seringue(s) pour administration orale",
        (_substance("PARACÉTAMOL"),),
    ),
}


class RealPacks:
    """These packs as a catalogue snapshot (`domain.catalogue.PackLookup`), read when a test
    looks them up (so that mutation testing sees which tests read them)."""

    def facts(self, cip13: str) -> PackFacts | None:
        if cip13 not in _PACKS:
            return None
        cis, label, substances = _PACKS[cip13]
        return pack_facts(
            cip13=cip13, cip7=cip13[5:12], cis=cis, label=cis, pack=label, substances=substances
        )


def pack(code: str) -> Product:
    return Product(system="CIP13", code=code, label=f"pack {code}")
