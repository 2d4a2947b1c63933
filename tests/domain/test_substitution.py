"""Substitution (`domain.substitution`) at prescribing and at the counter, on real packs of the
catalogue snapshot of 2 June 2022 (their facts built here as the import builds them):
Levothyrox 25 µg (lévothyroxine: a narrow-therapeutic-margin substance) and its generic Thyrofix
(group 792), Clamoxyl and its generic Amoxicilline Arrow (group 148), Lovenox 4 000 UI (énoxaparine:
a biological, no generic group) and its biosimilar Inhixa."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from domain.catalogue import Catalogue, PackFacts
from domain.decisions.dispensing import Dispense, Dispensed, DispenseLine, dispense
from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.errors import DomainError
from domain.events import (
    DispensedLine,
    NonSubstitutable,
    NonSubstitutionReason,
    PrescribedLine,
    PrescriptionIssued,
    Product,
)
from domain.identifiers import Ins
from domain.substitution import listed_substance, under_six
from tests.domain.builders import NUMBER, PATIENT, PHARMACIST, PHARMACY_A, PRESCRIBER, moment
from tests.domain.counter import Counter, line, prescribed
from tests.domain.decisions.test_issuing_with_catalogue import Packs
from tests.domain.test_catalogue import pack, substance

LEVOTHYROX_CODE, THYROFIX_CODE = "3400930065556", "3400930013649"
CLAMOXYL_CODE, ARROW_CODE = "3400931587538", "3400935765680"
LOVENOX_CODE, LOVENOX_6_CODE, INHIXA_CODE = "3400936468665", "3400936468726", "3400930129753"
LEVOTHYROXINE = (substance("LÉVOTHYROXINE SODIQUE"), substance("LÉVOTHYROXINE", "FT"))
AMOXICILLINE = (substance("AMOXICILLINE ANHYDRE", "FT"), substance("AMOXICILLINE TRIHYDRATÉE"))
ENOXAPARINE = substance("ÉNOXAPARINE SODIQUE")
ISSUED_ON = date(2026, 11, 23)
CHILD = Ins.from_body("2220575123456")  # born in May 2022
SIX_THIS_MONTH = Ins.from_body("1201175123456")  # born in November 2020
SIX_LAST_MONTH = Ins.from_body("1201075123456")  # born in October 2020
BORN_ABROAD = Ins.from_body("1849999123456")  # month 99: not stated


def packs() -> Packs:
    facts: dict[str, PackFacts] = {
        LEVOTHYROX_CODE: pack(LEVOTHYROX_CODE, "68588503", *LEVOTHYROXINE, group="792"),
        THYROFIX_CODE: pack(THYROFIX_CODE, "68265172", *LEVOTHYROXINE, group="792"),
        CLAMOXYL_CODE: pack(CLAMOXYL_CODE, "67707794", *AMOXICILLINE, group="148"),
        ARROW_CODE: pack(ARROW_CODE, "66082724", *AMOXICILLINE, group="148"),
        LOVENOX_CODE: pack(LOVENOX_CODE, "60782303", ENOXAPARINE),
        LOVENOX_6_CODE: pack(LOVENOX_6_CODE, "60782303", ENOXAPARINE),
        INHIXA_CODE: pack(INHIXA_CODE, "61189163", ENOXAPARINE),
    }
    return Packs(facts)


def product(code: str, label: str = "as written") -> Product:
    return Product(system="CIP13", code=code, label=label)


LEVOTHYROX = product(LEVOTHYROX_CODE, "Levothyrox 25 µg")
CLAMOXYL = product(CLAMOXYL_CODE, "Clamoxyl 500 mg")
LOVENOX = product(LOVENOX_CODE, "Lovenox 4 000 UI")


# --- prescribing: the prescriber's "non substituable" ---------------------------------------


def prescribing(
    written: Product,
    reason: NonSubstitutionReason,
    patient: Ins = PATIENT,
    *,
    catalogue: bool = True,
) -> PrescriptionIssued:
    command = IssuePrescription(
        prescriber=PRESCRIBER,
        patient=patient,
        issued_on=ISSUED_ON,
        kind="standard",
        execution_view_consent=True,
        lines=(
            RequestedLine(
                product=written,
                quantity=1,
                dosage="1 par jour",
                duration_days=30,
                non_substitutable=NonSubstitutable(reason=reason),
            ),
        ),
    )
    return issue(command, NUMBER, moment(ISSUED_ON), Catalogue(packs()) if catalogue else None)


def refused_prescribing(
    written: Product,
    reason: NonSubstitutionReason,
    patient: Ins = PATIENT,
    *,
    catalogue: bool = True,
) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        prescribing(written, reason, patient, catalogue=catalogue)
    return refused.value.code, refused.value.field, refused.value.detail


def test_mte_is_accepted_for_levothyrox_and_recorded_on_the_line() -> None:
    issued = prescribing(LEVOTHYROX, "MTE")

    assert issued.lines[0].non_substitutable == NonSubstitutable(reason="MTE")


def test_mte_is_refused_for_a_medicine_of_no_listed_substance() -> None:
    code, field, detail = refused_prescribing(CLAMOXYL, "MTE")

    assert (code, field) == ("non_substitution_reason_invalid", "lines[0].non_substitutable.reason")
    assert detail == (
        "MTE is for a narrow-therapeutic-margin substance (lamotrigine, prégabaline, zonisamide, "
        "lévétiracétam, topiramate, valproate de sodium, lévothyroxine, mycophénolate mofétil, "
        "mycophénolate sodique, buprénorphine, azathioprine, ciclosporine, évérolimus, "
        "lacosamide, oxcarbazépine); medicine 67707794 contains none"
    )


def test_a_pack_the_catalogue_does_not_know_is_judged_by_its_label() -> None:
    assert prescribing(product("3400930000007", "Lévothyroxine 50 µg"), "MTE", catalogue=False)
    assert refused_prescribing(LEVOTHYROX, "MTE", catalogue=False)[2].endswith(
        "; Levothyrox 25 µg contains none"
    )


def test_a_line_written_by_substance_cannot_be_non_substitutable() -> None:
    assert refused_prescribing(Product(system="DCI", label="lévothyroxine"), "MTE") == (
        "non_substitution_reason_invalid",
        "lines[0].non_substitutable.reason",
        "a line written by substance (DCI) names no medicine to keep: "
        "non_substitutable needs a product",
    )


def test_efg_is_for_a_child_under_6_on_issued_on() -> None:
    assert prescribing(CLAMOXYL, "EFG", CHILD).lines[0].non_substitutable is not None
    assert prescribing(CLAMOXYL, "EFG", SIX_THIS_MONTH)
    assert prescribing(CLAMOXYL, "EFG", BORN_ABROAD)
    assert refused_prescribing(CLAMOXYL, "EFG", SIX_LAST_MONTH) == (
        "non_substitution_reason_invalid",
        "lines[0].non_substitutable.reason",
        "EFG is for a child under 6 on issued_on",
    )
    assert refused_prescribing(CLAMOXYL, "EFG", PATIENT)[0] == "non_substitution_reason_invalid"


def test_cif_is_the_prescriber_s_word_for_any_medicine() -> None:
    assert prescribing(CLAMOXYL, "CIF").lines[0].non_substitutable == NonSubstitutable(reason="CIF")


def test_under_six_counts_the_month_of_birth_of_the_latest_century() -> None:
    assert under_six(CHILD, date(2028, 5, 31))
    assert not under_six(CHILD, date(2028, 6, 1))
    assert not under_six(Ins.from_body("1261275123456"), ISSUED_ON)  # December 1926, not 2026
    born_in_december = Ins.from_body("1201275123456")  # December 2020: 6 in December 2026
    assert under_six(born_in_december, date(2026, 12, 31))
    assert not under_six(born_in_december, date(2027, 1, 1))


def test_a_listed_substance_is_found_whatever_its_salt_and_accents() -> None:
    listed = ("valproate de sodium", "lévothyroxine", "follitropine alfa")

    assert listed_substance(["LÉVOTHYROXINE SODIQUE ANHYDRE"], listed) == "lévothyroxine"
    assert listed_substance(["VALPROATE DE SODIUM"], listed) == "valproate de sodium"
    assert listed_substance(["FOLLITROPINE BÊTA"], listed) is None
    assert listed_substance(["AMOXICILLINE"], listed) is None


# --- dispensing --------------------------------------------------------------------------------


def handing(
    written: PrescribedLine,
    handed: Product | None = None,
    *,
    generic_refused: bool | None = None,
    mte_ph: bool = False,
    lot: str | None = None,
) -> Dispensed:
    issued = prescribed(written)
    asked = DispenseLine(
        line_no=1,
        quantity=1,
        product=handed,
        generic_refused=msgspec.UNSET if generic_refused is None else generic_refused,
        non_substitution="MTE-PH" if mte_ph else msgspec.UNSET,
        lot=msgspec.UNSET if lot is None else lot,
    )
    command = Dispense(pharmacy=PHARMACY_A, pharmacist=PHARMACIST, lines=(asked,))
    state = Counter(issued).state(issued.prescription_id)
    return dispense(state, command, "d1", moment(), catalogue=Catalogue(packs()))


def handing_refused(
    written: PrescribedLine,
    handed: Product | None = None,
    *,
    generic_refused: bool | None = None,
    mte_ph: bool = False,
    lot: str | None = None,
) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        handing(written, handed, generic_refused=generic_refused, mte_ph=mte_ph, lot=lot)
    return refused.value.code, refused.value.field, refused.value.detail


def written(drug: Product, reason: NonSubstitutionReason | None = None) -> PrescribedLine:
    mention = None if reason is None else NonSubstitutable(reason=reason)
    return msgspec.structs.replace(line(2, 60, product=drug), non_substitutable=mention)


def handed_line(dispensed: Dispensed) -> DispensedLine:
    return dispensed.recorded.lines[0]


def test_the_generic_is_excluded_on_a_non_substitutable_line() -> None:
    assert handing_refused(written(LEVOTHYROX, "MTE"), product(THYROFIX_CODE)) == (
        "substitution_excluded",
        "lines[0].product",
        "line 1 is non substituable (MTE): give Levothyrox 25 µg itself",
    )
    assert handing_refused(written(CLAMOXYL, "CIF"), product(ARROW_CODE))[0] == (
        "substitution_excluded"
    )


def test_the_prescribed_medicine_in_any_pack_is_given_on_a_non_substitutable_line() -> None:
    lovenox = written(LOVENOX, "CIF")

    assert handed_line(handing(lovenox)).product == LOVENOX
    assert handed_line(handing(lovenox, LOVENOX)).product == LOVENOX
    assert handed_line(handing(lovenox, product(LOVENOX_6_CODE))).product.code == LOVENOX_6_CODE
    assert handing_refused(lovenox, product(INHIXA_CODE))[0] == "substitution_excluded"


def test_without_the_catalogue_another_code_is_another_medicine() -> None:
    issued = prescribed(written(product("3400930000007", "Lévothyroxine 50 µg"), "MTE"))
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=product(THYROFIX_CODE)),),
    )
    with pytest.raises(DomainError) as refused:
        dispense(Counter(issued).state(issued.prescription_id), command, "d1", moment())

    assert refused.value.code == "substitution_excluded"


def test_the_generic_is_given_on_a_substitutable_line() -> None:
    assert handed_line(handing(written(LEVOTHYROX), product(THYROFIX_CODE))).product.code == (
        THYROFIX_CODE
    )


def test_the_patient_s_refusal_of_the_generic_is_recorded_on_a_substitutable_line() -> None:
    given = handed_line(handing(written(CLAMOXYL), generic_refused=True))

    assert (given.generic_refused, given.non_substitution, given.lot) == (True, None, None)
    assert not handed_line(handing(written(CLAMOXYL), generic_refused=False)).generic_refused


def test_a_refused_generic_needs_a_substitutable_line_and_the_prescribed_medicine() -> None:
    assert handing_refused(written(LEVOTHYROX, "MTE"), generic_refused=True) == (
        "invalid_request",
        "lines[0].generic_refused",
        "line 1 is non substituable: no generic was offered",
    )
    assert handing_refused(written(CLAMOXYL), product(ARROW_CODE), generic_refused=True) == (
        "invalid_request",
        "lines[0].generic_refused",
        "the patient refused the generic: the prescribed medicine is given",
    )


def test_on_a_line_written_by_substance_any_pack_of_it_is_what_was_prescribed() -> None:
    by_substance = written(Product(system="DCI", label="lévothyroxine 25 µg"))

    refused = handed_line(handing(by_substance, LEVOTHYROX, generic_refused=True))
    kept = handed_line(handing(by_substance, LEVOTHYROX, mte_ph=True))

    assert (refused.generic_refused, kept.non_substitution) == (True, "MTE-PH")


def test_the_pharmacist_s_mte_ph_is_recorded_for_a_listed_substance() -> None:
    given = handed_line(handing(written(LEVOTHYROX), mte_ph=True))
    by_its_label = handed_line(
        handing(written(product("3400930000007", "Lévothyroxine 50 µg")), mte_ph=True)
    )

    assert (given.non_substitution, by_its_label.non_substitution) == ("MTE-PH", "MTE-PH")


def test_mte_ph_is_refused_outside_the_list_or_with_a_substitute_or_a_prescriber_s_mention() -> (
    None
):
    assert handing_refused(written(CLAMOXYL), mte_ph=True) == (
        "non_substitution_reason_invalid",
        "lines[0].non_substitution",
        "MTE-PH is for a narrow-therapeutic-margin substance; Clamoxyl 500 mg contains none",
    )
    assert handing_refused(written(LEVOTHYROX), product(THYROFIX_CODE), mte_ph=True)[2] == (
        "MTE-PH keeps the prescribed medicine: it cannot come with a substitute"
    )
    assert handing_refused(written(LEVOTHYROX, "MTE"), mte_ph=True)[2] == (
        "line 1 is already non substituable (MTE)"
    )


def test_a_biosimilar_of_the_list_is_given_with_its_lot() -> None:
    given = handed_line(handing(written(LOVENOX), product(INHIXA_CODE), lot="L2311A"))

    assert (given.product.code, given.lot) == (INHIXA_CODE, "L2311A")


def test_a_biosimilar_without_its_lot_is_refused() -> None:
    assert handing_refused(written(LOVENOX), product(INHIXA_CODE)) == (
        "lot_required",
        "lines[0].lot",
        "line 1 is a biosimilar substitution (énoxaparine): record its lot",
    )
    assert handing_refused(written(LOVENOX), product(INHIXA_CODE), lot=" ")[0] == "lot_required"


def test_another_pack_of_the_same_biological_needs_no_lot() -> None:
    assert handed_line(handing(written(LOVENOX), product(LOVENOX_6_CODE))).lot is None


def test_a_medicine_of_another_substance_is_no_biosimilar() -> None:
    code, field, detail = handing_refused(written(LOVENOX), product(CLAMOXYL_CODE), lot="L1")

    assert (code, field) == ("substitution_not_allowed", "lines[0].product")
    assert detail.endswith("nor a biosimilar of its substitutable list")
    assert handing_refused(written(CLAMOXYL), product(INHIXA_CODE), lot="L1")[0] == (
        "substitution_not_allowed"
    )
