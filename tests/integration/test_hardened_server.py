"""A real `ordo serve` (and the scripts around it), tried the way a new user or an attacker
would: its banner, a body that never arrives, the development secret beyond loopback, the port
it announces, what docker compose publishes, and a relay started before the event store."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from adapters.cli import is_loopback
from adapters.config import PUBLISHED_SECRETS
from tests.integration.servers import REPO, ordo_process, ordo_server, wait_for
from tools.cast import SECRET, People
from tools.harness import free_port


def test_the_server_names_no_software_in_its_answers(tmp_path: Path) -> None:
    with ordo_server("", tmp_path) as (base_url, _):
        answers = [httpx.get(f"{base_url}{path}") for path in ("/healthz", "/v1/nothing")]

    for answer in answers:
        assert "server" not in answer.headers, answer.headers


@pytest.mark.parametrize(
    ("path", "media"),
    [
        (b"/v1/prescriptions", "application/problem+json"),
        (b"/fhir/R4/MedicationRequest", "application/fhir+json"),
    ],
)
def test_a_body_that_never_arrives_is_answered_408(tmp_path: Path, path: bytes, media: str) -> None:
    env = {"ORDO_REQUEST_TIMEOUT_SECONDS": "1"}
    token = People().as_prescriber()["Authorization"].encode()
    with ordo_server("", tmp_path, extra_env=env) as (base_url, _):
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(
                b"POST "
                + path
                + b" HTTP/1.1\r\nHost: ordo\r\nAuthorization: "
                + token
                + b"\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                b'{"patient": '
            )
            started = time.monotonic()
            first = connection.recv(65536)
            waited = time.monotonic() - started
            answer = (first + _rest_of(connection)).decode()

    assert answer.startswith("HTTP/1.1 408"), answer
    assert media in answer
    assert '"code":"request_timeout"' in answer
    assert 0.5 < waited < 5


def _rest_of(connection: socket.socket) -> bytes:
    """What the server sends after its first packet (the body may follow the headers),
    until it closes the connection or stays silent for a second."""
    connection.settimeout(1)
    rest = b""
    with contextlib.suppress(TimeoutError):
        while chunk := connection.recv(65536):
            rest += chunk
    return rest


def serve(host: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--host", host, "--port", str(free_port())],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("ORDO_AUTH")} | env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "ordo.example"])  # noqa: S104
def test_serve_refuses_to_listen_beyond_loopback_with_the_development_secret(
    tmp_path: Path, host: str
) -> None:
    for secret in ({}, {"ORDO_AUTH_SECRET": next(iter(PUBLISHED_SECRETS))}):
        refused = serve(host, {"ORDO_DATA_DIR": str(tmp_path), **secret})

        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert "development secret" in lines[0]
        assert "ORDO_AUTH_PUBLIC_KEY" in lines[0] and "ORDO_AUTH_SECRET" in lines[0]


def test_loopback_hosts_are_told_apart_from_the_others() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "ordo.example", ""]))  # noqa: S104


def test_scripts_serve_announces_the_port_it_listens_on(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(REPO / "scripts" / "serve"), "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: uv and the server it starts stop together
    )
    try:
        assert process.stderr is not None
        announced = process.stderr.readline()
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), what="the server")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    assert f"http://127.0.0.1:{port} " in announced, announced
    assert ":8000" not in announced


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_docker_compose_publishes_the_api_on_loopback_with_no_secret_written() -> None:
    text = (REPO / "docker" / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    published = compose["services"]["api"]["ports"]
    defaults = compose["x-ordo-environment"]

    assert published == ["${ORDO_HTTP_BIND:-127.0.0.1}:${ORDO_HTTP_PORT:-8000}:8000"]
    assert defaults["ORDO_AUTH_SECRET"] == "${ORDO_AUTH_SECRET:-}"
    assert not any(secret in text for secret in PUBLISHED_SECRETS)


@pytest.mark.postgres
@pytest.mark.kafka
def test_a_relay_started_before_the_event_store_waits_with_one_line(
    postgres_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {
        "ORDO_DATABASE_URL": postgres_url,
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ORDO_KAFKA_TOPIC": f"ordo.test.{tag}",
    }
    log_path = tmp_path / "relay.log"
    with ordo_process(["relay"], env, log_path):
        wait_for(lambda: "waiting for the event store" in log_path.read_text(), what="waiting")
        time.sleep(3)  # a relay retrying with a traceback a second would have logged three by now
        waiting = log_path.read_text()
        with ordo_server(postgres_url, tmp_path, extra_env=env):
            wait_for(lambda: "relay leading" in log_path.read_text(), what="the relay to start")
    lines = waiting.strip().splitlines()

    assert len(lines) == 1, waiting
    assert '"level": "info"' in lines[0]
    assert not re.search(r"error|Traceback", log_path.read_text())
