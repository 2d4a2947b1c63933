"""The identifier systems and code systems of the contract, and products as FHIR codes.

FR Core identifiers: the patient's INS, the prescriber's RPPS (`8` + RPPS, the ADELI/RPPS
"identifiant national" form), the pharmacy's FINESS (`1` + FINESS); ANSM's code systems for
packs (CIP13, "Presentation"), units (UCD) and substances (SMS).
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding

from adapters.fhir.outcome import invalid_element
from domain.events import Product, ProductSystem
from domain.identifiers import Finess, Ins, InvalidIdentifier, Rpps

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
PRESCRIPTION_SYSTEM = "urn:ordo:prescription"
CIP13_SYSTEM = "http://data.esante.gouv.fr/ansm/medicament/Presentation"
UCD_SYSTEM = "http://data.esante.gouv.fr/ansm/medicament/UCD"
SMS_SYSTEM = "http://data.esante.gouv.fr/ansm/medicament/codeSMS"
UCUM = "http://unitsofmeasure.org"
KIND_SYSTEM = "urn:ordo:prescription-kind"
CONSENT_URL = "urn:ordo:execution-view-consent"
OVERLAP_URL = "urn:ordo:overlap-allowed"
REMAINING_URL = "urn:ordo:remaining"
REMAINING_UNITS_URL = "urn:ordo:remaining-units"  # on a line counted in units (`domain.units`)
# The reason of a "non substituable" line (MTE, EFG, CIF) in `substitution.reason`; a reason is
# read by its code, whatever the system.
NON_SUBSTITUTION_SYSTEM = "urn:ordo:non-substitution-reason"
RENDERED_DOSAGE_URL = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationRequest.renderedDosageInstruction"
SYSTEM_OF_CODES: dict[str, ProductSystem] = {CIP13_SYSTEM: "CIP13", UCD_SYSTEM: "UCD"}
CODES_OF_SYSTEM = {"CIP13": CIP13_SYSTEM, "UCD": UCD_SYSTEM}
RPPS_PREFIX = "8"
FINESS_PREFIX = "1"


def product_of(concept: CodeableConcept | None, expression: str) -> Product:
    """A pack (CIP13) or a unit (UCD) by its code; a substance (SMS code, or only `text`) is a
    line in common name (`DCI`), its name the label."""
    if concept is None:
        raise invalid_element("the medicine is missing", expression)
    for coding in concept.coding or []:
        system = SYSTEM_OF_CODES.get(coding.system or "")
        if system is not None:
            return Product(system=system, code=coding.code, label=_label(concept, coding))
    for coding in concept.coding or []:
        if coding.system == SMS_SYSTEM:
            return Product(system="DCI", label=_label(concept, coding))
    if concept.text:
        return Product(system="DCI", label=concept.text)
    raise invalid_element(
        "the medicine needs a CIP13, UCD or SMS coding, or a substance name in text",
        f"{expression}.coding",
    )


def _label(concept: CodeableConcept, coding: Coding) -> str:
    return coding.display or concept.text or ""


def concept_of(product: Product) -> CodeableConcept:
    system = CODES_OF_SYSTEM.get(product.system)
    if system is None:
        return CodeableConcept(text=product.label)
    return CodeableConcept(
        coding=[Coding(system=system, code=product.code, display=product.label)],
        text=product.label,
    )


def ins_of(value: str | None, expression: str) -> Ins:
    try:
        return Ins.parse(value or "")
    except InvalidIdentifier as error:
        raise invalid_element(str(error), expression) from None


def rpps_of(value: str | None, expression: str) -> Rpps:
    text = value or ""
    if not text.startswith(RPPS_PREFIX):
        raise invalid_element(f"an RPPS identifier is '{RPPS_PREFIX}' + the RPPS", expression)
    try:
        return Rpps.parse(text[len(RPPS_PREFIX) :])
    except InvalidIdentifier as error:
        raise invalid_element(str(error), expression) from None


def finess_of(value: str | None, expression: str) -> Finess:
    text = value or ""
    if not text.startswith(FINESS_PREFIX):
        raise invalid_element(f"a FINESS identifier is '{FINESS_PREFIX}' + the FINESS", expression)
    try:
        return Finess.parse(text[len(FINESS_PREFIX) :])
    except InvalidIdentifier as error:
        raise invalid_element(str(error), expression) from None


def identifier(system: str, value: str) -> dict[str, Any]:
    return {"system": system, "value": value}


def patient_identifier(ins: str) -> dict[str, Any]:
    return identifier(INS_SYSTEM, ins)


def rpps_identifier(rpps: str) -> dict[str, Any]:
    return identifier(RPPS_SYSTEM, RPPS_PREFIX + rpps)


def pharmacy_identifier(finess: str) -> dict[str, Any]:
    return identifier(FINESS_SYSTEM, FINESS_PREFIX + finess)
