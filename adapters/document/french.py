"""How the ordonnance writes dates and numbers in French.

A secure prescription (ordonnance sécurisée) printed on plain paper writes its quantities,
the numbers of its dosages and its durations in words as well as in figures, so that a
figure cannot be altered unnoticed: "28 jours (vingt-huit jours)".
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from num2words import num2words

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
# A number as a prescriber types it in a dosage: "1", "12", "0,5" or "2.5".
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def long_date(day: date) -> str:
    """'1er décembre 2026': French writes the first of the month as an ordinal."""
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {MONTHS[day.month - 1]} {day.year}"


def short_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def in_words(number: int | Decimal, *, feminine: bool = False) -> str:
    """28 -> 'vingt-huit'; 0.5 -> 'zéro virgule cinq' (the French decimal comma); a feminine
    noun counts 'une', 'vingt et une' (une boîte)."""
    words: str = num2words(number, lang="fr")
    if feminine and (words == "un" or words.endswith((" un", "-un"))):
        return words + "e"
    return words


def with_words(text: str) -> str:
    """Every number of a free text followed by its words: '1 comprimé 3 fois par jour' ->
    '1 (un) comprimé 3 (trois) fois par jour'."""
    return NUMBER.sub(lambda match: f"{match[0]} ({in_words(_number(match[0]))})", text)


def days(count: int, *, spelt: bool) -> str:
    """'28 jours', or '28 jours (vingt-huit jours)' on a secure prescription."""
    figures = f"{count} {_plural(count, 'jour', 'jours')}"
    if not spelt:
        return figures
    return f"{figures} ({in_words(count)} {_plural(count, 'jour', 'jours')})"


def packs(count: int, *, spelt: bool) -> str:
    """'3 boîtes', or '3 (trois) boîtes' on a secure prescription."""
    noun = _plural(count, "boîte", "boîtes")
    return f"{count} ({in_words(count, feminine=True)}) {noun}" if spelt else f"{count} {noun}"


def units(count: int) -> str:
    """'60 unités': tablets, capsules, sachets… of a line counted in units (`domain.units`)."""
    return f"{count} {_plural(count, 'unité', 'unités')}"


def _number(figures: str) -> int | Decimal:
    if figures.isdigit():
        return int(figures)
    return Decimal(figures.replace(",", "."))


def _plural(count: int, one: str, many: str) -> str:
    """French counts 0 and 1 in the singular."""
    return one if count <= 1 else many
