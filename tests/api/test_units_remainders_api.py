"""What is left of a line counted in units wherever a remainder is shown, on SQLite and
PostgreSQL with the shipped sample of the public database imported: the pharmacy's inbox, the
conversations' e-mails and the PDF say `remaining_units` (or the tablets left) as the read does,
for Levothyrox 25 µg written in boxes of 30 (3400930065556) and given in boxes of 30 or of 90
(3400930065570)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app, mailer_for
from adapters.catalogue import LiveCatalogue, open_catalogue_store
from adapters.config import Settings
from tests.api.test_catalogue_rules_api import give, pack
from tests.api.test_conversations_api import BAL_ORG, outbox, transmit
from tests.api.test_document_api import document, text_of
from tests.api.test_lists_api import eventually
from tests.api.test_prescriptions_api import assert_problem
from tests.api.test_products_api import import_sample
from tests.api.test_send_to_patient_api import attached_pdf, send_to_patient
from tests.api.test_units_api import LEVOTHYROX_30, LEVOTHYROX_90, written
from tests.conftest import Client
from tests.mails import body_text
from tools.cast import People


@pytest.fixture
def counter(settings: Settings, people: People) -> Iterator[Client]:
    """The API with the sample catalogue imported and the pharmacy's BAL ORG in the directory."""
    import_sample(settings)
    directory = settings.data_dir / "mssante.csv"
    directory.write_text(f"finess,address\n{people.pharmacy},{BAL_ORG}\n")
    with TestClient(build_app(msgspec.structs.replace(settings, mssante_directory=directory))) as c:
        yield c


def inbox_line(client: Client, people: People, number: str, dispensed: bool) -> Any:
    """The prescription's first line in the pharmacy's inbox, once the projections show the
    dispensing (`dispensed`) or not yet."""

    def listed() -> list[Any]:
        page = client.get("/v1/pharmacies/me/inbox", headers=people.as_pharmacist()).json()
        return [item for item in page["items"] if item["prescription_id"] == number]

    (item,) = eventually(listed, lambda found: bool(found) and dispensed == _given(found[0]))
    return item["lines"][0]


def _given(item: Any) -> bool:
    return bool(item["lines"][0]["remaining"] < item["lines"][0]["quantity"])


def projected(client: Client, people: People, number: str) -> None:
    """Waits until the lists (one runner, one transaction for every view) show the dispensing."""
    eventually(
        lambda: client.get("/v1/prescribers/me/prescriptions", headers=people.as_prescriber()),
        lambda page: any(
            item["prescription_id"] == number and item["lines"][0]["dispensed"]
            for item in page.json()["items"]
        ),
    )


def test_the_inbox_shows_the_units_left_as_the_read_does(counter: Client, people: People) -> None:
    number = written(counter, people, LEVOTHYROX_30, 3, 90)
    transmit(counter, people, number, people.pharmacy, "Je passe demain")
    before = inbox_line(counter, people, number, dispensed=False)
    assert give(counter, people, number, 1).status_code == 201

    after = inbox_line(counter, people, number, dispensed=True)

    read = counter.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert (before["remaining"], before["remaining_units"]) == (3, 90)
    assert after == {
        "line_no": 1,
        "product": pack(LEVOTHYROX_30),
        "quantity": 3,
        "remaining": 2,
        "non_substitutable": None,
        "remaining_units": 60,
    }
    assert (read["lines"][0]["remaining"], read["lines"][0]["remaining_units"]) == (2, 60)


def test_a_box_of_90_for_three_boxes_of_30_takes_it_out_of_the_inbox(
    counter: Client, people: People
) -> None:
    number = written(counter, people, LEVOTHYROX_30, 3, 90)
    transmit(counter, people, number, people.pharmacy)
    inbox_line(counter, people, number, dispensed=False)

    assert give(counter, people, number, 1, product=pack(LEVOTHYROX_90)).status_code == 201
    projected(counter, people, number)

    page = counter.get("/v1/pharmacies/me/inbox", headers=people.as_pharmacist()).json()
    assert number not in [item["prescription_id"] for item in page["items"]]
    again = counter.post(
        f"/v1/prescriptions/{number}/transmissions",
        json={"finess": people.pharmacy, "message": ""},
        headers=people.as_patient(),
    )
    assert_problem(again, 409, "already_dispensed")


def test_the_e_mail_to_the_pharmacy_says_the_tablets_left(
    counter: Client, settings: Settings, people: People
) -> None:
    number = written(counter, people, LEVOTHYROX_30, 3, 90)
    assert give(counter, people, number, 1).status_code == 201

    transmit(counter, people, number, people.pharmacy, "Je passe à 18 h")

    (mail,) = [m for m in outbox(settings, 1) if m["To"] == BAL_ORG]
    plain = body_text(mail)
    assert "as written by the LAP : 2 boîte(s) sur 3 (60 unités)" in plain
    assert "2 boîte(s) sur 3 (60 unités)" in body_text(mail, "html")


def test_the_pdf_says_the_tablets_left(counter: Client, people: People) -> None:
    number = written(counter, people, LEVOTHYROX_30, 3, 90)
    assert give(counter, people, number, 1).status_code == 201

    text = text_of(document(counter, number, people.as_pharmacist()))

    assert "Délivré : 1 boîte ; reste : 2 boîtes (60 unités)" in text


def test_the_fhir_medication_request_says_the_tablets_left(counter: Client, people: People) -> None:
    number = written(counter, people, LEVOTHYROX_30, 3, 90)
    assert give(counter, people, number, 1).status_code == 201

    read = counter.get(f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist())

    assert read.status_code == 200, read.text
    extensions = read.json()["extension"]
    assert {"url": "urn:ordo:remaining", "valueInteger": 2} in extensions
    assert {"url": "urn:ordo:remaining-units", "valueInteger": 60} in extensions


def delivered(settings: Settings, count: int) -> list[EmailMessage]:
    """The e-mails delivered: by `ordo serve` itself on SQLite (its catalogue in force); on
    PostgreSQL, by one pass of a mailer given the catalogue in force, as `ordo serve` gives its
    own when it delivers (with ORDO_SMTP_URL)."""
    if settings.database_url is not None:
        asyncio.run(_deliver_with_the_catalogue(settings))
    return outbox(msgspec.structs.replace(settings, database_url=None), count)


async def _deliver_with_the_catalogue(settings: Settings) -> None:
    catalogue, store = LiveCatalogue(), await open_catalogue_store(settings)
    try:
        await catalogue.refresh(store)
    finally:
        await store.close()
    async with mailer_for(settings, catalogue=catalogue.in_force) as mailer:
        await mailer.store.create()
        while await mailer.step():
            pass


def test_the_ordonnance_e_mailed_to_the_patient_says_the_tablets_left(
    counter: Client, settings: Settings, people: People
) -> None:
    number = written(counter, people, LEVOTHYROX_30, 3, 90)
    assert give(counter, people, number, 1).status_code == 201

    sent = send_to_patient(counter, number, people.as_prescriber())

    assert sent.status_code == 202, sent.text
    (mail,) = delivered(settings, 1)
    assert "reste : 2 boîtes (60 unités)" in text_of(attached_pdf(mail))
