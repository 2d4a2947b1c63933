"""Every /v1 call needs a valid bearer token: missing, forged, expired or unsigned ones get 401."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from litestar.testing import TestClient

from adapters.auth import TokenVerifier, UnauthenticatedError
from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.conftest import Client, settings_for
from tools.cast import SECRET, People


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with TestClient(build_app(settings_for(tmp_path))) as test_client:
        yield test_client


def read(client: Client, token: str) -> int:
    response = client.get(
        "/v1/prescriptions/ABCDE-ABCDE-ABCDE-ABCDE", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code == 401:
        assert response.json()["code"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    return response.status_code


def claims(people: People, **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "ph-1",
        "role": "pharmacist",
        "rpps": people.pharmacist,
        "finess": people.pharmacy,
        "exp": int(time.time()) + 60,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def unsigned(payload: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_a_valid_token_passes(client: Client, people: People) -> None:
    assert read(client, jwt.encode(claims(people), SECRET, algorithm="HS256")) == 404


def test_a_missing_token_is_401(client: Client) -> None:
    response = client.get("/v1/prescriptions/ABCDE")
    assert response.status_code == 401
    assert (
        client.get("/v1/prescriptions/ABCDE", headers={"Authorization": "Basic abc"}).status_code
        == 401
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda p: jwt.encode(claims(p), "another-secret-" + "y" * 32, algorithm="HS256"),
        lambda p: jwt.encode(claims(p, exp=int(time.time()) - 5), SECRET, algorithm="HS256"),
        lambda p: unsigned(claims(p)),
        lambda p: jwt.encode(claims(p, role="admin"), SECRET, algorithm="HS256"),
        lambda p: jwt.encode(claims(p, exp=None), SECRET, algorithm="HS256"),
        lambda p: jwt.encode(claims(p, finess=None), SECRET, algorithm="HS256"),
        lambda p: jwt.encode(claims(p, rpps="12345678901"), SECRET, algorithm="HS256"),
        lambda p: "not-a-jwt",
    ],
    ids=[
        "forged-signature",
        "expired",
        "alg-none",
        "unknown-role",
        "no-exp",
        "pharmacist-without-finess",
        "rpps-with-a-bad-check-digit",
        "garbage",
    ],
)
def test_a_bad_token_is_401(client: Client, people: People, make: Callable[[People], str]) -> None:
    assert read(client, make(people)) == 401


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_production_verifies_asymmetric_tokens_against_the_public_key(
    tmp_path: Path, people: People, algorithm: str
) -> None:
    key = (
        rsa.generate_private_key(65537, 2048)
        if algorithm == "RS256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = Settings.from_env(
        {"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_PUBLIC_KEY": public_pem}
    )
    good = jwt.encode(claims(people), key, algorithm=algorithm)
    # The classic confusion attack: an HS256 token "signed" with the public key as secret.
    confused = jwt.encode(claims(people), SECRET, algorithm="HS256")

    with TestClient(build_app(settings)) as client:
        assert read(client, good) == 404
        assert read(client, confused) == 401
        assert read(client, unsigned(claims(people))) == 401


def test_a_verifier_needs_a_key() -> None:
    with pytest.raises(ValueError, match="ORDO_AUTH_SECRET"):
        TokenVerifier()


def test_a_remembered_token_still_expires(people: People) -> None:
    verifier = TokenVerifier(secret=SECRET)
    token = jwt.encode(claims(people, exp=int(time.time()) + 1), SECRET, algorithm="HS256")
    header = f"Bearer {token}"

    assert verifier.actor(header).role == "pharmacist"
    assert verifier.actor(header).role == "pharmacist"  # served from what was verified
    time.sleep(1.1)
    with pytest.raises(UnauthenticatedError, match="expired"):
        verifier.actor(header)
