"""The pharmacist's own procedures through HTTP (contract v1.2 "The pharmacist's own procedures"),
with the shipped sample of the public database imported, on SQLite and PostgreSQL: an exceptional
supply of Levothyrox on an expired prescription (the prescriber told by MSSanté) and a
contraceptive extension of Minidril, in `dispensable`, the read and the history, and
`exceptional_supply_not_allowed` with the most that may be given."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec
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

LEVOTHYROX_30 = "3400930065556"  # LEVOTHYROX 25 µg, B/30
MINIDRIL_1 = "3400931823902"  # MINIDRIL, 1 plaquette de 21 comprimés


@pytest.fixture
def counter(settings: Settings, tmp_path: Path, people: People) -> Iterator[Client]:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"rpps,address\n{people.prescriber},dr.martin@medecin.mssante.fr\n")
    import_sample(settings)
    app = build_app(msgspec.structs.replace(settings, mssante_directory=directory))
    with TestClient(app) as client:
        yield client


def prescribed(client: Client, people: People, body: dict[str, Any], **changes: Any) -> str:
    response = prescribe(client, people, body, kind="standard", **changes)
    assert response.status_code == 201, response.text
    number: str = response.json()["prescription_id"]
    return number


def expired_levothyrox(client: Client, people: People) -> str:
    """3 boxes of 30 for 3 months, written 100 days ago and never dispensed: expired a week
    ago, within the month a first exceptional supply may be given in."""
    issued_on = date.today() - timedelta(days=100)
    body = line(pack(LEVOTHYROX_30, "Levothyrox 25 µg"), days=90, quantity=3)
    return prescribed(client, people, body, issued_on=str(issued_on))


def dispensable(client: Client, people: People, number: str) -> dict[str, Any]:
    response = client.get(f"/v1/prescriptions/{number}/dispensable", headers=people.as_pharmacist())
    assert response.status_code == 200, response.text
    first: dict[str, Any] = response.json()["lines"][0]
    return first


def supplied(client: Client, people: People, number: str, quantity: int, procedure: str) -> Any:
    body = {"lines": [{"line_no": 1, "quantity": quantity}], "procedure": procedure}
    return client.post(
        f"/v1/prescriptions/{number}/dispensations", json=body, headers=people.as_pharmacist()
    )


def history(client: Client, people: People, number: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_patient())
    assert response.status_code == 200, response.text
    return [entry["data"] for entry in response.json()["events"]]


def test_an_expired_chronic_treatment_is_continued_and_the_prescriber_told(
    counter: Client, people: People
) -> None:
    number = expired_levothyrox(counter, people)
    before = dispensable(counter, people, number)

    given = supplied(counter, people, number, 1, "exceptional_supply")

    assert (before["max_quantity"], before["reason"]) == (0, "prescription_expired")
    assert before["procedure"] == {
        "procedure": "exceptional_supply",
        "max_quantity": 1,
        "max_units": 30,
        "detail": "at most 30 days of treatment at once",
    }
    assert given.status_code == 201, given.text
    read = counter.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["dispensations"][0]["procedure"] == "exceptional_supply"
    assert (read["lines"][0]["dispensed"], read["status"]) == (0, "expired")
    recorded = history(counter, people, number)[1]
    assert recorded["procedure"] == "exceptional_supply"
    assert [(m["kind"], m["recipient"]) for m in recorded["mails"]] == [
        ("exceptional_supply_notice", "dr.martin@medecin.mssante.fr")
    ]
    pdf = text_of(document(counter, number, people.as_pharmacist()))
    assert "(dispensation supplémentaire exceptionnelle)" in pdf


def test_more_than_a_month_is_refused_with_the_most_that_may_be_given(
    counter: Client, people: People
) -> None:
    number = expired_levothyrox(counter, people)

    refused = supplied(counter, people, number, 2, "exceptional_supply")

    problem = assert_problem(refused, 409, "exceptional_supply_not_allowed")
    assert (problem["field"], problem["max_quantity"]) == ("lines[0].quantity", 1)


def test_a_prescription_still_valid_is_not_supplied(counter: Client, people: People) -> None:
    number = prescribed(counter, people, line(pack(LEVOTHYROX_30), days=90, quantity=3))

    refused = supplied(counter, people, number, 1, "exceptional_supply")

    assert_problem(refused, 409, "exceptional_supply_not_allowed")


def test_an_oral_contraceptive_all_given_is_extended(counter: Client, people: People) -> None:
    number = prescribed(counter, people, line(pack(MINIDRIL_1, "Minidril"), days=84, quantity=3))
    assert give(counter, people, number, 3).status_code == 201

    extended = supplied(counter, people, number, 3, "contraceptive_extension")
    too_much = supplied(counter, people, number, 4, "contraceptive_extension")

    assert extended.status_code == 201, extended.text
    read = counter.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert [d["procedure"] for d in read["dispensations"]] == [None, "contraceptive_extension"]
    assert history(counter, people, number)[2]["mails"] == []
    pdf = text_of(document(counter, number, people.as_pharmacist()))
    assert "(dispensation supplémentaire de contraceptifs oraux)" in " ".join(pdf.split())
    assert assert_problem(too_much, 409, "exceptional_supply_not_allowed")["max_quantity"] == 3


def test_an_unknown_procedure_is_refused(counter: Client, people: People) -> None:
    number = expired_levothyrox(counter, people)

    refused = supplied(counter, people, number, 1, "renewal")

    assert assert_problem(refused, 400, "invalid_request")["detail"].endswith("(at procedure)")
