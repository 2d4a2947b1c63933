"""Products reserved to hospital use (contract "restricted products", CIS_CPD's "réservé à
l'usage hospitalier" and "délivrance réservée aux pharmacies à usage intérieur"): given a
catalogue that knows the pack, when a prescription names it, then 422 hospital_use_only naming
the line's product; a pack the catalogue does not know is taken at the prescriber's word."""

from __future__ import annotations

import pytest

from domain.catalogue import Catalogue, hospital_only
from domain.decisions.issuing import IssuePrescription, issue
from domain.errors import DomainError
from tests.domain.builders import NUMBER, PATIENT, PRESCRIBER, moment
from tests.domain.decisions.test_issuing_with_catalogue import (
    CLAMOXYL_CODE,
    UNKNOWN_CODE,
    Packs,
    cip13,
    written,
)
from tests.domain.test_catalogue import pack, substance

VENOFER_CODE = "3400957128340"  # VENOFER 20 mg/mL, 5 flacons: "réservé à l'usage HOSPITALIER"
PUI_CODE = "3400930000014"  # a pack dispensed by hospitals' own pharmacies only


def catalogue() -> Catalogue:
    return Catalogue(
        Packs(
            {
                VENOFER_CODE: pack(
                    VENOFER_CODE,
                    "60080232",
                    substance("FER (COMPLEXE D'HYDROXYDE FERRIQUE ET DE SACCHAROSE)"),
                    conditions=("réservé à l'usage HOSPITALIER", "liste I"),
                ),
                PUI_CODE: pack(
                    PUI_CODE,
                    "60000000",
                    conditions=("délivrance réservée aux pharmacies à usage intérieur",),
                ),
                CLAMOXYL_CODE: pack(
                    CLAMOXYL_CODE, "67707794", conditions=("prescription hospitalière",)
                ),
            }
        )
    )


def prescribing(code: str) -> IssuePrescription:
    return IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=moment().today,
        kind="standard",
        execution_view_consent=True,
        lines=(written(cip13(CLAMOXYL_CODE)), written(cip13(code))),
    )


@pytest.mark.parametrize("code", [VENOFER_CODE, PUI_CODE])
def test_a_product_reserved_to_hospital_use_is_refused_at_prescribing(code: str) -> None:
    with pytest.raises(DomainError) as refusal:
        issue(prescribing(code), NUMBER, moment(), catalogue())

    assert (refusal.value.code, refusal.value.field) == ("hospital_use_only", "lines[1].product")
    assert "reserved to hospital use" in refusal.value.detail


def test_a_hospital_prescription_alone_is_not_hospital_use() -> None:
    event = issue(prescribing(CLAMOXYL_CODE), NUMBER, moment(), catalogue())

    assert [line.product.code for line in event.lines] == [CLAMOXYL_CODE, CLAMOXYL_CODE]


def test_a_pack_the_catalogue_does_not_know_is_taken_at_the_prescriber_s_word() -> None:
    event = issue(prescribing(UNKNOWN_CODE), NUMBER, moment(), catalogue())

    assert event.lines[1].product.code == UNKNOWN_CODE


@pytest.mark.parametrize(
    ("texts", "reserved"),
    [
        (("réservé à l'usage HOSPITALIER",), True),
        (("Réservé à l’usage  hospitalier",), True),
        (("délivrance réservée aux pharmacies à usage intérieur",), True),
        (("prescription hospitalière", "prescription initiale hospitalière annuelle"), False),
        (("première administration en milieu hospitalier",), False),
        ((), False),
    ],
)
def test_the_texts_that_reserve_a_product_to_hospital_use(
    texts: tuple[str, ...], reserved: bool
) -> None:
    assert hospital_only(texts) is reserved
