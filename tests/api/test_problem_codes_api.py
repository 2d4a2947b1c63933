"""Each problem a sample of operations lists in the OpenAPI document is one it answers: every
listed code provoked, on the embedded default and on PostgreSQL. (That no operation answers a
problem it does not list is checked on every API test: tests/api/conftest.py.)

Three are left to other tests: `request_timeout` needs a body that stalls on the socket
(tests/integration/test_hardened_server.py), `busy` an append lost 200 times in a row (the unit
of work's race tests, tests/adapters/), `database_unavailable` a database gone away
(tests/integration/test_failover.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from adapters.http.problem_codes import PROBLEMS_OF, Problems
from tests.api.test_conversations_api import transmit, write
from tests.api.test_prescriptions_api import issue
from tests.conftest import Client
from tools.cast import People

NOT_PROVOKED_HERE = frozenset(
    {(408, "request_timeout"), (503, "busy"), (503, "database_unavailable")}
)
TOO_LARGE = {"reason": "x" * 70_000}
BAD_CURSOR = {"cursor": "not-a-cursor"}
Provoke = Callable[[Client, People], list[Any]]


@pytest.fixture
def limited(settings: Settings, people: People) -> Iterator[Client]:
    """The app with a rate limit one caller (the insurer, in these tests) goes past, and an
    MSSanté directory for the conversations. One call a minute refills the burst: the 31 calls
    of `rate_limited` never earn a token back, however slow the machine."""
    directory = settings.data_dir / "mssante.csv"
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.write_text(f"finess,address\n{people.pharmacy},officine@pharmacie.mssante.fr\n")
    changed = msgspec.structs.replace(
        settings, mssante_directory=directory, rate_limit_per_minute=1, rate_limit_burst=30
    )
    with TestClient(build_app(changed)) as client:
        yield client


def rate_limited(client: Client, people: People, method: str, url: str) -> Any:
    """The 31st call of a caller within the burst of 30."""
    answers = [client.request(method, url, headers=people.as_insurer()) for _ in range(31)]
    return answers[-1]


def cancel(client: Client, people: People) -> list[Any]:
    number = issue(client, people)["prescription_id"]
    url = f"/v1/prescriptions/{number}/cancel"
    reason = {"reason": "erreur de patient"}
    keyed = {**people.as_prescriber(), "Idempotency-Key": "k-1"}
    return [
        client.post(url, json=reason),
        client.post(url, json=reason, headers=people.as_pharmacist()),
        client.post(url, json={"reason": 7}, headers=people.as_prescriber()),
        client.post(url, json=TOO_LARGE, headers=people.as_prescriber()),
        client.post(url, json=reason, headers=people.as_prescriber(people.other_prescriber)),
        client.post(url, json=reason, headers=keyed),
        client.post(url, json={"reason": "doublon"}, headers=keyed),
        client.post(url, json=reason, headers=people.as_prescriber()),  # cancelled already
        rate_limited(client, people, "POST", url),
    ]


def send_to_patient(client: Client, people: People) -> list[Any]:
    number = issue(client, people)["prescription_id"]
    url = f"/v1/prescriptions/{number}/send-to-patient"
    message = {"message": "Votre ordonnance"}
    keyed = {**people.as_prescriber(), "Idempotency-Key": "k-2"}
    cancelled = issue(client, people)["prescription_id"]
    client.post(
        f"/v1/prescriptions/{cancelled}/cancel",
        json={"reason": "erreur"},
        headers=people.as_prescriber(),
    )
    return [
        client.post(url, json=message),
        client.post(url, json=message, headers=people.as_patient()),
        client.post(url, json={"message": 7}, headers=people.as_prescriber()),
        client.post(url, json={"message": "x" * 70_000}, headers=people.as_prescriber()),
        client.post(url, json=message, headers=people.as_prescriber(people.other_prescriber)),
        client.post(url, json=message, headers=keyed),
        client.post(url, json={"message": "autre"}, headers=keyed),
        client.post(
            f"/v1/prescriptions/{cancelled}/send-to-patient",
            json=message,
            headers=people.as_prescriber(),
        ),
        rate_limited(client, people, "POST", url),
    ]


def message(client: Client, people: People) -> list[Any]:
    number = issue(client, people)["prescription_id"]
    conversation_id = transmit(client, people, number, people.pharmacy)["conversation_id"]
    url = f"/v1/conversations/{conversation_id}/messages"
    keyed = {**people.as_patient(), "Idempotency-Key": "k-3"}
    answers = [
        client.post(url, json={"subject": "Bonjour"}),
        client.post(url, json={"subject": ""}, headers=people.as_patient()),
        client.post(url, json={"subject": "x", "body": "x" * 70_000}, headers=people.as_patient()),
        client.post(url, json={"subject": "Bonjour"}, headers=people.as_prescriber()),
        client.post(url, json={"subject": "Bonjour"}, headers=keyed),
        client.post(url, json={"subject": "Bonsoir"}, headers=keyed),
        rate_limited(client, people, "POST", url),
    ]
    write(client, conversation_id, people.as_pharmacist(), "FIN")
    return [*answers, write(client, conversation_id, people.as_patient(), "Encore")]


def read(client: Client, people: People) -> list[Any]:
    number = issue(client, people)["prescription_id"]
    url = f"/v1/prescriptions/{number}"
    return [
        client.get(url),
        client.get(url, headers=people.as_prescriber(people.other_prescriber)),
        client.get(url, params={"as_of": "hier"}, headers=people.as_prescriber()),
        rate_limited(client, people, "GET", url),
    ]


def inbox(client: Client, people: People) -> list[Any]:
    url = "/v1/pharmacies/me/inbox"
    return [
        client.get(url),
        client.get(url, headers=people.as_patient()),
        client.get(url, params={"limit": 0}, headers=people.as_pharmacist()),
        client.get(url, params=BAD_CURSOR, headers=people.as_pharmacist()),
        rate_limited(client, people, "GET", url),
    ]


def product(client: Client, people: People) -> list[Any]:
    return [
        client.get(f"/v1/products/{people.paracetamol}"),
        client.get(f"/v1/products/{people.paracetamol}", headers=people.as_pharmacist()),
        client.get("/v1/products/3400930000008", headers=people.as_pharmacist()),
        rate_limited(client, people, "GET", f"/v1/products/{people.paracetamol}"),
    ]


SAMPLE: dict[tuple[str, str], Provoke] = {
    ("POST", "/v1/prescriptions/{prescription_id}/cancel"): cancel,
    ("POST", "/v1/prescriptions/{prescription_id}/send-to-patient"): send_to_patient,
    ("POST", "/v1/conversations/{conversation_id}/messages"): message,
    ("GET", "/v1/prescriptions/{prescription_id}"): read,
    ("GET", "/v1/pharmacies/me/inbox"): inbox,
    ("GET", "/v1/products/{cip13}"): product,
}


def answered(answers: list[Any]) -> Problems:
    return frozenset(
        (answer.status_code, answer.json()["code"])
        for answer in answers
        if answer.headers["content-type"].startswith("application/problem+json")
    )


@pytest.mark.parametrize("operation", SAMPLE, ids=" ".join)
def test_every_problem_listed_for_an_operation_is_one_it_answers(
    limited: Client, people: People, operation: tuple[str, str]
) -> None:
    answers = SAMPLE[operation](limited, people)

    assert answered(answers) == PROBLEMS_OF[operation] - NOT_PROVOKED_HERE
