"""Conversations reach their views through the relay, Kafka and a worker, like every view, and
those views equal a fresh rebuild."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.servers import ordo_server, wait_for
from tests.integration.test_kafka import (
    assert_views_equal_a_fresh_rebuild,
    kafka_env,
    relay,
    worker,
)
from tools.cast import People

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
__all__ = ["kafka_env"]  # the fixture, for pytest


def conversations_of(base_url: str, people: People) -> list[Any]:
    page = httpx.get(
        f"{base_url}/v1/pharmacies/me/conversations", headers=people.as_pharmacist()
    ).json()
    items: list[Any] = page["items"]
    return items


def test_a_conversation_reaches_the_pharmacys_list_through_kafka(
    kafka_env: dict[str, str], tmp_path: Path, people: People
) -> None:
    url = kafka_env["ORDO_DATABASE_URL"]
    with (
        ordo_server(url, tmp_path, extra_env=kafka_env) as (base_url, _),
        relay(kafka_env, tmp_path),
        worker(kafka_env, tmp_path),
    ):
        number = httpx.post(
            f"{base_url}/v1/prescriptions",
            json=people.prescription_body(2),
            headers=people.as_prescriber(),
        ).json()["prescription_id"]
        sent = httpx.post(
            f"{base_url}/v1/prescriptions/{number}/transmissions",
            json={"finess": people.pharmacy, "message": "Je passe à 18 h"},
            headers=people.as_patient(),
        ).json()
        for subject in ("Prête à 18 h", "FIN"):
            answer = httpx.post(
                f"{base_url}/v1/conversations/{sent['conversation_id']}/messages",
                json={"subject": subject, "body": ""},
                headers=people.as_pharmacist(),
            )
            assert answer.status_code == 201, answer.text

        wait_for(
            lambda: [c["status"] for c in conversations_of(base_url, people)] == ["closed"],
            seconds=30,
            what="the closed conversation in the pharmacy's list",
        )
        (listed,) = conversations_of(base_url, people)
        assert [m["subject"] for m in listed["messages"]] == [
            f"Ordonnance {number}",
            "Prête à 18 h",
            "FIN",
        ]
    assert_views_equal_a_fresh_rebuild(url, tmp_path)
