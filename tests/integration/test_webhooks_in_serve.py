"""`ordo serve` delivers the webhooks itself where it runs the mailer: a pharmacist subscribes
through the API and the prescriber's transmission reaches the local receiver, signed, within the
2 seconds the contract gives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import ordo_server, wait_for
from tests.integration.smtp_relay import Relay
from tests.integration.test_webhooks import Receiver
from tools.cast import People

pytestmark = pytest.mark.postgres


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


def test_a_server_pushes_a_transmission_to_the_pharmacy_s_subscription(
    postgres_url: str, tmp_path: Path, relay: Relay, receiver: Receiver, people: People
) -> None:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"finess,address\n{people.pharmacy},a@pharmacie.mssante.fr\n")
    env = {
        "ORDO_SMTP_URL": relay.url,  # where the mailer runs in-process, so do the webhooks
        "ORDO_MSSANTE_DIRECTORY": str(directory),
        "ORDO_WEBHOOKS_ALLOW_HTTP": "true",
    }
    with ordo_server(postgres_url, tmp_path / "data", extra_env=env) as (base, _):
        made = httpx.post(
            f"{base}/v1/subscriptions",
            json={"url": receiver.url("/lgo"), "events": ["transmission"]},
            headers=people.as_pharmacist(),
        )
        assert made.status_code == 201, made.text
        receiver.secrets["/lgo"] = made.json()["secret"]
        issued = httpx.post(
            f"{base}/v1/prescriptions",
            json=people.prescription_body(2),
            headers=people.as_prescriber(),
        ).json()["prescription_id"]
        sent_at = time.monotonic()
        sent = httpx.post(
            f"{base}/v1/prescriptions/{issued}/transmissions",
            json={"finess": people.pharmacy, "message": "Sortie ce soir"},
            headers=people.as_prescriber(),
        )
        assert sent.status_code == 201, sent.text
        wait_for(lambda: receiver.received, seconds=10, what="the transmission's webhook")
        took = time.monotonic() - sent_at

    [(path, _, payload)] = receiver.received
    assert path == "/lgo"
    assert payload["type"] == "transmission"
    assert payload["data"]["message"] == "Sortie ce soir"
    assert took < 2
