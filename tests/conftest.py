"""Shared fixtures: real services, valid identities, tokens, and the app on each backend.

PostgreSQL and Kafka are found through ORDO_TEST_DATABASE_URL / ORDO_TEST_KAFKA_BOOTSTRAP
(`eval "$(scripts/services env)"`), else testcontainers where a Docker engine answers, else
the tests that need them are skipped; in CI (CI=true) a missing service is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings, with_schema
from tools.cast import SECRET, People

# A test client of the whole app (the `client` fixture, and the tests that build their own).
Client: TypeAlias = TestClient[Litestar]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_service(what: str) -> None:
    message = (
        f'{what} is not available: run `scripts/services up` and `eval "$(scripts/services env)"`'
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    url = os.environ.get("ORDO_TEST_DATABASE_URL")
    if url:
        yield url
        return
    try:
        from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    except Exception:
        missing_service("PostgreSQL")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    bootstrap = os.environ.get("ORDO_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
        return
    try:
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415

        with KafkaContainer("apache/kafka:4.1.0").with_kraft() as container:
            yield container.get_bootstrap_server()
    except Exception:
        missing_service("Kafka")


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh schema per test, so tests never see each other's prescriptions."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield with_schema(postgres_server_url, schema)
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def settings_for(data_dir: Path, database_url: str | None = None) -> Settings:
    env = {"ORDO_DATA_DIR": str(data_dir), "ORDO_AUTH_SECRET": SECRET}
    if database_url:
        env["ORDO_DATABASE_URL"] = database_url
    return Settings.from_env(env)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "postgres":
        return settings_for(tmp_path, request.getfixturevalue("postgres_url"))
    return settings_for(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with TestClient(build_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def people() -> People:
    return People()
