"""The medicines catalogue at the counter (`domain.decisions.dispensing` with
`domain.catalogue.Catalogue`): which substitutes may be handed over, and lines written
before the catalogue dispensed as it knows their packs."""

from __future__ import annotations

import pytest

from domain.catalogue import Catalogue, catalogued, catalogued_line
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.errors import DomainError
from domain.events import Product
from tests.domain.builders import PHARMACIST, PHARMACY_A, moment
from tests.domain.counter import Counter, at, days, line, prescribed
from tests.domain.decisions.test_issuing_with_catalogue import (
    ARROW_CODE,
    CLAMOXYL_CODE,
    SKENAN_CODE,
    TOPALGIC_CODE,
    UNKNOWN_CODE,
    cip13,
    sample,
)

# --- dispensing: substitutes ------------------------------------------------------------------


def handing(product: Product | None, *, strict: bool = False, prescribed_as: Product) -> object:
    issued = prescribed(line(2, 6, product=prescribed_as))
    state = Counter(issued).state(issued.prescription_id)
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=product),),
    )
    return dispense(state, command, "d1", moment(), catalogue=Catalogue(sample(), strict=strict))


def handing_refused(
    product: Product, *, strict: bool = False, prescribed_as: Product
) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        handing(product, strict=strict, prescribed_as=prescribed_as)
    return refused.value.code, refused.value.field, refused.value.detail


def test_a_generic_of_the_group_is_a_substitute_and_a_narcotic_is_not() -> None:
    clamoxyl = cip13(CLAMOXYL_CODE, "Clamoxyl 500 mg")

    assert handing(cip13(ARROW_CODE), prescribed_as=clamoxyl) is not None
    assert handing(clamoxyl, prescribed_as=clamoxyl) is not None
    assert handing(None, prescribed_as=clamoxyl) is not None
    assert handing_refused(cip13(SKENAN_CODE, "Skenan"), prescribed_as=clamoxyl) == (
        "substitution_not_allowed",
        "lines[0].product",
        "medicine 61227030 (3400933323523) may not be given for Clamoxyl 500 mg: neither the "
        "same medicine, nor its generic group, nor its substance, nor a biosimilar of its "
        "substitutable list",
    )


def test_a_substance_line_takes_packs_of_that_substance_alone() -> None:
    dci = Product(system="DCI", label="amoxicilline 500 mg")

    assert handing(cip13(ARROW_CODE), prescribed_as=dci) is not None
    assert handing_refused(cip13(SKENAN_CODE), prescribed_as=dci)[0] == "substitution_not_allowed"


def test_a_pack_the_catalogue_does_not_know_is_taken_at_the_pharmacist_s_word_unless_strict() -> (
    None
):
    clamoxyl = cip13(CLAMOXYL_CODE)
    unknown = cip13(UNKNOWN_CODE)

    assert handing(unknown, prescribed_as=clamoxyl) is not None
    assert handing(cip13(ARROW_CODE), prescribed_as=unknown) is not None
    assert handing_refused(unknown, prescribed_as=clamoxyl, strict=True) == (
        "unknown_product",
        "lines[0].product.code",
        f"the medicines catalogue knows no pack {UNKNOWN_CODE}",
    )
    # A prescribed pack unknown to a strict catalogue was written before it: not refused again.
    assert handing(cip13(ARROW_CODE), prescribed_as=unknown, strict=True) is not None


# --- lines written before the catalogue -------------------------------------------------------


def test_a_line_is_dispensed_as_the_catalogue_knows_its_pack() -> None:
    skenan_as_not_narcotic = line(4, 28, product=cip13(SKENAN_CODE))
    patch = line(4, 28, product=cip13("3400934238307"), narcotic=True, fraction_days=7)
    unknown = line(4, 28, product=cip13(UNKNOWN_CODE))
    dci = line(4, 28, product=Product(system="DCI", label="morphine"))
    tramadol = line(3, 84, product=cip13(TOPALGIC_CODE))

    assert catalogued_line(skenan_as_not_narcotic, sample()).narcotic is True
    assert catalogued_line(skenan_as_not_narcotic, sample()).fraction_days is None
    assert catalogued_line(patch, sample()).fraction_days == 7
    assert (
        catalogued_line(line(4, 28, product=cip13("3400934238307")), sample()).fraction_days == 14
    )
    assert (
        catalogued_line(line(4, 14, product=cip13("3400934238307")), sample()).fraction_days is None
    )
    assert catalogued_line(unknown, sample()) == unknown
    assert catalogued_line(dci, sample()) == dci
    assert catalogued_line(skenan_as_not_narcotic, None) == skenan_as_not_narcotic
    assert (
        catalogued_line(tramadol, sample()).assimilated,
        catalogued_line(tramadol, sample()).narcotic,
    ) == (True, False)


def test_the_whole_prescription_is_read_as_the_catalogue_knows_it() -> None:
    issued = prescribed(
        line(4, 28, product=cip13(SKENAN_CODE)), line(2, 6, product=cip13(CLAMOXYL_CODE))
    )
    state = Counter(issued).state(issued.prescription_id)

    seen = catalogued(state, sample())

    assert [line_.prescribed.narcotic for line_ in seen.lines] == [True, False]
    assert catalogued(state, None) is state
    assert seen.prescription_id == state.prescription_id and seen.version == state.version


def test_a_morphine_written_as_not_narcotic_is_dispensed_by_the_narcotic_rules() -> None:
    issued = prescribed(line(4, 28, product=cip13(SKENAN_CODE)))
    counter = Counter(issued)
    state = catalogued(counter.state(issued.prescription_id), sample())
    counter.states[issued.prescription_id] = state

    late = counter.allowed_on(issued.prescription_id, at(days(10)))

    assert (late.max_quantity, late.reason) == (2, "quantity_exceeds_allowed_now")
