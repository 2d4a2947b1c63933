"""`/v1/subscriptions` on the embedded default and on PostgreSQL: a pharmacist subscribes their
pharmacy and a prescriber themself, the secret is answered once (again to a retry under the same
Idempotency-Key), another's subscription is unknown, a URL that is not https is refused."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.api.test_prescriptions_api import assert_problem
from tests.conftest import Client
from tools.cast import People

URL = "https://logiciel.pharmacie.example/webhooks"


@pytest.fixture
def api(settings: Settings) -> Iterator[Client]:
    # Only the pushes are asked for here: the deliverer is `ordo webhooks`'s (tests/integration).
    with TestClient(build_app(msgspec.structs.replace(settings, mailer_in_process=False))) as c:
        yield c


def test_a_pharmacist_subscribes_their_pharmacy_and_reads_it_back(
    api: Client, people: People
) -> None:
    made = api.post(
        "/v1/subscriptions",
        json={"url": URL, "events": ["transmission"]},
        headers=people.as_pharmacist(),
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert (body["url"], body["events"]) == (URL, ["transmission"])

    read = api.get(f"/v1/subscriptions/{body['subscription_id']}", headers=people.as_pharmacist())

    assert read.status_code == 200, read.text
    assert "secret" not in read.json()
    assert read.json()["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}


def test_a_retry_under_the_same_key_gets_the_first_subscription_and_secret(
    api: Client, people: People
) -> None:
    headers = {**people.as_prescriber(), "Idempotency-Key": "abonnement-1"}
    body = {"url": URL, "events": ["cancellation"]}
    first = api.post("/v1/subscriptions", json=body, headers=headers)
    again = api.post("/v1/subscriptions", json=body, headers=headers)
    other = api.post("/v1/subscriptions", json={**body, "url": URL + "/2"}, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert_problem(other, 422, "idempotency_key_reused")


def test_another_pharmacy_s_subscription_is_unknown_and_a_deleted_one_too(
    api: Client, people: People
) -> None:
    made = api.post(
        "/v1/subscriptions",
        json={"url": URL, "events": ["transmission"]},
        headers=people.as_pharmacist(),
    ).json()
    at = f"/v1/subscriptions/{made['subscription_id']}"

    assert_problem(
        api.get(at, headers=people.as_pharmacist(people.other_pharmacy)), 404, "not_found"
    )
    assert_problem(api.delete(at, headers=people.as_prescriber()), 404, "not_found")
    assert api.delete(at, headers=people.as_pharmacist()).status_code == 204
    assert_problem(api.get(at, headers=people.as_pharmacist()), 404, "not_found")


def test_a_patient_does_not_subscribe_and_a_plain_http_url_is_refused(
    api: Client, people: People
) -> None:
    body = {"url": URL, "events": ["transmission"]}
    assert_problem(
        api.post("/v1/subscriptions", json=body, headers=people.as_patient()), 403, "forbidden"
    )
    plain = {**body, "url": "http://logiciel.pharmacie.example/webhooks"}
    assert_problem(
        api.post("/v1/subscriptions", json=plain, headers=people.as_pharmacist()),
        422,
        "invalid_request",
    )
