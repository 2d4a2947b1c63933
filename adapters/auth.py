"""Bearer tokens: who the caller is, checked on every /v1 call.

Development and tests sign with HS256 and a shared secret (`ORDO_AUTH_SECRET`); production
verifies asymmetric tokens (RS256 or EdDSA, as an identity provider such as Pro Santé Connect
issues) against `ORDO_AUTH_PUBLIC_KEY`. The accepted algorithms are pinned by the key's kind,
so `alg: none` or an HS256 token forged with the public key as secret never verifies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import msgspec

from domain.actors import ROLES, Actor
from domain.identifiers import Finess, Ins, InvalidIdentifier, Rpps

ASYMMETRIC_ALGORITHMS = ["RS256", "EdDSA"]
VERIFIED_TOKENS_KEPT = 10_000
IDENTITY_CLAIMS = {"prescriber": ("rpps",), "pharmacist": ("rpps", "finess"), "patient": ("ins",)}


class UnauthenticatedError(Exception):
    """No valid bearer token: answered 401 whatever the route."""


class TokenVerifier:
    def __init__(self, *, secret: str | None = None, public_key: str | None = None) -> None:
        if public_key:
            self._key: str = public_key
            self._algorithms = ASYMMETRIC_ALGORITHMS
        elif secret:
            self._key = secret
            self._algorithms = ["HS256"]
        else:
            msg = "set ORDO_AUTH_SECRET (HS256) or ORDO_AUTH_PUBLIC_KEY (RS256/EdDSA)"
            raise ValueError(msg)
        self._verified: dict[str, tuple[Actor, float]] = {}

    def actor(self, authorization: str | None) -> Actor:
        """The caller named by an `Authorization: Bearer …` header, or UnauthenticatedError.

        A pharmacy's software sends the same token on every call, so a token whose signature
        was verified is remembered (bounded) with its expiry, which is still checked each time.
        """
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("missing bearer token")
        known = self._verified.get(token)
        if known is None:
            known = self._verify(token)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                self._verified.clear()
            self._verified[token] = known
        actor, expires = known
        if time.time() >= expires:
            raise UnauthenticatedError("invalid token: Signature has expired")
        return actor

    def _verify(self, token: str) -> tuple[Actor, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.PyJWTError as error:
            raise UnauthenticatedError(f"invalid token: {error}") from None
        return actor_from_claims(claims), float(claims["exp"])


def actor_from_claims(claims: dict[str, Any]) -> Actor:
    role = claims.get("role")
    if role not in ROLES:
        raise UnauthenticatedError(f"unknown role {role!r}")
    identity = {name: claims.get(name) for name in IDENTITY_CLAIMS.get(role, ())}
    missing = [name for name, value in identity.items() if not isinstance(value, str)]
    if missing:
        raise UnauthenticatedError(f"a {role} token needs the claim(s) {', '.join(missing)}")
    try:
        canonical = _canonical_identity(identity)
    except InvalidIdentifier as error:
        raise UnauthenticatedError(f"invalid identity claim: {error}") from None
    return msgspec.convert({"role": role, "subject": str(claims["sub"]), **canonical}, type=Actor)


def _canonical_identity(identity: dict[str, Any]) -> dict[str, str]:
    parsers: dict[str, Callable[[str], Rpps | Finess | Ins]] = {
        "rpps": Rpps.parse,
        "finess": Finess.parse,
        "ins": Ins.parse,
    }
    return {name: parsers[name](value).value for name, value in identity.items()}


def sign_token(
    secret: str,
    *,
    role: str,
    subject: str,
    ttl_seconds: int = 3600,
    rpps: str | None = None,
    finess: str | None = None,
    ins: str | None = None,
) -> str:
    """An HS256 token for local use, demos and tests (`ordo token`)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "role": role, "iat": now, "exp": now + ttl_seconds}
    claims.update({k: v for k, v in {"rpps": rpps, "finess": finess, "ins": ins}.items() if v})
    return jwt.encode(claims, secret, algorithm="HS256")
