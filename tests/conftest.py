"""Shared fixtures: real services, valid identities, tokens, and the app on each backend.

PostgreSQL and Kafka are found through ORDO_TEST_DATABASE_URL / ORDO_TEST_KAFKA_BOOTSTRAP
(`eval "$(scripts/services env)"`), else testcontainers where a Docker engine answers, else
the tests that need them are skipped; in CI (CI=true) a missing service is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from adapters.auth import sign_token
from adapters.bootstrap import build_app
from adapters.config import Settings
from domain.identifiers import Cip13, Finess, Ins, Rpps

SECRET = "test-secret-" + "x" * 32
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
    separator = "&" if "?" in postgres_server_url else "?"
    yield f"{postgres_server_url}{separator}schema={schema}"
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
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(build_app(settings)) as test_client:
        yield test_client


@dataclass(frozen=True)
class People:
    """A small cast: two prescribers, two patients, two pharmacies."""

    prescriber: str = Rpps.from_body("1000123456").value
    other_prescriber: str = Rpps.from_body("1000777777").value
    pharmacist: str = Rpps.from_body("2000123456").value
    patient: str = Ins.from_body("1841276451089").value
    corsican_patient: str = Ins.from_body("290022A001001").value
    pharmacy: str = Finess.from_body("75071218").value
    other_pharmacy: str = Finess.from_body("13000123").value
    paracetamol: str = Cip13.from_body("340093000000").value
    generic: str = Cip13.from_body("340093999999").value

    def headers(self, role: str, **identity: str) -> dict[str, str]:
        token = sign_token(SECRET, role=role, subject=f"{role}-test", **identity)
        return {"Authorization": f"Bearer {token}"}

    def as_prescriber(self, rpps: str | None = None) -> dict[str, str]:
        return self.headers("prescriber", rpps=rpps or self.prescriber)

    def as_pharmacist(self, finess: str | None = None) -> dict[str, str]:
        return self.headers("pharmacist", rpps=self.pharmacist, finess=finess or self.pharmacy)

    def as_patient(self, ins: str | None = None) -> dict[str, str]:
        return self.headers("patient", ins=ins or self.patient)

    def as_insurer(self) -> dict[str, str]:
        return self.headers("insurer")

    def prescription_body(self, *quantities: int, consent: bool = True) -> dict[str, object]:
        return {
            "patient": {"ins": self.patient},
            "execution_view_consent": consent,
            "lines": [
                {
                    "product": {
                        "system": "CIP13",
                        "code": self.paracetamol,
                        "label": "Paracétamol 1 g",
                    },
                    "quantity": quantity,
                    "dosage": "1 comprimé 3 fois par jour",
                    "duration_days": 8,
                }
                for quantity in (quantities or (3,))
            ],
        }


@pytest.fixture(scope="session")
def people() -> People:
    return People()
