"""What `scripts/bench_hapi` sends is what it claims to measure: ordo answers each call with the
expected status (a run counts successes, never refusals), the created line's id reads back and
is dispensed against; the table compares each call's rates at the same clients against issue
28's aims; the starter's checkout leaves its tests out; a connection the server closes is
not reused."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from pathlib import Path

from tests.conftest import Client
from tools.bench.load import Observation, Run, Tally, Window, make_cast
from tools.bench_hapi import calls, hapi
from tools.bench_hapi.report import comparison_rows
from tools.bench_hapi.sessions import open_sessions
from tools.cast import prescriber
from tools.harness import HOST

CAST = make_cast(prescribers=1, pharmacies=1, patients=20)


def run(target: str, clients: int, answered: int, errors: int = 0) -> Run:
    tally = Tally(latencies=[0.002] * answered, errors=Counter({"409 conflict": errors}))
    observation = Observation(cores={"server": 0.5}, sessions={})
    return Run(target, "postgres", None, clients, Window(0.0, 1.0), tally, observation)


def test_ordo_answers_each_call_as_expected(client: Client) -> None:
    token, pharmacist = CAST.prescribers[0], CAST.pharmacists[0]
    body = calls.medication_request(CAST.product, CAST.patients[0], prescriber(0).value)
    headers = {"content-type": "application/json"}

    created = client.post(
        "/fhir/R4/MedicationRequest",
        content=body,
        headers=headers | {"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    line = calls.created_id(created.content)
    read = client.get(
        f"/fhir/R4/MedicationRequest/{line}", headers={"Authorization": f"Bearer {pharmacist}"}
    )
    dispensed = client.post(
        "/fhir/R4/MedicationDispense",
        content=calls.medication_dispense(line, CAST.product),
        headers=headers | {"Authorization": f"Bearer {pharmacist}"},
    )

    assert read.status_code == 200, read.text
    assert read.json()["dispenseRequest"]["quantity"]["value"] == calls.PACKS
    assert dispensed.status_code == 201, dispensed.text


def test_each_prescriber_writes_as_themself() -> None:
    sent = calls.prescriptions(make_cast(prescribers=2, pharmacies=1, patients=40), seed=1)

    requesters = {token: body.count(f"8{prescriber(0).value}".encode()) for token, body in sent}

    assert len(sent) == 2 * calls.BODIES_PER_PRESCRIBER
    assert sorted(requesters.values()) == [0, 1]


def test_the_table_compares_each_call_at_the_same_clients_with_the_aims() -> None:
    runs = [
        run("ordo prescribe", 1, 300),
        run("ordo prescribe", 32, 900),
        run("ordo read", 32, 2000),
        run("HAPI prescribe", 1, 200),
        run("HAPI prescribe", 32, 400, errors=3),
        run("HAPI read", 32, 500),
    ]

    head, rows = comparison_rows(runs)

    by_key = {(row[0], row[1]): dict(zip(head, row, strict=True)) for row in rows}
    assert list(by_key) == [("prescribe", "1"), ("prescribe", "32"), ("read", "32")]
    assert by_key["prescribe", "1"]["ordo/HAPI"] == "1.50"
    assert by_key["prescribe", "1"]["aim"] == "≥ 1: met"
    assert by_key["prescribe", "32"]["ordo/HAPI"] == "2.25"
    assert by_key["prescribe", "32"]["aim"] == "≥ 3: **not met**"
    assert by_key["prescribe", "32"]["errors (ordo / HAPI)"] == "0 / 3 (409 conflict: 3)"
    assert by_key["read", "32"]["aim"] == "≥ 3: met"
    assert by_key["read", "32"]["ordo p50 / p99 ms"] == "2.0 / 2.0"
    assert by_key["read", "32"]["server cores (ordo / HAPI)"] == "0.50 / 0.50"
    assert by_key["read", "32"]["server CPU µs/call (ordo / HAPI)"] == "250 / 1,000"


def test_the_starter_is_checked_out_at_its_tag_without_its_tests(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    (origin / "src" / "test").mkdir(parents=True)
    (origin / "pom.xml").write_text("<project/>")
    (origin / "src" / "test" / "Big.json").write_text("{}")
    git = ["git", "-C", str(origin), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(origin)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "starter"], check=True)
    subprocess.run([*git, "tag", "image/v8.8.0-1"], check=True)
    (origin / "pom.xml").write_text("<project>later</project>")
    subprocess.run([*git, "commit", "-qam", "later"], check=True)

    tree = hapi.checkout(str(origin), "image/v8.8.0-1", tmp_path / "src")

    assert (tree / "pom.xml").read_text() == "<project/>"
    assert not (tree / "src" / "test").exists()
    assert hapi.checkout(str(origin), "image/v8.8.0-1", tree) == tree


async def test_a_session_opens_a_new_connection_after_connection_close() -> None:
    connections = 0

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_once, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        (session,) = await open_sessions(port, 1)
        answers = [await session.get("/fhir/metadata", "token") for _ in range(3)]
        await session.aclose()

    assert answers == [(200, b"ok")] * 3
    assert connections == 3
