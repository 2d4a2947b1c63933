"""Identifiers of the ordonnance numérique, validated where they enter the system.

Each identifier is a frozen value object whose construction *is* its validation: holding an
``Ins`` means holding a well-formed INS with a matching key. The constructor accepts only the
canonical form we store and emit; ``parse`` is the lenient door for what people type or paste.

Error messages say what is wrong (length, character, check key) but never repeat the whole input:
an INS is health data and a prescription number is what opens a prescription, so neither may end
up in a log line or an error response.
"""

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Self

_DIGITS = frozenset(string.digits)
_TO_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


class InvalidIdentifier(ValueError):  # noqa: N818 - the name other modules import
    """Raised when a text is not a valid identifier.

    ``str(exc)`` is a human-readable reason, e.g. "RPPS check digit does not match".
    """


def _compact(text: str) -> str:
    """Drop all whitespace: numbers are printed and pasted in groups ("1 84 12 76 451 089 46"),
    often with the non-breaking spaces of French typography."""
    return "".join(text.split())


def _check_length(name: str, text: str, length: int) -> None:
    if len(text) != length:
        raise InvalidIdentifier(f"{name} must be {length} characters, got {len(text)}")


def _check_digits(name: str, text: str) -> None:
    """ASCII digits only: ``str.isdigit`` would let through "²" or Arabic-Indic digits."""
    for position, char in enumerate(text, start=1):
        if char not in _DIGITS:
            raise InvalidIdentifier(f"{name} character {position} must be a digit, got {char!r}")


def _check_digit_string(name: str, text: str, length: int) -> None:
    _check_length(name, text, length)
    _check_digits(name, text)


def _check_key(name: str, key: str, expected: str) -> None:
    if key != expected:
        raise InvalidIdentifier(f"{name} does not match")


# --- INS (identifiant national de santé): the patient's NIR and its mod-97 key ---------------

_NIR_BODY_LENGTH = 13
_CORSICA = {"2A": "19", "2B": "18"}


def _nir_digits(name: str, text: str) -> str:
    """The NIR as the digits its key is computed on: Corsica's departments 2A and 2B (characters
    6-7) count as 19 and 18, the numbers they had before the department was split in 1976."""
    department = text[5:7]
    if department not in _CORSICA and not _DIGITS.issuperset(department):
        raise InvalidIdentifier(f"{name} characters 6-7 (department) must be digits, 2A or 2B")
    digits = text[:5] + _CORSICA.get(department, department) + text[7:]
    _check_digits(name, digits)
    return digits


def _nir_key(body_digits: str) -> str:
    """Clé NIR: 97 - (NIR mod 97), written on two digits (01..97)."""
    return f"{97 - int(body_digits) % 97:02d}"


@dataclass(frozen=True, slots=True)
class Ins:
    """INS matricule, i.e. the patient's NIR (numéro de sécurité sociale): 13 characters + key.

    Canonical form: 15 characters, no spaces, Corsica's department in upper case (2A/2B).
    """

    value: str

    def __post_init__(self) -> None:
        _check_length("INS", self.value, _NIR_BODY_LENGTH + 2)
        digits = _nir_digits("INS", self.value)
        _check_key("INS key", digits[_NIR_BODY_LENGTH:], _nir_key(digits[:_NIR_BODY_LENGTH]))

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept the NIR as written on a carte Vitale: grouped with spaces, "2a" in any case."""
        return cls(_compact(text).translate(_TO_UPPER))

    @classmethod
    def from_body(cls, body13: str) -> Self:
        """Append the key to a 13-character body (demo data and tests)."""
        _check_length("INS body", body13, _NIR_BODY_LENGTH)
        return cls(body13 + _nir_key(_nir_digits("INS body", body13)))

    def born_in(self, on: date) -> date | None:
        """The first day of the month of birth the NIR states (characters 2-3 the year, 4-5
        the month), of the latest century not after `on`; None when the month is not stated
        (anything but 01-12: unknown, or a number given to a person born abroad)."""
        month = int(self.value[3:5])
        if not 1 <= month <= _MONTHS_PER_YEAR:
            return None
        latest = date(on.year - on.year % 100 + int(self.value[1:3]), month, 1)
        return latest if latest <= on else latest.replace(year=latest.year - 100)

    def __str__(self) -> str:
        return self.value


_MONTHS_PER_YEAR = 12


# --- RPPS and FINESS: digits closed by a Luhn check digit ------------------------------------


def _luhn_check_digit(body: str) -> str:
    """Luhn (formule de Luhn): double every second digit starting from the one next to the
    check digit, add the digits of the products, and complete the sum to a multiple of 10."""
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (1 if index % 2 else 2)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def _check_luhn_number(name: str, value: str, length: int) -> None:
    _check_digit_string(name, value, length)
    _check_key(f"{name} check digit", value[-1], _luhn_check_digit(value[:-1]))


def _luhn_body(name: str, body: str, length: int) -> str:
    _check_digit_string(f"{name} body", body, length)
    return body + _luhn_check_digit(body)


_RPPS_LENGTH = 11


@dataclass(frozen=True, slots=True)
class Rpps:
    """RPPS number of a health professional (prescriber, pharmacist): 11 digits, Luhn."""

    value: str

    def __post_init__(self) -> None:
        _check_luhn_number("RPPS", self.value, _RPPS_LENGTH)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept the number with surrounding or inner spaces."""
        return cls(_compact(text))

    @classmethod
    def from_body(cls, body10: str) -> Self:
        """Append the Luhn digit to a 10-digit body (demo data and tests)."""
        return cls(_luhn_body("RPPS", body10, _RPPS_LENGTH - 1))

    def __str__(self) -> str:
        return self.value


_FINESS_LENGTH = 9


@dataclass(frozen=True, slots=True)
class Finess:
    """FINESS number of an establishment (pharmacie d'officine, hospital): 9 digits, Luhn."""

    value: str

    def __post_init__(self) -> None:
        _check_luhn_number("FINESS", self.value, _FINESS_LENGTH)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept the number with surrounding or inner spaces."""
        return cls(_compact(text))

    @classmethod
    def from_body(cls, body8: str) -> Self:
        """Append the Luhn digit to an 8-digit body (demo data and tests)."""
        return cls(_luhn_body("FINESS", body8, _FINESS_LENGTH - 1))

    def __str__(self) -> str:
        return self.value


# --- CIP13: a medicine pack's EAN-13 in France's 34009 range --------------------------------

_CIP13_LENGTH = 13
_CIP13_PREFIX = "34009"  # 34008… codes are UCD13 (a dispensing unit), never a pack


def _ean13_check_digit(body12: str) -> str:
    """EAN-13: weights 1, 3, 1, 3… from the left; the check digit completes the weighted sum
    to a multiple of 10."""
    total = sum(int(char) * (3 if index % 2 else 1) for index, char in enumerate(body12))
    return str(-total % 10)


def _check_cip13_prefix(name: str, text: str) -> None:
    if not text.startswith(_CIP13_PREFIX):
        raise InvalidIdentifier(
            f"{name} must start with {_CIP13_PREFIX} (codes starting 34008 are UCD13, not packs)"
        )


@dataclass(frozen=True, slots=True)
class Cip13:
    """CIP13 code of a medicine pack (code CIP à 13 chiffres): 13 digits starting with 34009."""

    value: str

    def __post_init__(self) -> None:
        _check_digit_string("CIP13", self.value, _CIP13_LENGTH)
        _check_cip13_prefix("CIP13", self.value)
        _check_key("CIP13 check digit", self.value[-1], _ean13_check_digit(self.value[:-1]))

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept the code with surrounding or inner spaces."""
        return cls(_compact(text))

    @classmethod
    def from_body(cls, body12: str) -> Self:
        """Append the EAN-13 digit to a 12-digit body starting with 34009 (demo data and tests)."""
        _check_digit_string("CIP13 body", body12, _CIP13_LENGTH - 1)
        _check_cip13_prefix("CIP13 body", body12)
        return cls(body12 + _ean13_check_digit(body12))

    def __str__(self) -> str:
        return self.value


# --- Prescription number: our design, 95 random bits and a Damm check symbol -----------------

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_SYMBOL_VALUES = {symbol: value for value, symbol in enumerate(_ALPHABET)}
_BITS_PER_SYMBOL = 5
_SYMBOL_MASK = 0b11111
_RANDOM_SYMBOLS = 19
_PRESCRIPTION_NUMBER_LENGTH = _RANDOM_SYMBOLS + 1
_GROUP_LENGTH = 5
# What a person types for the canonical form: lower case, the Crockford look-alikes I and L for
# 1 and O for 0, dashes and the usual spaces (the rest of Unicode's spaces go by `str.split`).
_NUMBER_FORM = str.maketrans(
    {
        **{c: c.upper() for c in string.ascii_lowercase},
        **dict.fromkeys("iIlL", "1"),
        **dict.fromkeys("oO", "0"),
        **dict.fromkeys("- \t\u00a0\u202f", None),
    }
)
_GF32_MODULUS = 0b100101  # x⁵ + x² + 1, primitive
_GF32_OVERFLOW = 0b100000


def _gf32_times_x(value: int) -> int:
    """Multiply by the element x (= 2) of GF(32): shift, and reduce when degree 5 appears."""
    shifted = value << 1
    return shifted ^ _GF32_MODULUS if shifted & _GF32_OVERFLOW else shifted


# Damm's quasigroup x∘y = a·x ⊕ y with a = x (2). As a ∉ {0, 1}, it is totally anti-symmetric:
# a single substitution changes the fold by a nonzero multiple of a power of a, and swapping
# adjacent x ≠ y changes it by (a ⊕ 1)·(x ⊕ y) ≠ 0, so both are always detected.
_DAMM_TABLE = tuple(tuple(_gf32_times_x(x) ^ y for y in range(32)) for x in range(32))


def _damm_interim(symbols: str) -> int:
    interim = 0
    for symbol in symbols:
        interim = _DAMM_TABLE[interim][_SYMBOL_VALUES[symbol]]
    return interim


def _check_symbol(body: str) -> str:
    """The c with interim∘c = 0, i.e. c = a·interim (⊕ is its own inverse)."""
    return _ALPHABET[_DAMM_TABLE[_damm_interim(body)][0]]


def _check_symbols(name: str, text: str) -> None:
    for position, char in enumerate(text, start=1):
        if char not in _SYMBOL_VALUES:
            raise InvalidIdentifier(
                f"{name} character {position} must be one of {_ALPHABET}, got {char!r}"
            )


@dataclass(frozen=True, slots=True)
class PrescriptionNumber:
    """The prescription's number: 19 random Crockford base32 symbols + 1 Damm check symbol.

    Knowing it is what lets a pharmacy open the prescription, so it must be unguessable:
    19 × 5 = 95 random bits. Canonical form: 20 upper-case symbols, no separators.
    """

    value: str

    def __post_init__(self) -> None:
        _check_length("prescription number", self.value, _PRESCRIPTION_NUMBER_LENGTH)
        _check_symbols("prescription number", self.value)
        if _damm_interim(self.value) != 0:
            raise InvalidIdentifier("prescription number check character does not match")

    @classmethod
    def generate(cls, randbits: Callable[[int], int] = secrets.randbits) -> Self:
        """Draw a new number; ``randbits`` is injectable so tests can make it deterministic."""
        bits = randbits(_RANDOM_SYMBOLS * _BITS_PER_SYMBOL)
        body = "".join(
            _ALPHABET[(bits >> (_BITS_PER_SYMBOL * shift)) & _SYMBOL_MASK]
            for shift in reversed(range(_RANDOM_SYMBOLS))
        )
        return cls(body + _check_symbol(body))

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept what a person types or reads out: any case, spaces and dashes, and the
        Crockford look-alikes I and L for 1, O for 0."""
        return cls(cls.form(text))

    @staticmethod
    def form(text: str) -> str:
        """The text in the canonical form, not checked: `parse` without the checks."""
        return _compact(text.translate(_NUMBER_FORM))

    def display(self) -> str:
        """Groups of five for reading aloud and typing: XXXXX-XXXXX-XXXXX-XXXXX."""
        return "-".join(
            self.value[start : start + _GROUP_LENGTH]
            for start in range(0, _PRESCRIPTION_NUMBER_LENGTH, _GROUP_LENGTH)
        )

    def __str__(self) -> str:
        return self.value
