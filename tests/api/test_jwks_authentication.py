"""Tokens from an identity provider: keys fetched from its JWKS by `kid`, issuer and audience
checked; a real HTTP server publishes the keys and rotates them mid-test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import Algorithm, ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from litestar.testing import TestClient

from adapters.auth import TokenVerifier, UnauthenticatedError
from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.conftest import Client
from tools.cast import People

ISSUER = "https://auth.esante.example/realms/pro"
AUDIENCE = "ordo-api"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: PrivateKey

    @classmethod
    def new(cls, kid: str, algorithm: str = "RS256") -> SigningKey:
        private: PrivateKey
        if algorithm == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = ed25519.Ed25519PrivateKey.generate()
        return cls(kid, algorithm, private)

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        kind: dict[str, type[Algorithm]] = {
            "RS256": RSAAlgorithm,
            "ES256": ECAlgorithm,
            "EdDSA": OKPAlgorithm,
        }
        published: dict[str, Any] = kind[self.algorithm].to_jwk(public, as_dict=True)
        return {**published, "kid": self.kid, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, people: People, **changes: Any) -> str:
        claims: dict[str, Any] = {
            "sub": "psc-8001234",
            "role": "pharmacist",
            "rpps": people.pharmacist,
            "finess": people.pharmacy,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": int(time.time()) + 300,
        }
        claims.update(changes)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid})


@dataclass
class IdentityProvider:
    """A JWKS endpoint on a free local port: the keys it publishes, and how often it was asked."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def publish(self, *keys: SigningKey) -> None:
        self.keys = list(keys)


@pytest.fixture
def provider() -> Iterator[IdentityProvider]:
    published = IdentityProvider()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            published.fetches += 1
            body = json.dumps({"keys": [key.jwk() for key in published.keys]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            """Quiet: the test output is ours."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    published.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield published
    finally:
        server.shutdown()
        server.server_close()


def settings_with(tmp_path: Path, provider: IdentityProvider, **env: str) -> Settings:
    return Settings.from_env(
        {
            "ORDO_DATA_DIR": str(tmp_path),
            "ORDO_AUTH_JWKS_URL": provider.url,
            "ORDO_AUTH_ISSUER": ISSUER,
            "ORDO_AUTH_AUDIENCE": AUDIENCE,
            **env,
        }
    )


@pytest.fixture
def client(tmp_path: Path, provider: IdentityProvider) -> Iterator[Client]:
    with TestClient(build_app(settings_with(tmp_path, provider))) as test_client:
        yield test_client


def status(client: Client, token: str) -> int:
    """401 when the token is refused; 404 (no such prescription) once it is accepted."""
    response = client.get(
        "/v1/prescriptions/ABCDE-ABCDE-ABCDE-ABCDE", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code == 401:
        assert response.json()["code"] == "unauthenticated"
    return response.status_code


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_a_token_signed_with_a_published_key_is_accepted(
    client: Client, provider: IdentityProvider, people: People, algorithm: str
) -> None:
    key = SigningKey.new("k-2026", algorithm)
    provider.publish(key)

    assert status(client, key.sign(people)) == 404


def test_the_keys_are_fetched_once_and_reused(
    client: Client, provider: IdentityProvider, people: People
) -> None:
    key = SigningKey.new("k-1")
    provider.publish(key)

    for subject in ("a", "b", "c"):
        assert status(client, key.sign(people, sub=subject)) == 404

    assert provider.fetches == 1


@pytest.mark.parametrize(
    ("what", "changes"),
    [
        ("wrong issuer", {"iss": "https://elsewhere.example"}),
        ("no issuer", {"iss": None}),
        ("wrong audience", {"aud": "another-api"}),
        ("no audience", {"aud": None}),
        ("expired", {"exp": int(time.time()) - 10}),
    ],
)
def test_a_token_for_someone_else_is_refused(
    client: Client, provider: IdentityProvider, people: People, what: str, changes: dict[str, Any]
) -> None:
    key = SigningKey.new("k-1")
    provider.publish(key)

    assert status(client, key.sign(people, **changes)) == 401, what


def test_an_unknown_kid_is_refused(
    client: Client, provider: IdentityProvider, people: People
) -> None:
    provider.publish(SigningKey.new("k-1"))
    stranger = SigningKey.new("k-1")  # same kid, another key: the signature fails
    unknown = SigningKey.new("k-unknown")

    assert status(client, stranger.sign(people)) == 401
    assert status(client, unknown.sign(people)) == 401


def test_an_hs256_token_is_refused_when_jwks_is_configured(
    client: Client, provider: IdentityProvider, people: People
) -> None:
    key = SigningKey.new("k-1")
    provider.publish(key)
    claims: dict[str, object] = {"sub": "x", "role": "insurer", "iss": ISSUER, "aud": AUDIENCE}
    claims["exp"] = int(time.time()) + 60
    shared_secret = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": "k-1"})
    # The classic confusion: the provider's public key used as an HMAC secret.
    public_as_secret = hmac_signed(claims, key.public_pem(), kid="k-1")

    assert status(client, shared_secret) == 401
    assert status(client, public_as_secret) == 401
    assert status(client, key.sign(people)) == 404


def hmac_signed(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token signed by hand (PyJWT itself refuses a PEM as an HMAC secret)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()
    signing_input = f"{part(header)}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def test_a_rotated_key_is_fetched_on_its_first_token(
    tmp_path: Path, provider: IdentityProvider, people: People
) -> None:
    old, new = SigningKey.new("k-2026-01"), SigningKey.new("k-2026-02", "ES256")
    provider.publish(old)
    with TestClient(build_app(settings_with(tmp_path, provider))) as client:
        client.app.state.verifier = TokenVerifier(
            jwks_url=provider.url, issuer=ISSUER, audience=AUDIENCE, jwks_cooldown_seconds=0.2
        )
        assert status(client, old.sign(people)) == 404

        provider.publish(new)  # the provider rotates: the old key is withdrawn
        time.sleep(0.3)

        assert status(client, new.sign(people)) == 404
        assert status(client, old.sign(people, sub="a new token")) == 401
        assert provider.fetches == 2  # the withdrawn kid came within the cooldown: no fetch


def test_unknown_kids_refresh_the_keys_at_most_once_per_cooldown(
    provider: IdentityProvider, people: People
) -> None:
    provider.publish(SigningKey.new("k-1"))
    verifier = TokenVerifier(jwks_url=provider.url, jwks_cooldown_seconds=60)
    forged = [SigningKey.new(f"forged-{n}").sign(people) for n in range(20)]

    for token in forged:
        with pytest.raises(UnauthenticatedError):
            verifier.actor(f"Bearer {token}")

    assert provider.fetches == 1


def test_an_unreachable_provider_refuses_the_token_with_401(
    tmp_path: Path, provider: IdentityProvider, people: People
) -> None:
    key = SigningKey.new("k-1")
    settings = Settings.from_env(
        {"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_JWKS_URL": "http://127.0.0.1:9/jwks.json"}
    )
    with TestClient(build_app(settings)) as client:
        assert status(client, key.sign(people)) == 401


def test_issuer_and_audience_also_apply_to_a_configured_public_key(
    tmp_path: Path, people: People
) -> None:
    key = SigningKey.new("k-1", "ES256")
    settings = Settings.from_env(
        {
            "ORDO_DATA_DIR": str(tmp_path),
            "ORDO_AUTH_PUBLIC_KEY": key.public_pem().decode(),
            "ORDO_AUTH_ISSUER": ISSUER,
            "ORDO_AUTH_AUDIENCE": AUDIENCE,
        }
    )
    with TestClient(build_app(settings)) as client:
        assert status(client, key.sign(people)) == 404
        assert status(client, key.sign(people, iss="https://elsewhere.example")) == 401
        assert status(client, key.sign(people, aud="another-api")) == 401


def test_jwks_needs_no_local_secret(tmp_path: Path, provider: IdentityProvider) -> None:
    settings = settings_with(tmp_path, provider)

    assert settings.auth_secret is None
    assert not (tmp_path / "auth-secret").exists()
