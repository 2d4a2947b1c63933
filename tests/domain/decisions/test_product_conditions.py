"""Prescribing conditions of the catalogue for every product (contract "restricted products"):
"délivrance fractionnée de 7 jours" dispenses a SUBUTEX 8 mg line (high-dose buprénorphine,
no narcotic) in fractions of 7 days, and "chevauchement interdit" keeps two prescriptions of
zolpidem (STILNOX, EDLUAR) of one patient from covering the same day, through the patient's
coverage stream. Given the real packs of the snapshot of 2 June 2022 and their CIS_CPD texts,
when a pharmacy dispenses at an instant, then what `dispensable` says and the command does."""

from __future__ import annotations

from datetime import date, datetime

import msgspec
import pytest

from domain.calendar import Moment
from domain.catalogue import (
    Catalogue,
    PackFacts,
    catalogued,
    catalogued_line,
    overlap_forbidden,
    pack_facts,
)
from domain.coverage import CoveredPeriod, NarcoticCoverage, coverage_stream_of, evolve_coverage
from domain.decisions.corrections import Withdraw, withdraw
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.dispensable import Allowance, allowances, covered_until
from domain.errors import DomainError
from domain.events import Event, PrescriptionIssued, Product
from domain.identifiers import Cip13, PrescriptionNumber
from domain.prescription import Prescription, fold
from tests.domain.builders import PATIENT, PHARMACIST, PHARMACY_A, PHARMACY_B, PRESCRIBER
from tests.domain.counter import at
from tests.domain.test_catalogue import substance

SUBUTEX_8 = "3400933943998"  # SUBUTEX 8 mg, 7 comprimés sublinguaux
STILNOX_7 = "3400933903619"  # STILNOX 10 mg, 7 comprimés
STILNOX_14 = "3400934658570"  # STILNOX 10 mg, 14 comprimés
EDLUAR_10 = "3400926612207"  # EDLUAR 10 mg (zolpidem, sublingual), 10 comprimés
STABLON_28 = "3400926722357"  # STABLON 12,5 mg (tianeptine), 28 comprimés
SKENAN_14 = "3400933323523"  # SKENAN LP 10 mg (morphine: a narcotic), 14 gélules
# A box of 28 of SUBUTEX 8 mg: no such pack in the snapshot (every buprénorphine pack holds 7).
SUBUTEX_28 = Cip13.from_body("340093000028").value

SECURE = "prescription en toutes lettres sur ordonnance sécurisée"
FOUR_WEEKS = "prescription limitée à 4 semaines"
NO_OVERLAP = "chevauchement interdit sauf mention expresse du prescripteur portée sur l'ordonnance"
# CIS, pack label, substance, CIS_CPD texts: as the snapshot's files say.
_REAL: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    SUBUTEX_8: (
        "68945058",
        "plaquette(s) thermoformée(s) nylon aluminium PVC-Aluminium de 7 comprimé(s)",
        "CHLORHYDRATE DE BUPRÉNORPHINE",
        (FOUR_WEEKS, "délivrance fractionnée de 7 jours", SECURE, "liste I"),
    ),
    STILNOX_7: (
        "63179285",
        "plaquette(s) PVC-Aluminium de 7 comprimé(s)",
        "TARTRATE DE ZOLPIDEM",
        (FOUR_WEEKS, "liste I", SECURE, NO_OVERLAP),
    ),
    STILNOX_14: (
        "63179285",
        "plaquette(s) PVC aluminium de 14 comprimé(s)",
        "TARTRATE DE ZOLPIDEM",
        (FOUR_WEEKS, "liste I", SECURE, NO_OVERLAP),
    ),
    EDLUAR_10: (
        "64827774",
        "plaquette(s) aluminium de 10 comprimé(s)",
        "ZOLPIDEM (TARTRATE DE)",
        (FOUR_WEEKS, "liste I", SECURE, NO_OVERLAP),
    ),
    STABLON_28: (
        "65411280",
        "plaquette(s) thermoformée(s) PVC-Aluminium de 28 comprimé(s)",
        "TIANEPTINE SODIQUE",
        (FOUR_WEEKS, "liste I", SECURE, NO_OVERLAP),
    ),
    SUBUTEX_28: (
        "68945058",
        "plaquette(s) de 28 comprimé(s)",
        "CHLORHYDRATE DE BUPRÉNORPHINE",
        (FOUR_WEEKS, "délivrance fractionnée de 7 jours", SECURE, "liste I"),
    ),
    SKENAN_14: (
        "61227030",
        "plaquette(s) PVC-Aluminium de 14 gélule(s)",
        "SULFATE DE MORPHINE",
        ("stupéfiants", FOUR_WEEKS, "liste I"),
    ),
}


class RealPacks:
    """These packs as a catalogue snapshot (`domain.catalogue.PackLookup`)."""

    def facts(self, cip13: str) -> PackFacts | None:
        if cip13 not in _REAL:
            return None
        cis, label, name, conditions = _REAL[cip13]
        return pack_facts(
            cip13=cip13,
            cip7=cip13[5:12],
            cis=cis,
            label=f"medicine {cis}",
            pack=label,
            substances=(substance(name),),
            conditions=conditions,
        )


PACKS = RealPacks()


def product(code: str) -> Product:
    return Product(system="CIP13", code=code, label=f"pack {code}")


def prescribing(
    code: str,
    quantity: int,
    duration_days: int,
    issued_on: date,
    *,
    fraction_days: int | None = None,
    overlap_allowed: bool = False,
    seed: int = 1,
) -> PrescriptionIssued:
    """The prescription as `issue` records it with the catalogue (kind secure)."""
    command = IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=issued_on,
        kind="secure",
        execution_view_consent=True,
        lines=(
            RequestedLine(
                product=product(code),
                quantity=quantity,
                dosage="1 comprimé par jour",
                duration_days=duration_days,
                fraction_days=fraction_days,
                overlap_allowed=overlap_allowed,
            ),
        ),
    )
    number = PrescriptionNumber.generate(lambda bits: (987654321 * seed) % (1 << bits))
    return issue(command, number, Moment(at=at(issued_on, 9), today=issued_on), Catalogue(PACKS))


class Counter:
    """One patient's prescriptions as their events left them, read as the catalogue knows
    their packs (`catalogued`), and the patient's coverage."""

    def __init__(self, *issued: PrescriptionIssued) -> None:
        self.events: dict[str, list[Event]] = {e.prescription_id: [e] for e in issued}
        self.coverage = NarcoticCoverage(stream_id=coverage_stream_of(PATIENT.value))
        self._count = 0

    def state(self, number: str) -> Prescription:
        folded = fold(self.events[number])
        assert folded is not None
        return catalogued(folded, PACKS)

    def allowed(self, number: str, when: datetime, finess: str = PHARMACY_A.value) -> Allowance:
        return allowances(self.state(number), self.coverage, when, finess)[0]

    def dispense(
        self,
        number: str,
        quantity: int,
        when: datetime,
        finess: str = PHARMACY_A.value,
        handing: Product | None = None,
    ) -> str:
        """Dispense line 1 at `when` (the server's clock too), of `handing` if another pack
        than the prescribed one; applies the events."""
        self._count += 1
        command = Dispense(
            pharmacy=PHARMACY_A if finess == PHARMACY_A.value else PHARMACY_B,
            pharmacist=PHARMACIST,
            lines=(DispenseLine(line_no=1, quantity=quantity, product=handing),),
        )
        now = Moment(at=when, today=when.date())
        done = dispense(
            self.state(number),
            command,
            f"d{self._count}",
            now,
            self.coverage,
            catalogue=Catalogue(PACKS),
        )
        self.events[number].append(done.recorded)
        if done.coverage is not None:
            self.coverage = evolve_coverage(done.coverage, self.coverage)
        return done.recorded.dispensation_id

    def refused(self, number: str, quantity: int, when: datetime) -> DomainError:
        with pytest.raises(DomainError) as refusal:
            self.dispense(number, quantity, when)
        return refusal.value

    def withdraw(self, number: str, dispensation_id: str, when: datetime) -> None:
        command = Withdraw(
            pharmacy=PHARMACY_A, pharmacist=PHARMACIST, dispensation_id=dispensation_id, reason="x"
        )
        decided = withdraw(
            self.state(number), command, Moment(at=when, today=when.date()), self.coverage
        )
        assert decided is not None
        withdrawn, released = decided
        self.events[number].append(withdrawn)
        assert released is not None
        self.coverage = evolve_coverage(released, self.coverage)


# --- délivrance fractionnée de 7 jours: buprénorphine -----------------------------------------


def test_a_subutex_line_is_recorded_with_the_fraction_of_its_product() -> None:
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1))

    written = issued.lines[0]
    assert (written.narcotic, written.fraction_days) == (False, 7)


def test_a_subutex_line_gives_one_fraction_of_7_days_at_a_time() -> None:
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1))
    counter = Counter(issued)
    number = issued.prescription_id

    allowed = counter.allowed(number, at(date(2027, 3, 1)))
    refusal = counter.refused(number, 2, at(date(2027, 3, 1)))

    assert (allowed.max_quantity, allowed.reason) == (1, "quantity_exceeds_allowed_now")
    assert allowed.why == "a fraction covers at most 7 days: 7 unit(s)"
    assert allowed.next_on == date(2027, 3, 7)
    assert (refusal.code, refusal.field) == ("quantity_exceeds_allowed_now", "lines[0].quantity")
    assert refusal.detail == (
        "line 1: at most 7 units may be dispensed now, 14 units asked "
        "(a fraction covers at most 7 days: 7 unit(s))"
    )


def test_the_next_fraction_opens_1_day_before_the_previous_one_runs_out_across_a_month_end() -> (
    None
):
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 2, 20))
    counter = Counter(issued)
    number = issued.prescription_id
    counter.dispense(number, 1, at(date(2027, 2, 20)))  # runs out on 27 February

    early = counter.allowed(number, at(date(2027, 2, 25)))
    counter.dispense(number, 1, at(date(2027, 2, 26)))  # runs out on 6 March
    again = counter.allowed(number, at(date(2027, 3, 4)))

    assert (early.max_quantity, early.reason, early.next_on) == (
        0,
        "quantity_exceeds_allowed_now",
        date(2027, 2, 26),
    )
    assert early.why == "the previous fraction runs out on 2027-02-27; the next from 2027-02-26"
    assert (again.max_quantity, again.next_on) == (0, date(2027, 3, 5))
    assert again.why == "the previous fraction runs out on 2027-03-06; the next from 2027-03-05"
    assert counter.allowed(number, at(date(2027, 3, 5))).max_quantity == 1


def test_a_late_fraction_of_a_product_that_is_no_narcotic_is_given_whole() -> None:
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1))
    counter = Counter(issued)
    number = issued.prescription_id
    counter.dispense(number, 1, at(date(2027, 3, 1)))

    late = counter.allowed(number, at(date(2027, 3, 19)))  # 11 days after the fraction ran out

    assert (late.max_quantity, late.reason) == (1, "quantity_exceeds_allowed_now")
    assert late.why == "a fraction covers at most 7 days: 7 unit(s)"


def test_the_prescriber_s_own_fraction_of_a_fractioned_product_is_kept() -> None:
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1), fraction_days=14)
    counter = Counter(issued)

    allowed = counter.allowed(issued.prescription_id, at(date(2027, 3, 1)))

    assert issued.lines[0].fraction_days == 14
    assert (allowed.max_quantity, allowed.why) == (
        2,
        "a fraction covers at most 14 days: 14 unit(s)",
    )


def test_a_pack_lasting_longer_than_the_fraction_is_given_whole() -> None:
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1))
    counter = Counter(issued)

    counter.dispense(issued.prescription_id, 1, at(date(2027, 3, 1)), handing=product(SUBUTEX_28))

    assert counter.state(issued.prescription_id).lines[0].dispensed == 1


def test_a_fractioned_line_runs_out_when_its_fractions_do_and_another_line_by_its_days() -> None:
    subutex = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1))
    stilnox = prescribing(STILNOX_7, 4, 28, date(2027, 3, 1), seed=2)
    counter = Counter(subutex, stilnox)
    for issued in (subutex, stilnox):
        counter.dispense(issued.prescription_id, 1, at(date(2027, 3, 1)))
        counter.dispense(issued.prescription_id, 1, at(date(2027, 3, 11)))  # 3 days late

    fractioned = counter.state(subutex.prescription_id)
    by_days = counter.state(stilnox.prescription_id)

    # The fractions end to end from the late one: 11 + 7; the other line: 1 March + 14 days.
    assert covered_until(fractioned, fractioned.lines[0]) == date(2027, 3, 18)
    assert covered_until(by_days, by_days.lines[0]) == date(2027, 3, 15)


# --- chevauchement interdit: zolpidem ---------------------------------------------------------


def test_a_zolpidem_line_may_be_dispensed_for_its_whole_4_weeks_at_once() -> None:
    issued = prescribing(STILNOX_14, 2, 28, date(2027, 1, 20))
    counter = Counter(issued)

    allowed = counter.allowed(issued.prescription_id, at(date(2027, 1, 20)))

    assert (allowed.max_quantity, allowed.reason) == (2, None)


def test_a_second_prescription_of_zolpidem_waits_for_the_first_to_run_out_across_a_month_end() -> (
    None
):
    first = prescribing(STILNOX_14, 2, 28, date(2027, 1, 20))
    second = prescribing(EDLUAR_10, 2, 20, date(2027, 2, 10), seed=2)
    counter = Counter(first, second)
    counter.dispense(first.prescription_id, 2, at(date(2027, 1, 20)))  # covers until 17 Feb

    told = counter.allowed(second.prescription_id, at(date(2027, 2, 16)))
    refusal = counter.refused(second.prescription_id, 1, at(date(2027, 2, 16)))

    assert (told.max_quantity, told.reason, told.next_on) == (
        0,
        "narcotic_overlap",
        date(2027, 2, 17),
    )
    assert told.why == (
        "another prescription of zolpidem of this patient covers 2027-02-16 (until 2027-02-17)"
    )
    assert (refusal.code, refusal.field) == ("narcotic_overlap", "lines[0].quantity")
    assert refusal.detail == (
        "line 1: at most 0 units may be dispensed now, 10 units asked (another prescription of "
        "zolpidem of this patient covers 2027-02-16 (until 2027-02-17))"
    )
    assert counter.allowed(second.prescription_id, at(date(2027, 2, 17))).max_quantity == 2


def test_the_prescriber_s_express_mention_lets_zolpidem_overlap() -> None:
    first = prescribing(STILNOX_14, 2, 28, date(2027, 1, 20))
    second = prescribing(STILNOX_7, 4, 28, date(2027, 2, 1), overlap_allowed=True, seed=2)
    counter = Counter(first, second)
    counter.dispense(first.prescription_id, 2, at(date(2027, 1, 20)))

    allowed = counter.allowed(second.prescription_id, at(date(2027, 2, 1)))

    assert (allowed.max_quantity, allowed.reason) == (4, None)


def test_zolpidem_does_not_overlap_another_substance_nor_a_narcotic() -> None:
    zolpidem = prescribing(STILNOX_14, 2, 28, date(2027, 1, 20))
    tianeptine = prescribing(STABLON_28, 1, 28, date(2027, 1, 21), seed=2)
    morphine = prescribing(SKENAN_14, 2, 28, date(2027, 1, 21), seed=3)
    counter = Counter(zolpidem, tianeptine, morphine)
    counter.dispense(zolpidem.prescription_id, 2, at(date(2027, 1, 20)))

    counter.dispense(tianeptine.prescription_id, 1, at(date(2027, 1, 21)))
    counter.dispense(morphine.prescription_id, 2, at(date(2027, 1, 21)))

    assert [p.substance for p in counter.coverage.periods] == ["zolpidem", "tianeptine", None]


def test_a_second_prescription_of_zolpidem_covers_only_the_days_before_the_first_begins() -> None:
    first = prescribing(STILNOX_7, 4, 28, date(2027, 3, 1))
    second = prescribing(STILNOX_7, 4, 28, date(2027, 2, 24), seed=2)
    counter = Counter(first, second)
    counter.dispense(first.prescription_id, 1, at(date(2027, 3, 1)))

    told = counter.allowed(second.prescription_id, at(date(2027, 2, 24)))

    assert (told.max_quantity, told.reason) == (0, "narcotic_overlap")
    assert (
        told.why
        == "another prescription of zolpidem of this patient covers the days from 2027-03-01"
    )


def test_a_withdrawn_dispensing_of_zolpidem_covers_nothing_any_more() -> None:
    first = prescribing(STILNOX_14, 2, 28, date(2027, 1, 20))
    second = prescribing(STILNOX_14, 2, 28, date(2027, 1, 21), seed=2)
    counter = Counter(first, second)
    given = counter.dispense(first.prescription_id, 2, at(date(2027, 1, 20)))

    counter.withdraw(first.prescription_id, given, at(date(2027, 1, 21)))

    assert counter.coverage.periods == ()
    assert counter.allowed(second.prescription_id, at(date(2027, 1, 21))).max_quantity == 2


def test_a_line_of_a_product_without_these_conditions_covers_no_days() -> None:
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1))
    counter = Counter(issued)

    counter.dispense(issued.prescription_id, 1, at(date(2027, 3, 1)))

    assert counter.coverage.periods == ()
    assert not counter.state(issued.prescription_id).lines[0].covers_days


def test_periods_stored_before_they_named_a_substance_are_narcotics() -> None:
    stored = msgspec.json.encode(
        {
            "prescription_id": "P",
            "dispensation_id": "d1",
            "line_no": 1,
            "first_day": "2027-01-01",
            "until": "2027-01-08",
        }
    )
    period = msgspec.json.decode(stored, type=CoveredPeriod)

    assert period.substance is None
    assert msgspec.json.encode(period) == stored


# --- the texts, and lines as the catalogue knows them -----------------------------------------


@pytest.mark.parametrize(
    ("texts", "forbidden"),
    [
        ((NO_OVERLAP,), True),
        (("Chevauchement  INTERDIT sauf mention expresse",), True),
        ((FOUR_WEEKS, SECURE, "liste I"), False),
        ((), False),
    ],
)
def test_the_texts_that_forbid_overlap(texts: tuple[str, ...], forbidden: bool) -> None:
    assert overlap_forbidden(texts) is forbidden


def test_a_substance_is_named_by_its_core_words_whatever_the_brand_or_salt() -> None:
    stilnox, edluar = PACKS.facts(STILNOX_14), PACKS.facts(EDLUAR_10)
    bare = pack_facts(cip13="3400930000007", cip7="3000000", cis="60000001", label="", pack="")

    assert stilnox is not None and edluar is not None
    assert (stilnox.substance_key, edluar.substance_key) == ("zolpidem", "zolpidem")
    assert (stilnox.overlap_forbidden, bare.overlap_forbidden) == (True, False)
    assert bare.substance_key == "CIS 60000001"


def test_a_line_written_before_the_catalogue_is_dispensed_in_its_product_s_fractions() -> None:
    issued = prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1))
    unwritten = msgspec.structs.replace(issued.lines[0], fraction_days=None)

    known = catalogued_line(unwritten, PACKS)
    assert (known.fraction_days, known.narcotic, known.assimilated) == (7, False, False)
    assert catalogued_line(unwritten, None).fraction_days is None


def test_a_narcotic_keeps_its_own_overlap_rule_whatever_its_texts() -> None:
    issued = prescribing(SKENAN_14, 2, 28, date(2027, 1, 20))
    morphine = Counter(issued).state(issued.prescription_id).lines[0]

    assert morphine.covers_days and morphine.overlap_substance is None


def test_the_overlap_mention_is_for_products_whose_overlap_is_forbidden() -> None:
    with pytest.raises(DomainError) as refusal:
        prescribing(SUBUTEX_8, 4, 28, date(2027, 3, 1), overlap_allowed=True)

    assert (refusal.value.field, refusal.value.detail) == (
        "lines[0].overlap_allowed",
        "overlap_allowed is for narcotic lines and products whose overlap is forbidden only",
    )
    assert (
        prescribing(STILNOX_14, 2, 28, date(2027, 1, 20), overlap_allowed=True)
        .lines[0]
        .overlap_allowed
    )


def test_a_fraction_is_for_products_dispensed_in_fractions() -> None:
    with pytest.raises(DomainError) as refusal:
        prescribing(STILNOX_14, 2, 28, date(2027, 1, 20), fraction_days=7)

    assert (refusal.value.field, refusal.value.detail) == (
        "lines[0].fraction_days",
        "fraction_days is for narcotic lines and products dispensed in fractions only",
    )
