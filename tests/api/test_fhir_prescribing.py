"""The FHIR door, prescribing and reading: the ANS guide's examples POSTed as transactions, read
back as sent plus what the server manages, and read in /v1 with the mapped fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from domain.calendar import paris_day
from tests.conftest import Client
from tools.cast import People

FIXTURES = Path(__file__).parent.parent / "fixtures" / "fhir"
TODAY = paris_day(datetime.now(UTC))  # the server's day for prescribing
FHIR_JSON = {"content-type": "application/fhir+json"}
SERVER_MANAGED = {"id", "meta", "groupIdentifier", "status", "extension"}
RENDERED = "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationRequest.renderedDosageInstruction"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
OTHER = People().other_prescriber
ORDO_EXTENSIONS = {"urn:ordo:execution-view-consent", "urn:ordo:remaining"}


def fixture(name: str) -> dict[str, Any]:
    """A fixture written today: the guide's examples date from 2025, past their 3 months."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    resources = [e["resource"] for e in loaded.get("entry", [])] or [loaded]
    for resource in resources:
        if "authoredOn" in resource:
            resource["authoredOn"] = TODAY.isoformat()
    return loaded


def post_bundle(client: Client, people: People, bundle: dict[str, Any]) -> Any:
    return client.post("/fhir/R4", json=bundle, headers={**people.as_prescriber(), **FHIR_JSON})


def prescribed(client: Client, people: People, bundle: dict[str, Any]) -> list[str]:
    response = post_bundle(client, people, bundle)
    assert response.status_code == 200, response.text
    answer = conforms(response)
    assert answer["type"] == "transaction-response"
    assert {e["response"]["status"] for e in answer["entry"]} == {"201 Created"}
    return [e["response"]["location"] for e in answer["entry"]]


def conforms(answer: Any) -> dict[str, Any]:
    """The answer's resource, which the R4B model of its type accepts as it is."""
    resource: dict[str, Any] = answer.json()
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def assert_outcome(response: Any, status: int, code: str, expression: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    issue = response.json()["issue"][0]
    assert issue["details"]["coding"][0] == {"system": "urn:ordo:problem", "code": code}
    if expression is not None:
        assert issue["expression"] == [expression]


def without_server_managed(resource: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in resource.items() if k not in SERVER_MANAGED}
    extensions = [e for e in resource.get("extension", []) if e["url"] not in ORDO_EXTENSIONS]
    profile = resource.get("meta", {}).get("profile")
    return {**kept, "extension": extensions, "meta": {"profile": profile}}


REFUSED_EXAMPLE = "HAS-04b-Presc-DAFALGANCODEINE"  # its intent is `option`, not `order`
GUIDE_EXAMPLES = sorted(
    path.stem for path in FIXTURES.glob("HAS-*.json") if path.stem != REFUSED_EXAMPLE
)


@pytest.mark.parametrize("name", GUIDE_EXAMPLES)
def test_a_guide_example_is_read_back_as_sent(client: Client, people: People, name: str) -> None:
    bundle = fixture(name)
    sent = bundle["entry"][2]["resource"]

    (location,) = prescribed(client, people, bundle)

    read = client.get(f"/fhir/R4/{location}", headers=people.as_prescriber())
    assert read.status_code == 200, read.text
    resource = conforms(read)
    assert without_server_managed(resource) == without_server_managed(sent)
    assert resource["status"] == "active"
    assert {
        "url": "urn:ordo:remaining",
        "valueInteger": sent["dispenseRequest"]["quantity"]["value"],
    } in resource["extension"]
    number = resource["groupIdentifier"]["value"]
    assert resource["id"] == f"{number}-1"


def test_a_fhir_prescription_reads_in_v1_with_the_mapped_fields(
    client: Client, people: People
) -> None:
    (location,) = prescribed(client, people, fixture("HAS-32-2-Presc-ULTIBRO-BREEZ"))
    number = location.removeprefix("MedicationRequest/").rsplit("-", 1)[0]

    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()

    assert read["patient"] == {"ins": people.patient}
    assert read["prescriber_rpps"] == people.prescriber
    assert read["issued_on"] == TODAY.isoformat()
    (line,) = read["lines"]
    assert line["product"] == {
        "system": "UCD",
        "code": "3400893964361",
        "label": "ULTIBRO BREEZ.85/43 GELU+INH",
    }
    assert (line["quantity"], line["duration_days"]) == (1, 30)
    assert line["dosage"].startswith("1 gélule à administrer par voie inhalée")


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("HAS-04a-Presc-Paracetamol", ("DCI", None, "PARACETAMOL 500 mg gélule", 5, 10)),
        ("HAS-05b-Presc-ACTISKENAN", ("UCD", "3400892083926", "ACTISKENAN 10MG GELU", 1, 7)),
        ("HAS-30-1-Presc-Hydrocortisone", ("DCI", None, "HYDROCORTISONE 10 mg comprimé", 6, 180)),
        ("HAS-31-Presc-DUROGESIC", ("UCD", "3400891937626", "DUROGESIC 25µG/H DISP TRANS", 1, 14)),
    ],
)
def test_a_guide_example_reads_in_v1_as_its_product_packs_and_days(
    client: Client, people: People, name: str, read: tuple[str, str | None, str, int, int]
) -> None:
    system, code, label, packs, days = read
    (location,) = prescribed(client, people, fixture(name))
    number = location.removeprefix("MedicationRequest/").rsplit("-", 1)[0]

    (line,) = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()[
        "lines"
    ]

    assert line["product"] == {"system": system, "code": code, "label": label}
    assert (line["quantity"], line["duration_days"]) == (packs, days)


def test_a_v1_prescription_reads_in_fhir(client: Client, people: People) -> None:
    body = people.prescription_body(3)
    number = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber()).json()[
        "prescription_id"
    ]

    resource = conforms(
        client.get(f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist())
    )

    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == people.paracetamol
    assert resource["subject"]["identifier"]["value"] == people.patient
    assert resource["dispenseRequest"]["quantity"]["value"] == 3
    assert resource["dosageInstruction"][0]["timing"]["repeat"]["boundsDuration"]["value"] == 8


def test_a_line_that_is_no_order_is_refused_with_its_element(
    client: Client, people: People
) -> None:
    response = post_bundle(client, people, fixture(REFUSED_EXAMPLE))

    assert_outcome(response, 422, "invalid_request", "Bundle.entry[2].resource.intent")


def test_another_prescriber_gets_404(client: Client, people: People) -> None:
    (location,) = prescribed(client, people, fixture("HAS-11-2-Presc-EVRA"))

    response = client.get(
        f"/fhir/R4/{location}", headers=people.as_prescriber(people.other_prescriber)
    )

    assert_outcome(response, 404, "not_found")


def test_metadata_lists_what_is_served(client: Client) -> None:
    statement = client.get("/fhir/R4/metadata").json()

    assert statement["fhirVersion"] == "4.0.1"
    served = {r["type"] for r in statement["rest"][0]["resource"]}
    assert served == {"MedicationRequest", "MedicationDispense"}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the guide's MedicationRequest: `value` at a dotted path (None: removed)."""

    def change(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for name in parents:
            node = node[int(name)] if name.isdigit() else node[name]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return change


LINE = "Bundle.entry[2].resource"
REFUSALS = {
    "no consent": (
        _set("extension", [{"url": RENDERED, "valueMarkdown": "1 par jour"}]),
        422,
        "invalid_request",
        f"{LINE}.extension",
    ),
    "no order": (_set("intent", "plan"), 422, "invalid_request", f"{LINE}.intent"),
    "no packs": (
        _set("dispenseRequest", None),
        422,
        "invalid_request",
        f"{LINE}.dispenseRequest.quantity.value",
    ),
    "half a pack": (
        _set("dispenseRequest.quantity.value", 1.5),
        422,
        "invalid_request",
        f"{LINE}.dispenseRequest.quantity.value",
    ),
    "no pack at all (the /v1 rule)": (
        _set("dispenseRequest.quantity.value", 0),
        422,
        "invalid_request",
        f"{LINE}.dispenseRequest.quantity.value",
    ),
    "a duration in hours": (
        _set("dosageInstruction.0.timing.repeat.boundsDuration.code", "h"),
        422,
        "invalid_request",
        f"{LINE}.dosageInstruction[0].timing.repeat.boundsDuration.code",
    ),
    "an unknown code": (
        _set("medicationCodeableConcept", {"coding": [{"system": "urn:x", "code": "1"}]}),
        422,
        "invalid_request",
        f"{LINE}.medicationCodeableConcept.coding",
    ),
    "a patient not in the Bundle": (
        _set("subject", {"reference": "Patient/elsewhere"}),
        422,
        "invalid_request",
        f"{LINE}.subject.reference",
    ),
    "written tomorrow": (
        _set("authoredOn", (TODAY + timedelta(days=2)).isoformat()),
        422,
        "invalid_request",
        f"{LINE}.authoredOn",
    ),
    "another requester": (
        _set("requester", {"identifier": {"system": RPPS_SYSTEM, "value": "8" + OTHER}}),
        403,
        "forbidden",
        f"{LINE}.requester",
    ),
}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_each_mapping_refuses_what_it_cannot_map_with_its_element(
    client: Client, people: People, refusal: str
) -> None:
    change, status, code, expression = REFUSALS[refusal]
    bundle = fixture("HAS-32-2-Presc-ULTIBRO-BREEZ")
    change(bundle["entry"][2]["resource"])

    assert_outcome(post_bundle(client, people, bundle), status, code, expression)


def test_lines_of_one_prescription_share_their_patient(client: Client, people: People) -> None:
    bundle = fixture("HAS-32-2-Presc-ULTIBRO-BREEZ")
    other = json.loads(json.dumps(bundle["entry"][2]))
    other["resource"]["subject"] = {
        "identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": people.corsican_patient}
    }
    bundle["entry"].append(other)

    response = post_bundle(client, people, bundle)

    assert_outcome(response, 422, "invalid_request", "Bundle.entry[3].resource.subject")


def test_a_transaction_only_creates(client: Client, people: People) -> None:
    bundle = fixture("HAS-32-2-Presc-ULTIBRO-BREEZ")
    bundle["entry"][2]["request"] = {"method": "DELETE", "url": "MedicationRequest/1"}

    response = post_bundle(client, people, bundle)

    assert_outcome(response, 422, "invalid_request", "Bundle.entry[2].request.method")


def test_a_prescription_written_in_fhir_has_its_history_and_document(
    client: Client, people: People
) -> None:
    bundle = fixture("HAS-11-2-Presc-EVRA")
    (location,) = prescribed(client, people, bundle)
    number = location.removeprefix("MedicationRequest/").rsplit("-", 1)[0]

    history = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_patient())
    document = client.get(
        f"/v1/prescriptions/{number}/document.pdf", headers=people.as_prescriber()
    )

    (issued,) = history.json()["events"]
    assert issued["type"] == "PrescriptionIssued"
    (kept,) = issued["data"]["lines_as_sent"]
    assert json.loads(kept) == bundle["entry"][2]["resource"]
    assert document.status_code == 200 and document.content.startswith(b"%PDF")
