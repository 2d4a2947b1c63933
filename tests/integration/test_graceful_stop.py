"""`ordo serve` stopped by SIGTERM (a deployment's rolling restart): what it was already
reading is answered before it exits."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import msgspec

from tests.integration.servers import ordo_server
from tools.cast import People


def test_a_request_in_flight_at_sigterm_is_answered_before_the_server_stops(
    tmp_path: Path, people: People
) -> None:
    body = msgspec.json.encode(people.prescription_body())
    with ordo_server("", tmp_path) as (base_url, process):
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
    assert returncode == -signal.SIGTERM  # uvicorn re-raises the signal once it has stopped


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
