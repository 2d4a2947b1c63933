"""Restricted products and a designated pharmacy through HTTP (contract "The pharmacist's own
procedures, restricted products, designated pharmacy"), on SQLite and PostgreSQL, with the
shipped sample of the public database: a SUBUTEX 8 mg line (high-dose buprénorphine) naming the
patient's pharmacy (CSS L162-4-2) is dispensed there only, another pharmacy gets 409
designated_pharmacy_only and `dispensable` tells it why, the read and the PDF show the pharmacy
named; VENOFER ("réservé à l'usage hospitalier") is 422 hospital_use_only at prescribing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.api.test_catalogue_rules_api import give, line, pack, prescribe
from tests.api.test_document_api import document, text_of
from tests.api.test_prescriptions_api import assert_problem
from tests.api.test_products_api import import_sample
from tests.conftest import Client
from tools.cast import People

SUBUTEX = "3400933943998"  # SUBUTEX 8 mg, 7 comprimés
VENOFER = "3400957128340"  # VENOFER 20 mg/mL, 5 flacons: reserved to hospital use


@pytest.fixture
def with_catalogue(settings: Settings) -> Iterator[Client]:
    import_sample(settings)
    with TestClient(build_app(settings)) as client:
        yield client


def subutex_for(client: Client, people: People, finess: str) -> str:
    named = {
        **line(pack(SUBUTEX, "Subutex 8 mg"), days=28, quantity=4),
        "designated_finess": finess,
    }
    response = prescribe(client, people, named)
    assert response.status_code == 201, response.text
    assert response.json()["lines"][0]["designated_finess"] == finess
    number: str = response.json()["prescription_id"]
    return number


def dispensable(client: Client, number: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/v1/prescriptions/{number}/dispensable", headers=headers)
    assert response.status_code == 200, response.text
    first: dict[str, Any] = response.json()["lines"][0]
    return first


def test_the_designated_pharmacy_dispenses_and_no_other(
    with_catalogue: Client, people: People
) -> None:
    number = subutex_for(with_catalogue, people, people.pharmacy)
    elsewhere = people.as_pharmacist(people.other_pharmacy)

    refused = with_catalogue.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 1}]},
        headers=elsewhere,
    )

    problem = assert_problem(refused, 409, "designated_pharmacy_only")
    assert problem["field"] == "lines[0].quantity"
    told = dispensable(with_catalogue, number, elsewhere)
    assert (told["max_quantity"], told["reason"]) == (0, "designated_pharmacy_only")
    there = dispensable(with_catalogue, number, people.as_pharmacist())
    assert (there["max_quantity"], there["reason"]) == (1, "quantity_exceeds_allowed_now")  # 7 days
    assert give(with_catalogue, people, number, 1).status_code == 201
    read = with_catalogue.get(f"/v1/prescriptions/{number}", headers=people.as_patient())
    assert read.json()["lines"][0]["designated_finess"] == people.pharmacy
    printed = text_of(document(with_catalogue, number, people.as_prescriber()))
    assert f"Pharmacie désignée : FINESS {people.pharmacy}" in printed


def test_a_designated_finess_whose_key_fails_is_refused(
    with_catalogue: Client, people: People
) -> None:
    wrong = people.pharmacy[:-1] + str((int(people.pharmacy[-1]) + 1) % 10)
    named = {**line(pack(SUBUTEX, "Subutex 8 mg"), days=28, quantity=4), "designated_finess": wrong}

    problem = assert_problem(prescribe(with_catalogue, people, named), 422, "invalid_request")

    assert problem["field"] == "lines[0].designated_finess"


def test_a_product_reserved_to_hospital_use_is_never_prescribed_for_a_pharmacy(
    with_catalogue: Client, people: People
) -> None:
    venofer = line(pack(VENOFER, "Venofer"), days=10, quantity=1)

    problem = assert_problem(
        prescribe(with_catalogue, people, venofer, kind="standard"), 422, "hospital_use_only"
    )

    assert problem["field"] == "lines[0].product"
