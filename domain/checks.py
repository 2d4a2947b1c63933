"""The checks every use case shares, each written once.

A decision refuses with a `DomainError`; reconciliation, which never refuses, reads the same
checks as a problem text (None: no problem). So each check that both need is a function
returning the problem, and the decisions raise it where they call it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date

import msgspec

from domain.errors import DomainError, invalid
from domain.events import ProductSystem
from domain.identifiers import Cip13, InvalidIdentifier, PrescriptionNumber
from domain.prescription import Prescription

MAX_LINES = 50
MAX_PACKS_PER_LINE = 999

CANCELLED = "this prescription was cancelled"
ALREADY_CANCELLED = "this prescription was already cancelled"


# --- the prescription's state ----------------------------------------------------------------


def check_not_cancelled(state: Prescription, detail: str = CANCELLED) -> None:
    """A cancelled prescription is neither dispensed, adapted, sent nor cancelled again."""
    if state.cancelled:
        raise DomainError("prescription_cancelled", detail)


def check_dispensable(state: Prescription, today: date) -> None:
    """Something is left to give today: not cancelled, not all given, not expired."""
    check_not_cancelled(state)
    if state.fully_dispensed:
        raise DomainError("already_dispensed", "everything on this prescription was dispensed")
    if state.is_expired(today):
        raise DomainError(
            "prescription_expired",
            f"this prescription could be dispensed until {state.expires_on()}",
        )


# --- products --------------------------------------------------------------------------------


class ProductProblem(msgspec.Struct, frozen=True):
    """What is wrong with a product: in a refusal's words (`detail`, about the product's
    `part`: "label", "code" or None for the product itself), and in a reconciliation's
    (`brief`)."""

    part: str | None
    detail: str
    brief: str


def product_problem(system: ProductSystem, code: str | None, label: str) -> ProductProblem | None:
    """A pack (CIP13 with its key), a unit (UCD7/UCD13) or a substance name (DCI, no code);
    every product has a label."""
    if not label.strip():
        return ProductProblem("label", "a product needs a label", "a product needs a label")
    if system == "DCI":
        if code is None:
            return None
        return ProductProblem(
            None,
            "a DCI product is a substance name, written in label, with no code",
            "a DCI product has no code",
        )
    if code is None:
        needs = f"a {system} product needs a code"
        return ProductProblem("code", needs, needs)
    return _code_problem(system, code)


def _code_problem(system: ProductSystem, code: str) -> ProductProblem | None:
    """What is wrong with a pack's or a unit's code."""
    if system == "CIP13":
        problem = cip13_problem(code)
        return None if problem is None else ProductProblem("code", problem, problem)
    if is_ucd(code):
        return None
    return ProductProblem(
        "code", "a UCD code has 7 digits (UCD7) or 13 digits (UCD13)", "bad UCD code"
    )


def check_product(system: ProductSystem, code: str | None, label: str, field: str) -> None:
    """`product_problem` as a refusal of the product at `field`."""
    problem = product_problem(system, code, label)
    if problem is not None:
        raise invalid(problem.detail, field if problem.part is None else f"{field}.{problem.part}")


def cip13_problem(code: str) -> str | None:
    """Why the code is no CIP13 (length, digits, 3400, check digit), or None."""
    try:
        Cip13(code)
    except InvalidIdentifier as error:
        return str(error)
    return None


def is_ucd(code: str) -> bool:
    return code.isascii() and code.isdigit() and len(code) in (7, 13)


# --- a request's lines -----------------------------------------------------------------------


def check_range(value: int, low: int, high: int, field: str) -> None:
    if not low <= value <= high:
        raise invalid(f"must be between {low} and {high}, got {value}", field)


def check_line_count(lines: tuple[object, ...], field: str) -> None:
    if not lines:
        raise invalid("at least one line is needed", field)
    if len(lines) > MAX_LINES:
        raise invalid(f"at most {MAX_LINES} lines", field)


def check_unique_line_numbers(line_numbers: Iterable[int]) -> None:
    repeated = [no for no, count in Counter(line_numbers).items() if count > 1]
    if repeated:
        raise invalid(f"line_no {repeated[0]} appears twice; send one entry per line", "lines")


# --- the prescription number -----------------------------------------------------------------


def canonical_number(text: str) -> str | None:
    """The prescription number as stored, or None when the text cannot be one.

    Only the form is normalised here (`PrescriptionNumber.form`: any case, spaces, dashes, the
    look-alikes I, L and O): a number with a wrong check character normalises to a text no
    prescription has, so it is looked up and not found (`unknown_prescription`)."""
    if len(text) == _NUMBER_LENGTH:  # the usual case: as stored, maybe in lower case
        upper = text.upper()
        if "I" not in upper and "L" not in upper and "O" not in upper:
            return upper
    form = PrescriptionNumber.form(text)
    return form if len(form) == _NUMBER_LENGTH else None


_NUMBER_LENGTH = 20
