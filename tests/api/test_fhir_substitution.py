"""The "non substituable" mention in the FHIR door (contract v1.2: `substitution.allowedBoolean`
false with `substitution.reason.coding[0].code` MTE, EFG or CIF is `non_substitutable`), both
ways, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.api.test_fhir_prescribing import assert_outcome, fixture, post_bundle, prescribed
from tests.conftest import Client
from tools.cast import People

REASON_SYSTEM = "urn:ordo:non-substitution-reason"


def clamoxyl_not_to_substitute(code: str | None) -> dict[str, Any]:
    """ordo's Clamoxyl fixture, its Clamoxyl line written "non substituable" for `code`."""
    bundle = fixture("ordo-clamoxyl-and-dci")
    reason = {"coding": [{"system": REASON_SYSTEM, "code": code}]} if code else {"text": "?"}
    bundle["entry"][1]["resource"]["substitution"] = {"allowedBoolean": False, "reason": reason}
    return bundle


def number_of(location: str) -> str:
    return location.removeprefix("MedicationRequest/").rsplit("-", 1)[0]


def test_a_line_not_to_substitute_reads_in_v1_as_non_substitutable(
    client: Client, people: People
) -> None:
    first, _ = prescribed(client, people, clamoxyl_not_to_substitute("CIF"))

    read = client.get(f"/v1/prescriptions/{number_of(first)}", headers=people.as_pharmacist())

    assert [line["non_substitutable"] for line in read.json()["lines"]] == [
        {"reason": "CIF"},
        None,
    ]


def test_a_line_not_to_substitute_without_a_reason_is_refused_at_its_element(
    client: Client, people: People
) -> None:
    response = post_bundle(client, people, clamoxyl_not_to_substitute(None))

    assert_outcome(
        response,
        422,
        "non_substitution_reason_invalid",
        "Bundle.entry[1].resource.substitution.reason",
    )


def test_a_reason_the_rules_refuse_names_the_element(client: Client, people: People) -> None:
    response = post_bundle(client, people, clamoxyl_not_to_substitute("MTE"))

    assert_outcome(
        response,
        422,
        "non_substitution_reason_invalid",
        "Bundle.entry[1].resource.substitution.reason",
    )


def test_a_v1_non_substitutable_line_reads_in_fhir(client: Client, people: People) -> None:
    body = people.prescription_body(3)
    body["lines"][0]["non_substitutable"] = {"reason": "CIF"}
    created = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    assert created.status_code == 201, created.text
    number = created.json()["prescription_id"]

    resource = client.get(
        f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist()
    ).json()

    assert resource["substitution"] == {
        "allowedBoolean": False,
        "reason": {"coding": [{"system": REASON_SYSTEM, "code": "CIF"}]},
    }
