"""Identifiers: canonical forms, lenient parsing, and what each check key guarantees to catch.

Known-good examples are checked against arithmetic written out independently here, so a bug
shared by ``from_body`` and validation cannot make the tests agree with themselves.
"""

import itertools
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.identifiers import (
    Cip13,
    Finess,
    Ins,
    InvalidIdentifier,
    PrescriptionNumber,
    Rpps,
    _gf32_times_x,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DIGITS = string.digits

Identifier = Ins | Rpps | Finess | Cip13 | PrescriptionNumber

# What is checked holds or not however long an example takes: no deadline to fail on a busy
# machine (or under mutation testing).
no_deadline = settings(deadline=None)


def digit_strings(length: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=DIGITS, min_size=length, max_size=length)


ins_bodies = st.tuples(
    digit_strings(5),
    st.sampled_from(["2A", "2B", "19", "20", "29"]) | digit_strings(2),
    digit_strings(6),
).map("".join)
cip13_bodies = digit_strings(7).map(lambda rest: "34009" + rest)
prescription_numbers = st.integers(0, 2**95 - 1).map(
    lambda bits: PrescriptionNumber.generate(lambda _: bits)
)


def spaced(text: str, separators: str = " ") -> st.SearchStrategy[str]:
    """The text with runs of separators drawn before, between and after its characters."""
    gap = st.text(alphabet=separators, max_size=2)
    gaps = st.lists(gap, min_size=len(text) + 1, max_size=len(text) + 1)
    return gaps.map(
        lambda spaces: spaces[0] + "".join(c + s for c, s in zip(text, spaces[1:], strict=True))
    )


@dataclass(frozen=True)
class Kind:
    """One kind of numeric identifier, for the properties all of them share."""

    name: str
    build: Callable[[str], Identifier]
    parse: Callable[[str], Identifier]
    bodies: st.SearchStrategy[str]
    characters: str  # every character that may appear somewhere in a valid value

    def __str__(self) -> str:
        return self.name


KINDS = [
    Kind("ins", Ins.from_body, Ins.parse, ins_bodies, DIGITS + "AB"),
    Kind("rpps", Rpps.from_body, Rpps.parse, digit_strings(10), DIGITS),
    Kind("finess", Finess.from_body, Finess.parse, digit_strings(8), DIGITS),
    Kind("cip13", Cip13.from_body, Cip13.parse, cip13_bodies, DIGITS),
]
by_kind = pytest.mark.parametrize("kind", KINDS, ids=str)


def substitutions(value: str, characters: str) -> list[str]:
    """Every text that differs from value in exactly one character, drawn from characters."""
    return [
        value[:i] + char + value[i + 1 :]
        for i, original in enumerate(value)
        for char in characters
        if char != original
    ]


def adjacent_transpositions(value: str) -> list[str]:
    """Every text obtained by swapping two adjacent, different characters of value."""
    return [
        value[:i] + value[i + 1] + value[i] + value[i + 2 :]
        for i in range(len(value) - 1)
        if value[i] != value[i + 1]
    ]


def assert_all_invalid(construct: Callable[[str], Identifier], texts: list[str]) -> None:
    for text in texts:
        with pytest.raises(InvalidIdentifier):
            construct(text)


# --- independent reference arithmetic -------------------------------------------------------


def luhn_is_valid(number: str) -> bool:
    """Luhn, the table way: every second digit from the right is replaced by its doubled
    digit sum; the total must be a multiple of 10."""
    doubled = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
    total = sum(doubled[int(d)] if i % 2 else int(d) for i, d in enumerate(reversed(number)))
    return total % 10 == 0


def ean13_is_valid(code: str) -> bool:
    """EAN-13 from the right: the check digit weighs 1, then 3, 1, 3…"""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(reversed(code)))
    return total % 10 == 0


def gf32_multiply(x: int, y: int) -> int:
    """Carry-less multiplication, then reduction modulo x⁵ + x² + 1."""
    product = 0
    for bit in range(5):
        if y >> bit & 1:
            product ^= x << bit
    for degree in (8, 7, 6, 5):
        if product >> degree & 1:
            product ^= 0b100101 << (degree - 5)
    return product


def damm_fold(number: str) -> int:
    """Folding with x∘y = 2·x ⊕ y is evaluating a polynomial at 2 (Horner's rule)."""
    result = 0
    for symbol in number:
        result = gf32_multiply(2, result) ^ CROCKFORD.index(symbol)
    return result


# --- INS ------------------------------------------------------------------------------------


def test_a_published_nir_is_a_valid_ins() -> None:
    assert 97 - 1_841_276_451_089 % 97 == 46
    ins = Ins.parse("1 84 12 76 451 089 46")
    assert ins == Ins("184127645108946") == Ins.from_body("1841276451089")
    assert str(ins) == "184127645108946"


def test_an_ins_copied_with_french_non_breaking_spaces_parses() -> None:
    assert Ins.parse("\u00a01\u00a084 12\u202f76 451 089 46\n") == Ins("184127645108946")


def test_a_corsican_nir_from_2a_computes_its_key_as_department_19() -> None:
    key = 97 - 2_690_519_004_012 % 97
    ins = Ins.from_body("269052A004012")
    assert ins.value == f"269052A004012{key:02d}"
    assert Ins.parse(str(ins)) == ins


def test_a_corsican_nir_from_2b_computes_its_key_as_department_18() -> None:
    key = 97 - 2_690_518_004_012 % 97
    ins = Ins.from_body("269052B004012")
    assert ins.value == f"269052B004012{key:02d}"
    assert Ins.parse(str(ins)) == ins


def test_a_corsican_department_typed_in_lower_case_parses() -> None:
    ins = Ins.from_body("269052A004012")
    assert Ins.parse(ins.value.lower()) == ins
    assert Ins.parse("2 69 05 2b 004 012 55") == Ins("269052B00401255")


def test_the_canonical_ins_is_upper_case() -> None:
    with pytest.raises(InvalidIdentifier, match="department"):
        Ins("269052a00401228")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("184127645108947", "INS key does not match"),
        ("18412764510894", "INS must be 15 characters, got 14"),
        ("1841276451089460", "INS must be 15 characters, got 16"),
        ("1841X7645108946", "INS character 5 must be a digit, got 'X'"),
        ("184122C45108946", "INS characters 6-7 \\(department\\) must be digits, 2A or 2B"),
        ("184123A45108946", "INS characters 6-7 \\(department\\) must be digits, 2A or 2B"),
        ("2A4127645108946", "INS character 2 must be a digit, got 'A'"),
        ("1841276451089A6", "INS character 14 must be a digit, got 'A'"),
        ("", "INS must be 15 characters, got 0"),
    ],
)
def test_an_invalid_ins_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=f"^{reason}$"):
        Ins.parse(text)


@no_deadline
@given(ins_bodies)
def test_any_swap_of_two_adjacent_characters_of_an_ins_is_detected(body: str) -> None:
    """Mod 97 also catches every adjacent transposition: it changes the number by a
    nonzero multiple of 9·10ᵏ, which 97 (prime) never divides."""
    assert_all_invalid(Ins, adjacent_transpositions(Ins.from_body(body).value))


# --- RPPS, FINESS, CIP13 --------------------------------------------------------------------


def test_a_known_rpps_is_valid() -> None:
    assert luhn_is_valid("10001234565")
    assert Rpps.parse(" 1 00 01 23 45 65 ") == Rpps("10001234565") == Rpps.from_body("1000123456")


def test_a_known_finess_is_valid() -> None:
    assert luhn_is_valid("750712184")
    assert Finess.parse("75 071 218 4") == Finess("750712184") == Finess.from_body("75071218")


def test_a_known_cip13_is_valid() -> None:
    assert ean13_is_valid("3400935955838")
    assert Cip13.parse("3 400 935 955 838") == Cip13("3400935955838")
    assert Cip13.from_body("340093595583") == Cip13("3400935955838")


@pytest.mark.parametrize(
    ("construct", "text", "reason"),
    [
        (Rpps.parse, "10001234566", "RPPS check digit does not match"),
        (Rpps.parse, "1000123456", "RPPS must be 11 characters, got 10"),
        (Rpps.parse, "1000I234565", "RPPS character 5 must be a digit, got 'I'"),
        (Rpps.parse, "1000١234565", "RPPS character 5 must be a digit, got '١'"),
        (Finess.parse, "750712185", "FINESS check digit does not match"),
        (Finess.parse, "7507121840", "FINESS must be 9 characters, got 10"),
        (Finess.parse, "75071218A", "FINESS character 9 must be a digit, got 'A'"),
        (Cip13.parse, "3400935955839", "CIP13 check digit does not match"),
        (Cip13.parse, "340093595583", "CIP13 must be 13 characters, got 12"),
        (Cip13.parse, "34009359558X8", "CIP13 character 12 must be a digit, got 'X'"),
        (Cip13.parse, "5000159407236", "CIP13 must start with 34009"),
        (
            Cip13.parse,
            "3400891479287",
            "CIP13 must start with 34009 \\(codes starting 34008 are UCD13",
        ),
        (Cip13.from_body, "500015940723", "CIP13 body must start with 34009"),
        (Cip13.from_body, "34009359558", "CIP13 body must be 12 characters, got 11"),
        (Cip13.from_body, "34009359558X", "CIP13 body character 12 must be a digit, got 'X'"),
        (Ins.from_body, "184127645108", "INS body must be 13 characters, got 12"),
        (Rpps.from_body, "100012345", "RPPS body must be 10 characters, got 9"),
        (Finess.from_body, "7507121A", "FINESS body character 8 must be a digit, got 'A'"),
        (Ins.from_body, "26905 2A00401", "INS body characters 6-7 \\(department\\) must be"),
    ],
)
def test_an_invalid_number_is_refused_with_the_reason(
    construct: Callable[[str], Identifier], text: str, reason: str
) -> None:
    with pytest.raises(InvalidIdentifier, match=f"^{reason}"):
        construct(text)


def test_a_non_3400_ean_with_a_correct_check_digit_is_not_a_cip13() -> None:
    assert ean13_is_valid("5000159407236")
    with pytest.raises(InvalidIdentifier, match="start with 3400"):
        Cip13("5000159407236")


@no_deadline
@given(digit_strings(10))
def test_every_rpps_built_from_a_body_passes_luhn(body: str) -> None:
    assert luhn_is_valid(Rpps.from_body(body).value)


@no_deadline
@given(digit_strings(8))
def test_every_finess_built_from_a_body_passes_luhn(body: str) -> None:
    assert luhn_is_valid(Finess.from_body(body).value)


@no_deadline
@given(cip13_bodies)
def test_every_cip13_built_from_a_body_passes_ean13(body: str) -> None:
    assert ean13_is_valid(Cip13.from_body(body).value)


@no_deadline
@given(ins_bodies)
def test_every_ins_built_from_a_body_carries_the_mod_97_key(body: str) -> None:
    number = int(body.replace("2A", "19").replace("2B", "18"))
    assert Ins.from_body(body).value == f"{body}{97 - number % 97:02d}"


# --- properties shared by the numeric identifiers -------------------------------------------


@by_kind
@no_deadline
@given(data=st.data())
def test_an_identifier_built_from_its_body_round_trips(kind: Kind, data: st.DataObject) -> None:
    identifier = kind.build(data.draw(kind.bodies))
    assert kind.parse(str(identifier)) == identifier
    assert type(identifier)(identifier.value) == identifier


@by_kind
@no_deadline
@given(data=st.data())
def test_an_identifier_typed_with_spaces_anywhere_parses(kind: Kind, data: st.DataObject) -> None:
    identifier = kind.build(data.draw(kind.bodies))
    assert kind.parse(data.draw(spaced(str(identifier)))) == identifier


@by_kind
@no_deadline
@given(data=st.data())
def test_a_mistyped_character_in_an_identifier_is_detected(kind: Kind, data: st.DataObject) -> None:
    """Luhn, EAN-13 (weights 1 and 3, both prime to 10) and mod 97 all catch any single
    wrong digit, the check digit included."""
    identifier = kind.build(data.draw(kind.bodies))
    assert_all_invalid(kind.parse, substitutions(identifier.value, kind.characters))


# --- prescription number --------------------------------------------------------------------


def test_hand_computed_prescription_numbers_are_valid() -> None:
    # Check symbol c = 2·interim in GF(32). "…1": interim 1, c = 2.
    # "…10": interim 2·1 = 2, c = 4. "…Z": interim 31, c = 2·31 = 62 ⊕ 0b100101 = 27 = "V".
    for number in ("0" * 20, "0" * 18 + "12", "0" * 17 + "104", "0" * 18 + "ZV"):
        assert damm_fold(number) == 0
        assert PrescriptionNumber(number).value == number


def test_the_check_symbol_multiplies_by_x_in_gf32_as_written_out_here() -> None:
    # The Damm table is built from this at import; here it is compared with the arithmetic
    # above for every element, the reduction by x⁵ = x² + 1 included (16·2 = 32 → 0b00101).
    assert [_gf32_times_x(value) for value in range(32)] == [
        gf32_multiply(2, value) for value in range(32)
    ]
    assert _gf32_times_x(0b10000) == 0b00101


@no_deadline
@given(prescription_numbers)
def test_a_generated_prescription_number_folds_to_zero_in_gf32(
    number: PrescriptionNumber,
) -> None:
    assert len(number.value) == 20
    assert set(number.value) <= set(CROCKFORD)
    assert damm_fold(number.value) == 0


def test_a_prescription_number_draws_95_random_bits_into_19_symbols() -> None:
    requested: list[int] = []

    def all_ones(bits: int) -> int:
        requested.append(bits)
        return (1 << bits) - 1

    number = PrescriptionNumber.generate(all_ones)
    assert requested == [95]
    assert number.value.startswith("Z" * 19)
    assert PrescriptionNumber.generate(lambda _: 1).value == "0" * 18 + "12"
    assert PrescriptionNumber.generate(lambda _: 1 << 90).value[:2] == "10"


def test_a_prescription_number_is_generated_deterministically_from_its_random_bits() -> None:
    first = PrescriptionNumber.generate(random.Random(2024).getrandbits)
    second = PrescriptionNumber.generate(random.Random(2024).getrandbits)
    assert first == second


def test_two_new_prescription_numbers_differ() -> None:
    first, second = PrescriptionNumber.generate(), PrescriptionNumber.generate()
    assert first != second
    assert len(first.value) == 20


@no_deadline
@given(prescription_numbers)
def test_a_displayed_prescription_number_reads_back(number: PrescriptionNumber) -> None:
    shown = number.display()
    assert len(shown) == 23
    assert shown.split("-") == [number.value[i : i + 5] for i in range(0, 20, 5)]
    assert PrescriptionNumber.parse(shown) == number
    assert PrescriptionNumber.parse(str(number)) == number


@no_deadline
@given(prescription_numbers, st.data())
def test_a_prescription_number_typed_in_lower_case_with_spaces_and_dashes_parses(
    number: PrescriptionNumber, data: st.DataObject
) -> None:
    typed = data.draw(spaced(number.display().lower(), separators=" -"))
    assert PrescriptionNumber.parse(typed) == number


@pytest.mark.parametrize(
    "typed", ["OOOOO-OOOOO-ooooo-ooOI2", "00000 00000 00000 00ol2", "oooooooooooooooooOL2"]
)
def test_crockford_look_alikes_are_read_as_the_digits_they_resemble(typed: str) -> None:
    assert PrescriptionNumber.parse(typed) == PrescriptionNumber("0" * 18 + "12")


def test_crockford_look_alikes_are_only_accepted_by_parse() -> None:
    with pytest.raises(InvalidIdentifier, match="character 19 must be one of"):
        PrescriptionNumber("0" * 18 + "I2")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("00000-00000-00000-00013", "prescription number check character does not match"),
        ("00000-00000-00000-0012", "prescription number must be 20 characters, got 19"),
        ("00000-00000-00000-000012", "prescription number must be 20 characters, got 21"),
        (
            "00000-U0000-00000-00012",
            "prescription number character 6 must be one of "
            "0123456789ABCDEFGHJKMNPQRSTVWXYZ, got 'U'",
        ),
        (
            "00000-u0000-00000-00012",
            "prescription number character 6 must be one of "
            "0123456789ABCDEFGHJKMNPQRSTVWXYZ, got 'U'",
        ),
        ("00000_00000_00000_00012", "prescription number must be 20 characters, got 23"),
    ],
)
def test_an_invalid_prescription_number_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=f"^{reason}$"):
        PrescriptionNumber.parse(text)


@no_deadline
@given(prescription_numbers)
def test_a_refused_prescription_number_is_not_echoed_in_the_reason(
    number: PrescriptionNumber,
) -> None:
    wrong = number.value[:-1] + CROCKFORD[(CROCKFORD.index(number.value[-1]) + 1) % 32]
    with pytest.raises(InvalidIdentifier) as refused:
        PrescriptionNumber.parse(wrong)
    assert wrong not in str(refused.value)
    assert number.value[:19] not in str(refused.value)


@no_deadline
@given(prescription_numbers)
def test_a_mistyped_character_in_a_prescription_number_is_detected(
    number: PrescriptionNumber,
) -> None:
    """All 20 positions, check symbol included, each replaced by each of the 31 other symbols."""
    typos = substitutions(number.value, CROCKFORD)
    assert len(typos) == 20 * 31
    assert_all_invalid(PrescriptionNumber, typos)


@no_deadline
@given(prescription_numbers)
def test_two_swapped_adjacent_characters_in_a_prescription_number_are_detected(
    number: PrescriptionNumber,
) -> None:
    assert_all_invalid(PrescriptionNumber, adjacent_transpositions(number.value))


def test_any_two_different_symbols_swapped_anywhere_in_a_prescription_number_are_detected() -> None:
    """Random numbers rarely hold two given symbols side by side, so build, for every pair, a
    number alternating them: each position then holds the pair, the check symbol included."""
    for first, second in itertools.permutations(CROCKFORD, 2):
        body = (first + second) * 9 + first
        number = body + CROCKFORD[gf32_multiply(2, damm_fold(body))]
        assert PrescriptionNumber(number).value == number
        assert_all_invalid(PrescriptionNumber, adjacent_transpositions(number))


def test_an_ins_states_the_month_of_birth_in_the_latest_century_not_after_the_day() -> None:
    assert Ins.from_body("2220575123456").born_in(date(2026, 11, 23)) == date(2022, 5, 1)
    assert Ins.from_body("1261275123456").born_in(date(2026, 11, 23)) == date(1926, 12, 1)
    assert Ins.from_body("1261175123456").born_in(date(2026, 11, 23)) == date(2026, 11, 1)
    assert Ins.from_body("1261175123456").born_in(date(2026, 11, 1)) == date(2026, 11, 1)
    assert Ins.from_body("1260175123456").born_in(date(2026, 11, 23)) == date(2026, 1, 1)
    assert Ins.from_body("1840075123456").born_in(date(2026, 11, 23)) is None
    assert Ins.from_body("1841375123456").born_in(date(2026, 11, 23)) is None
