"""`ordo serve` under each HTTP server it can run (ORDO_HTTP_SERVER): the same answers, limits,
request ids, workers and graceful stop, whichever server carries them."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from adapters.config import Settings
from tests.integration.servers import ordo_server
from tools.cast import People

SERVERS = ["uvicorn", "granian"]


@pytest.mark.parametrize("server", SERVERS)
def test_a_prescription_issued_and_dispensed_through_each_server(
    postgres_url: str, tmp_path: Path, people: People, server: str
) -> None:
    env = {"ORDO_HTTP_SERVER": server}
    with ordo_server(postgres_url, tmp_path, workers=2, extra_env=env) as (base_url, _):
        with httpx.Client(base_url=base_url, timeout=10) as client:
            issued = client.post(
                "/v1/prescriptions",
                json=people.prescription_body(),
                headers=people.as_prescriber(),
            )
            number = issued.json()["prescription_id"]
            dispensed = client.post(
                f"/v1/prescriptions/{number}/dispensations",
                json={"lines": [{"line_no": 1, "quantity": 1}]},
                headers=people.as_pharmacist(),
            )

    assert issued.status_code == 201, issued.text
    assert dispensed.status_code == 201, dispensed.text
    assert len(dispensed.headers["x-request-id"]) == 32


@pytest.mark.parametrize("server", SERVERS)
def test_each_server_refuses_an_oversize_body_and_times_out_a_stalled_one(
    tmp_path: Path, people: People, server: str
) -> None:
    env = {"ORDO_HTTP_SERVER": server, "ORDO_REQUEST_TIMEOUT_SECONDS": "1"}
    with ordo_server("", tmp_path, extra_env=env) as (base_url, _):
        oversize = httpx.post(
            f"{base_url}/v1/prescriptions/ABCDE/cancel",
            content=b'{"reason": "' + b"x" * 200_000 + b'"}',
            headers={**people.as_prescriber(), "content-type": "application/json"},
        )
        stalled = _stalled_post(int(base_url.rsplit(":", 1)[1]), people)

    assert oversize.status_code == 413
    assert stalled.startswith("HTTP/1.1 408"), stalled


@pytest.mark.parametrize("server", SERVERS)
def test_a_request_in_flight_at_sigterm_is_answered_before_the_server_stops(
    tmp_path: Path, people: People, server: str
) -> None:
    body = msgspec.json.encode(people.prescription_body())
    env = {"ORDO_HTTP_SERVER": server}
    with ordo_server("", tmp_path, extra_env=env) as (base_url, process):
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(_post_head(people, len(body)) + body[:10])
            time.sleep(0.5)  # the request is being read
            process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            connection.sendall(body[10:])
            answer = connection.recv(65536).decode()
        returncode = process.wait(15)

    assert answer.startswith("HTTP/1.1 201"), answer
    assert returncode in {0, -signal.SIGTERM}  # uvicorn re-raises the signal once stopped


def test_an_unknown_server_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ORDO_HTTP_SERVER"):
        Settings.from_env({"ORDO_HTTP_SERVER": "gunicorn", "ORDO_DATA_DIR": str(tmp_path)})


def _stalled_post(port: int, people: People) -> str:
    """A POST that announces 500 bytes and sends 12: what the server answers, as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(_post_head(people, 500) + b'{"patient": ')
        started = time.monotonic()
        answer = connection.recv(65536).decode()
        assert time.monotonic() - started < 5
        return answer


def _post_head(people: People, length: int) -> bytes:
    """A prescriber's POST /v1/prescriptions, up to the body that should follow."""
    token = people.as_prescriber()["Authorization"].encode()
    return (
        b"POST /v1/prescriptions HTTP/1.1\r\nHost: ordo\r\nAuthorization: "
        + token
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(length).encode()
        + b"\r\n\r\n"
    )
