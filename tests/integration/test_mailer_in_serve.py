"""`ordo serve` on PostgreSQL with a relay (ORDO_SMTP_URL) delivers the e-mails itself, behind
`ordo mailer`'s advisory lock: of two servers one delivers and the other waits, and a
prescriber's transmission's e-mail (its PDF drawn by the server) reaches the real SMTP
server once. With ORDO_MAILER=off no server
delivers, and each says at start that `ordo mailer` must run."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import ordo_server, wait_for
from tests.integration.smtp_relay import Relay
from tools.cast import People

BAL_ORG = "pharmacie.centrale@pharmacie.mssante.fr"

pytestmark = pytest.mark.postgres


def mailer_env(tmp_path: Path, relay: Relay, people: People, **more: str) -> dict[str, str]:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"finess,address\n{people.pharmacy},{BAL_ORG}\n")
    return {"ORDO_SMTP_URL": relay.url, "ORDO_MSSANTE_DIRECTORY": str(directory), **more}


def transmitted(base_url: str, people: People) -> list[str]:
    """A prescriber sends a prescription to the pharmacy: the Message-IDs its events recorded."""
    issued = httpx.post(
        f"{base_url}/v1/prescriptions",
        json=people.prescription_body(2),
        headers=people.as_prescriber(),
    )
    number = issued.json()["prescription_id"]
    sent = httpx.post(
        f"{base_url}/v1/prescriptions/{number}/transmissions",
        json={"finess": people.pharmacy, "message": "Sortie ce soir"},
        headers=people.as_prescriber(),
    )
    assert sent.status_code == 201, sent.text
    events = httpx.get(
        f"{base_url}/v1/prescriptions/{number}/events", headers=people.as_patient()
    ).json()["events"]
    return [mail["message_id"] for event in events for mail in event["data"].get("mails", [])]


def test_two_servers_deliver_a_transmissions_email_once(
    postgres_url: str, tmp_path: Path, relay: Relay, people: People
) -> None:
    env = mailer_env(tmp_path, relay, people)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with (
        ordo_server(postgres_url, tmp_path / "first", extra_env=env, log=first_log) as (one, _),
        ordo_server(postgres_url, tmp_path / "second", extra_env=env, log=second_log),
    ):
        recorded = transmitted(one, people)
        wait_for(lambda: relay.handler.received, what="the transmission's e-mail")
        time.sleep(2)  # time enough for a second delivery, were there one

    assert len(recorded) == 1
    assert relay.handler.message_ids() == recorded
    assert [r.recipients for r in relay.handler.received] == [[BAL_ORG]]
    logs = [first_log.read_text(), second_log.read_text()]
    assert all("mailer_in_process" in text for text in logs)
    assert sum("mailer leading" in text for text in logs) == 1  # the other one waits


def test_with_the_mailer_off_nothing_is_delivered_and_the_start_says_so(
    postgres_url: str, tmp_path: Path, relay: Relay, people: People
) -> None:
    env = mailer_env(tmp_path, relay, people, ORDO_MAILER="off")
    server_log = tmp_path / "server.log"
    with ordo_server(postgres_url, tmp_path / "data", extra_env=env, log=server_log) as (url, _):
        recorded = transmitted(url, people)
        time.sleep(3)  # a mailer in this server would have delivered by now

    assert len(recorded) == 1
    assert relay.handler.received == []
    started = server_log.read_text()
    assert "mailer_not_in_process" in started
    assert "`ordo mailer` must run" in started
