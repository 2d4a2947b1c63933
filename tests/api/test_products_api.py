"""`GET /v1/products/{cip13}` on the embedded default and on PostgreSQL, with the sample the
project ships imported (real BDPM lines), and with no catalogue at all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.catalogue import SAMPLE_DIR, open_catalogue_store
from adapters.catalogue.importer import import_directory
from adapters.config import Settings
from tests.api.test_prescriptions_api import assert_problem
from tests.conftest import Client
from tools.cast import People

SKENAN, TOPALGIC = "3400933323523", "3400933911881"
CLAMOXYL, AMOXICILLINE_ARROW = "3400931587538", "3400935765680"
SAMPLE_DAY = date(2022, 6, 2)


def import_sample(settings: Settings) -> None:
    async def run() -> None:
        store = await open_catalogue_store(settings)
        try:
            await import_directory(store, SAMPLE_DIR, snapshot_date=SAMPLE_DAY)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture
def catalogue_client(settings: Settings) -> Iterator[Client]:
    """A server started after the sample was imported: it serves it from its first request."""
    import_sample(settings)
    with TestClient(build_app(settings)) as test_client:
        yield test_client


def product(client: Client, people: People, cip13: str, **headers: str) -> Any:
    return client.get(f"/v1/products/{cip13}", headers=headers or people.as_pharmacist())


def test_a_narcotic_as_the_catalogue_describes_it(catalogue_client: Client, people: People) -> None:
    response = product(catalogue_client, people, SKENAN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cip13"] == SKENAN and body["cis"] == "61227030"
    assert body["label"].startswith("SKENAN L.P. 10 mg, microgranules à libération prolongée")
    assert body["pack"] == "plaquette(s) PVC-Aluminium de 14 gélule(s)"
    assert (body["narcotic"], body["secure_prescription"], body["max_duration_days"]) == (
        True,
        True,
        28,
    )
    assert body["fraction_days"] is None and body["generic_group"] is None
    assert [s["name"] for s in body["substances"]] == ["SULFATE DE MORPHINE"]
    assert body["substances"][0]["dosage"] == "10 mg"
    assert (body["price_cents"], body["reimbursement_rate"]) == (309, 65)
    assert body["assimilated"] is False and body["catalogue_date"] == "2022-06-02"
    assert "stupéfiants" in body["conditions"]


def test_tramadol_is_assimilated_and_generics_name_their_group(
    catalogue_client: Client, people: People
) -> None:
    topalgic = product(catalogue_client, people, TOPALGIC).json()
    assert topalgic["assimilated"] and topalgic["secure_prescription"]
    assert not topalgic["narcotic"] and topalgic["max_duration_days"] == 84
    assert topalgic["lists"] == ["I"]

    clamoxyl = product(catalogue_client, people, CLAMOXYL).json()
    arrow = product(catalogue_client, people, AMOXICILLINE_ARROW).json()
    assert clamoxyl["generic_group"] == arrow["generic_group"]
    assert clamoxyl["generic_group"] == {
        "id": "148",
        "label": "AMOXICILLINE 500 mg - CLAMOXYL 500 mg, gélule",
    }
    assert (clamoxyl["generic_role"], arrow["generic_role"]) == ("princeps", "generic")


def test_every_role_may_read_the_catalogue(catalogue_client: Client, people: People) -> None:
    for headers in (
        people.as_prescriber(),
        people.as_patient(),
        people.as_insurer(),
        people.as_pharmacist(),
    ):
        assert product(catalogue_client, people, SKENAN, **headers).status_code == 200
    anonymous = catalogue_client.get(f"/v1/products/{SKENAN}")
    assert_problem(anonymous, 401, "unauthenticated")


def test_unknown_and_malformed_codes(catalogue_client: Client, people: People) -> None:
    assert_problem(product(catalogue_client, people, people.paracetamol), 404, "not_found")
    assert_problem(product(catalogue_client, people, "12345"), 404, "not_found")
    assert_problem(product(catalogue_client, people, "34009333235AB"), 404, "not_found")
    wrong_key = assert_problem(
        product(catalogue_client, people, SKENAN[:-1] + "4"), 422, "invalid_request"
    )
    assert wrong_key["field"] == "cip13"


def test_without_a_catalogue_every_pack_is_unknown(client: Client, people: People) -> None:
    assert_problem(product(client, people, SKENAN), 404, "not_found")


def test_the_openapi_document_describes_the_products(client: Client) -> None:
    document = client.get("/schema/openapi.json").json()
    operation = document["paths"]["/v1/products/{cip13}"]["get"]
    assert {"200", "404", "422"} <= operation["responses"].keys()
    schema = document["components"]["schemas"]["ProductView"]
    assert {"cip13", "narcotic", "assimilated", "generic_role", "lists"} <= schema[
        "properties"
    ].keys()
