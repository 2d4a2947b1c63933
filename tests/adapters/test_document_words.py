"""How the ordonnance writes dates and numbers in French: a secure prescription spells its
quantities, the numbers of its dosages and its durations in words as well as figures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from adapters.document.french import (
    days,
    in_words,
    long_date,
    packs,
    short_date,
    units,
    with_words,
)


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "un"), (7, "sept"), (21, "vingt et un"), (28, "vingt-huit"), (80, "quatre-vingts")],
)
def test_numbers_in_words(number: int, words: str) -> None:
    assert in_words(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "une"), (21, "vingt et une"), (81, "quatre-vingt-une"), (101, "cent une"), (11, "onze")],
)
def test_a_feminine_noun_counts_une(number: int, words: str) -> None:
    assert in_words(number, feminine=True) == words


def test_a_decimal_is_read_with_the_french_comma() -> None:
    assert in_words(Decimal("0.5")) == "zéro virgule cinq"


def test_every_number_of_a_dosage_is_followed_by_its_words() -> None:
    assert with_words("1 comprimé 3 fois par jour, 0,5 ml le soir, 2.5 ml") == (
        "1 (un) comprimé 3 (trois) fois par jour, 0,5 (zéro virgule cinq) ml le soir, "
        "2.5 (deux virgule cinq) ml"
    )


def test_a_dosage_without_numbers_is_unchanged() -> None:
    assert with_words("une gélule le matin") == "une gélule le matin"


def test_durations_in_figures_or_in_words_too() -> None:
    assert days(28, spelt=True) == "28 jours (vingt-huit jours)"
    assert days(1, spelt=True) == "1 jour (un jour)"
    assert days(28, spelt=False) == "28 jours"
    assert days(1, spelt=False) == "1 jour"


def test_packs_in_figures_or_in_words_too() -> None:
    assert packs(4, spelt=True) == "4 (quatre) boîtes"
    assert packs(1, spelt=True) == "1 (une) boîte"
    assert packs(0, spelt=False) == "0 boîte"
    assert packs(2, spelt=False) == "2 boîtes"


def test_units_left_of_a_line_counted_in_units() -> None:
    assert [units(60), units(1), units(0)] == ["60 unités", "1 unité", "0 unité"]


def test_dates_as_french_writes_them() -> None:
    assert long_date(date(2026, 12, 1)) == "1er décembre 2026"
    assert long_date(date(2027, 2, 14)) == "14 février 2027"
    assert short_date(date(2027, 8, 3)) == "03/08/2027"
