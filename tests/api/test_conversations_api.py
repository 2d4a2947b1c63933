"""Secure messaging with the pharmacy (contract v1.1), through the API, on the embedded default
and on PostgreSQL: a transmission opens a conversation, both sides write, "FIN" closes it, and
the lists show it newest activity first. The e-mails land as .eml files (no ORDO_SMTP_URL)."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app, mailer_for, read_models_for
from adapters.config import Settings
from projections.folds import READ_MODEL_NAMES
from tests.api.test_lists_api import eventually
from tests.api.test_prescriptions_api import assert_problem, issue
from tests.conftest import Client
from tests.mails import body_text
from tools.cast import People

BAL_ORG = "pharmacie.centrale@pharmacie.mssante.fr"


@pytest.fixture
def messaging(settings: Settings, people: People) -> Iterator[Client]:
    directory = settings.data_dir / "mssante.csv"
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.write_text(
        f"finess,address\n{people.pharmacy},{BAL_ORG}\n"
        f"{people.other_pharmacy},officine@gmail.com\n"  # outside mssante.fr: refused
    )
    with TestClient(build_app(msgspec.structs.replace(settings, mssante_directory=directory))) as c:
        yield c


def transmit(client: Client, people: People, number: str, finess: str, message: str = "") -> Any:
    response = client.post(
        f"/v1/prescriptions/{number}/transmissions",
        json={"finess": finess, "message": message},
        headers=people.as_patient(),
    )
    assert response.status_code == 201, response.text
    return response.json()


def write(
    client: Client, conversation_id: str, headers: dict[str, str], subject: str, body: str = ""
) -> Any:
    return client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"subject": subject, "body": body},
        headers=headers,
    )


def conversations(client: Client, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = client.get(f"/v1/{path}/me/conversations", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def deliver_all(settings: Settings) -> None:
    """On PostgreSQL `ordo mailer` runs on its own: here, one pass of it."""
    async with mailer_for(settings) as mailer:
        await mailer.store.create()
        while await mailer.step():
            pass


def outbox(settings: Settings, count: int) -> list[EmailMessage]:
    folder = settings.data_dir / "outbox"
    if settings.database_url is not None:
        asyncio.run(deliver_all(settings))

    def read() -> list[Path]:
        return sorted(folder.glob("*.eml")) if folder.exists() else []

    files = eventually(read, lambda found: len(found) >= count, seconds=10)
    return [email.message_from_bytes(f.read_bytes(), policy=SMTP) for f in files]


def test_the_patient_and_the_pharmacy_talk_until_fin(
    messaging: Client, settings: Settings, people: People
) -> None:
    number = issue(messaging, people, 2)["prescription_id"]
    sent = transmit(messaging, people, number, people.pharmacy, "Je passe à 18 h")
    conversation_id = sent["conversation_id"]
    assert sent["pharmacy_mailbox"] is True
    assert sent["prescription_id"] == number

    answer = write(
        messaging, conversation_id, people.as_pharmacist(), "Prête à 18 h", "À tout à l'heure"
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["from"] == "pharmacy"
    assert answer.json()["rpps"] == people.pharmacist
    assert answer.json()["conversation_status"] == "open"

    thanks = write(messaging, conversation_id, people.as_patient(), "Merci")
    assert thanks.status_code == 201
    assert thanks.json()["rpps"] is None

    closing = write(messaging, conversation_id, people.as_pharmacist(), "  fin ")
    assert closing.json()["conversation_status"] == "closed"
    assert_problem(
        write(messaging, conversation_id, people.as_patient(), "Encore"), 409, "conversation_closed"
    )

    page = eventually(
        lambda: conversations(messaging, people.as_pharmacist(), "pharmacies"),
        lambda p: p["items"] and p["items"][0]["status"] == "closed",
    )
    (item,) = page["items"]
    assert item["conversation_id"] == conversation_id
    assert item["prescription_id"] == number
    assert item["finess"] == people.pharmacy
    assert [(m["from"], m["subject"]) for m in item["messages"]] == [
        ("patient", f"Ordonnance {number}"),
        ("pharmacy", "Prête à 18 h"),
        ("patient", "Merci"),
        ("pharmacy", "  fin "),
    ]
    assert [m["rpps"] for m in item["messages"]] == [
        None,
        people.pharmacist,
        None,
        people.pharmacist,
    ]
    patient_page = conversations(messaging, people.as_patient(), "patients")
    assert patient_page["items"] == page["items"]

    # A new transmission opens a new conversation, where the patient may write again.
    again = transmit(messaging, people, number, people.pharmacy, "Pour le renouvellement")
    assert again["conversation_id"] != conversation_id
    assert (
        write(messaging, again["conversation_id"], people.as_patient(), "Bonjour").status_code
        == 201
    )

    mails = outbox(settings, 6)
    to_pharmacy = [m for m in mails if m["To"] == BAL_ORG]
    assert len(to_pharmacy) == 4  # the two transmissions and the patient's two messages
    first = next(m for m in to_pharmacy if "Je passe à 18 h" in body_text(m))
    assert first["From"] == f"{people.patient}@patient.mssante.fr"
    assert first["Subject"] == f"Ordonnance {number}"
    plain = body_text(first)
    assert number in plain and "Paracétamol 1 g : 2 boîte(s) sur 2" in plain
    images = [p for p in first.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"]
    assert images[0].get_content().startswith(b"\x89PNG")
    html = body_text(first, "html")
    assert f"cid:{images[0]['Content-ID'].strip('<>')}" in html


def test_others_get_404_and_the_other_roles_too(messaging: Client, people: People) -> None:
    number = issue(messaging, people)["prescription_id"]
    conversation_id = transmit(messaging, people, number, people.pharmacy)["conversation_id"]
    for headers in (
        people.as_pharmacist(people.other_pharmacy),
        people.as_patient(people.corsican_patient),
        people.as_prescriber(),
        people.as_insurer(),
    ):
        assert_problem(write(messaging, conversation_id, headers, "Bonjour"), 404, "not_found")
    for unknown in ("not-a-uuid", number, "00000000-0000-0000-0000-000000000000"):
        assert_problem(write(messaging, unknown, people.as_patient(), "Bonjour"), 404, "not_found")


def test_a_pharmacy_without_bal_org_still_gets_it_in_its_inbox_and_the_patient_is_told(
    messaging: Client, settings: Settings, people: People
) -> None:
    number = issue(messaging, people)["prescription_id"]
    sent = transmit(messaging, people, number, people.other_pharmacy, "Bonjour")
    assert sent["pharmacy_mailbox"] is False
    inbox = eventually(
        lambda: messaging.get(
            "/v1/pharmacies/me/inbox", headers=people.as_pharmacist(people.other_pharmacy)
        ).json(),
        lambda p: p["items"],
    )
    assert [i["prescription_id"] for i in inbox["items"]] == [number]
    (notice,) = outbox(settings, 1)
    assert notice["To"] == f"{people.patient}@patient.mssante.fr"
    assert "boîte aux lettres" in body_text(notice)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"subject": "a\r\nBcc: x@example.com"}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"subject": "ok", "body": "x" * 10_001}, "body"),
        ({"body": "no subject"}, "subject"),
        ({"subject": "ok", "body": "x", "extra": 1}, "extra"),
    ],
)
def test_a_bad_message_is_refused_naming_the_field(
    messaging: Client, people: People, body: dict[str, Any], field: str
) -> None:
    number = issue(messaging, people)["prescription_id"]
    conversation_id = transmit(messaging, people, number, people.pharmacy)["conversation_id"]
    response = messaging.post(
        f"/v1/conversations/{conversation_id}/messages", json=body, headers=people.as_patient()
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_request"
    assert field in response.json()["detail"]


def test_the_lists_are_newest_activity_first_and_paginated(
    messaging: Client, people: People
) -> None:
    numbers = [issue(messaging, people)["prescription_id"] for _ in range(3)]
    ids = [transmit(messaging, people, n, people.pharmacy)["conversation_id"] for n in numbers]
    write(messaging, ids[0], people.as_pharmacist(), "Prête")  # the oldest becomes the newest
    expected = [ids[0], ids[2], ids[1]]
    page = eventually(
        lambda: conversations(messaging, people.as_pharmacist(), "pharmacies", limit=2),
        lambda p: [i["conversation_id"] for i in p["items"]] == expected[:2],
    )
    assert [i["conversation_id"] for i in page["items"]] == expected[:2]
    rest = conversations(
        messaging, people.as_pharmacist(), "pharmacies", limit=2, cursor=page["next_cursor"]
    )
    assert [i["conversation_id"] for i in rest["items"]] == expected[2:]
    assert rest["next_cursor"] is None
    assert (
        conversations(messaging, people.as_pharmacist(people.other_pharmacy), "pharmacies")["items"]
        == []
    )
    assert_problem(
        messaging.get("/v1/pharmacies/me/conversations", headers=people.as_patient()),
        403,
        "forbidden",
    )


async def conversation_views(settings: Settings, people: People) -> list[Any]:
    async with read_models_for(settings) as read_models:
        views = read_models.store
        return [
            await views.conversations_page("finess", people.pharmacy, None, 500),
            await views.conversations_page("finess", people.other_pharmacy, None, 500),
            await views.conversations_page("patient_ins", people.patient, None, 500),
            await views.prescriptions_page("patient_ins", people.patient, None, 500),
        ]


async def rebuild_everything(settings: Settings) -> None:
    async with read_models_for(settings) as read_models:
        await read_models.rebuild(READ_MODEL_NAMES, lambda position: None)


def test_the_views_equal_a_fresh_rebuild(settings: Settings, people: People) -> None:
    directory = settings.data_dir / "mssante.csv"
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.write_text(f"{people.pharmacy},{BAL_ORG}\n")
    with TestClient(
        build_app(msgspec.structs.replace(settings, mssante_directory=directory))
    ) as client:
        for finess in (people.pharmacy, people.other_pharmacy, people.pharmacy):
            number = issue(client, people, 2)["prescription_id"]
            opened = transmit(client, people, number, finess, "Bonjour")["conversation_id"]
            pharmacist = people.as_pharmacist(finess)
            write(client, opened, pharmacist, "Prête à 18 h")
            write(client, opened, people.as_patient(), "Merci")
            write(client, opened, pharmacist, "FIN")
        eventually(
            lambda: conversations(client, people.as_patient(), "patients"),
            lambda p: len(p["items"]) == 3 and all(i["status"] == "closed" for i in p["items"]),
        )
    incremental = asyncio.run(conversation_views(settings, people))
    asyncio.run(rebuild_everything(settings))
    rebuilt = asyncio.run(conversation_views(settings, people))
    assert [len(view) for view in incremental] == [2, 1, 3, 3]
    assert incremental == rebuilt


def test_the_openapi_document_describes_messaging(messaging: Client) -> None:
    schema = messaging.get("/schema/openapi.json").json()
    route = schema["paths"]["/v1/conversations/{conversation_id}/messages"]["post"]
    assert {"201", "404", "409"} <= set(route["responses"])
    assert "conversation_closed" in route["responses"]["409"]["description"]
    assert "/v1/pharmacies/me/conversations" in schema["paths"]
    assert "/v1/patients/me/conversations" in schema["paths"]
    assert "conversation_closed" in schema["info"]["description"]
    body = schema["components"]["schemas"]["MessageBody"]
    assert body["properties"]["subject"]["maxLength"] == 200


def test_the_mailers_counters_are_in_metrics(messaging: Client) -> None:
    text = messaging.get("/metrics").text
    for name in ("ordo_mailer_delivered_total", "ordo_mailer_failed_total", "ordo_mailer_pending"):
        assert name in text
