"""Bearer tokens: who the caller is, checked on every /v1 call.

Development and tests sign with HS256 and a shared secret (`ORDO_AUTH_SECRET`); production
verifies asymmetric tokens (RS256, ES256 or EdDSA, as an identity provider such as Pro Santé
Connect issues) against `ORDO_AUTH_PUBLIC_KEY`, or against the provider's published keys
(`ORDO_AUTH_JWKS_URL`, chosen by the token's `kid`). The accepted algorithms are pinned by the
key's kind, so `alg: none` or an HS256 token forged with a public key as secret never verifies.
`ORDO_AUTH_ISSUER` and `ORDO_AUTH_AUDIENCE`, when set, must be the token's `iss` and `aud`.

The claims name the caller in one of two shapes (`ORDO_AUTH_CLAIMS`):

- `ordo` (the default): `role`, with `rpps`, `finess` or `ins` as the role needs.
- `psc`: Pro Santé Connect's, for the professionals (patients and the insurer keep ordo's
  shape, with their `role`). What is read, as the ANS documents it (Pro Santé Connect's
  "documentation technique", its "UserInfo" and "Introspection" sections, and the CI-SIS guide
  "Sécurisation de la couche transport API REST Pro Santé Connectée"), checked against the
  UserInfo and introspection answers of Pro Santé Connect's sandbox that the ANS quotes in the
  tests of its e-signature service for PSC (`HelperTest`, `TmpTest`):
  the national identifier `SubjectNameID` (or `preferred_username`, which the access token
  carries too), `8` then the 11 digits of the RPPS; the professions, `SubjectRole`
  (`<code>^1.2.250.1.213.1.1.5.5`, the code of the ANS's TRE_G15 ProfessionSante) and each
  `SubjectRefPro.exercices[]`'s `codeProfession`; and an exercice's places of practice,
  `activities[]`, each with all its fields, an absent value an empty string: the site's
  `numeroFinessSite`, the Ordre's `codeSectionPharmacien`, `codeSecteurDactivite`…
  `SubjectRole` and `SubjectRefPro` are UserInfo's claims, not the access token's: the bearer
  must carry them (docs/adr/0021), else no profession is named and the call is refused.
  A pharmacist (21) practising in one officine (the Ordre's sections, Code de la santé
  publique article L4232-1: A its holders, D its assistants among others, E every pharmacist
  overseas) is that pharmacy's pharmacist; a prescribing profession (physician 10, dentist 40,
  midwife 50, nurse 60, physiotherapist 70, podiatrist 80) a prescriber. Anyone else, a
  pharmacist without an officine's FINESS included, or one practising in several (the token
  does not say which one is acting), is refused (401).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import anyio.to_thread
import jwt
import msgspec
import structlog

from domain.actors import ROLES, Actor
from domain.identifiers import Finess, Ins, InvalidIdentifier, Rpps

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "EdDSA"]
# A provider publishes its new key before signing with it; an unknown `kid` fetches the keys
# again, at most once per cooldown, so forged `kid`s cannot make us hammer the provider.
JWKS_COOLDOWN_SECONDS = 5.0
JWKS_MAX_AGE_SECONDS = 300.0
JWKS_TIMEOUT_SECONDS = 5.0
VERIFIED_TOKENS_KEPT = 10_000
IDENTITY_CLAIMS = {"prescriber": ("rpps",), "pharmacist": ("rpps", "finess"), "patient": ("ins",)}
ClaimsShape = Literal["ordo", "psc"]
CLAIMS_SHAPES: tuple[ClaimsShape, ...] = ("ordo", "psc")
# Pro Santé Connect (see above): the national identifier's claims, in the order they are read.
PSC_NATIONAL_ID = ("SubjectNameID", "preferred_username")
RPPS_PREFIX = "8"  # a national identifier of kind 8 is an RPPS
PHARMACIST = "21"
PRESCRIBING_PROFESSIONS = frozenset({"10", "40", "50", "60", "70", "80"})
OFFICINE_SECTIONS = frozenset({"A", "D", "E"})
OWN_SHAPE_ROLES = frozenset({"patient", "insurer"})  # not Pro Santé Connect's users


log = structlog.get_logger("ordo.auth")


class UnauthenticatedError(Exception):
    """No valid bearer token: answered 401 whatever the route."""


class TokenVerifier:
    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key: str | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        claims: ClaimsShape = "ordo",
        jwks_cooldown_seconds: float = JWKS_COOLDOWN_SECONDS,
    ) -> None:
        self._jwks: jwt.PyJWKClient | None = None
        if jwks_url:
            self._jwks = jwt.PyJWKClient(
                jwks_url,
                cache_jwk_set=True,
                lifespan=JWKS_MAX_AGE_SECONDS,
                timeout=JWKS_TIMEOUT_SECONDS,
                cooldown_duration=jwks_cooldown_seconds,
            )
            self._key: str = ""
            self._algorithms = ASYMMETRIC_ALGORITHMS
        elif public_key:
            self._key = public_key
            self._algorithms = ASYMMETRIC_ALGORITHMS
        elif secret:
            self._key = secret
            self._algorithms = ["HS256"]
        else:
            msg = (
                "set ORDO_AUTH_SECRET (HS256), ORDO_AUTH_PUBLIC_KEY or ORDO_AUTH_JWKS_URL "
                "(RS256/ES256/EdDSA)"
            )
            raise ValueError(msg)
        self._issuer = issuer
        self._audience = audience
        self._actor_of = actor_from_psc if claims == "psc" else actor_from_claims
        self._required = ["exp", "sub"] if claims == "psc" else ["exp", "sub", "role"]
        self._verified: dict[str, tuple[Actor, float]] = {}

    @property
    def fetches_keys(self) -> bool:
        """True when verifying a new token may wait on the network (JWKS)."""
        return self._jwks is not None

    def actor(self, authorization: str | None) -> Actor:
        """The caller named by an `Authorization: Bearer …` header, or UnauthenticatedError.

        A pharmacy's software sends the same token on every call, so a token whose signature
        was verified is remembered (bounded) with its expiry, which is still checked each time.
        """
        known = self.remembered(authorization)
        if known is not None:
            return known
        token = _bearer(authorization)
        verified = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = verified
        return verified[0]

    async def caller(self, authorization: str | None) -> Actor:
        """`actor`, for the event loop: a token seen before costs no I/O; a new one, when its
        key may have to be fetched from the identity provider, is verified in a worker thread."""
        known = self.remembered(authorization)
        if known is not None:
            return known
        if self.fetches_keys:
            return await anyio.to_thread.run_sync(self.actor, authorization)
        return self.actor(authorization)

    def remembered(self, authorization: str | None) -> Actor | None:
        """The caller if this token was verified before (no I/O), else None."""
        known = self._verified.get(_bearer(authorization))
        if known is None:
            return None
        actor, expires = known
        if time.time() >= expires:
            raise UnauthenticatedError("invalid token: Signature has expired")
        return actor

    def _verify(self, token: str) -> tuple[Actor, float]:
        required = list(self._required)
        required += ["iss"] if self._issuer else []
        required += ["aud"] if self._audience else []
        try:
            key, algorithms = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": required, "verify_aud": self._audience is not None},
            )
        except jwt.PyJWKClientConnectionError as error:
            # Every caller is refused until the provider answers: say why once per attempt.
            log.warning("identity provider keys unreachable", error=str(error))
            raise UnauthenticatedError("the identity provider's keys are unreachable") from None
        except jwt.PyJWTError as error:
            raise UnauthenticatedError(f"invalid token: {error}") from None
        return self._actor_of(claims), float(claims["exp"])

    def _key_for(self, token: str) -> tuple[Any, list[str]]:
        """The key and the one algorithm a token may be signed with.

        With JWKS, the key named by the token's `kid`, and the algorithm of that key's kind
        (an RSA key verifies RS256 only): an HS256 token is refused before any key is used."""
        if self._jwks is None:
            return self._key, self._algorithms
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ASYMMETRIC_ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise jwt.InvalidTokenError("the token names no key (kid)")
        signing_key = self._jwks.get_signing_key(kid)
        algorithm = signing_key.algorithm_name
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"the key {kid!r} is not an accepted kind")
        return signing_key.key, [algorithm]


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthenticatedError("missing bearer token")
    return token


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


def actor_from_psc(claims: dict[str, Any]) -> Actor:
    """The caller a Pro Santé Connect token names (module docstring); patients and the insurer
    in ordo's shape."""
    if claims.get("role") in OWN_SHAPE_ROLES:
        return actor_from_claims(claims)
    rpps = _psc_rpps(claims)
    subject = str(claims["sub"])
    exercices = list(map(_object, _listed(_object(claims.get("SubjectRefPro")).get("exercices"))))
    pharmacies = {finess for exercice in exercices for finess in _officines(exercice)}
    if len(pharmacies) > 1:
        raise UnauthenticatedError(
            "this pharmacist practises in several officines and the token does not say which"
        )
    if pharmacies:
        return Actor(role="pharmacist", subject=subject, rpps=rpps, finess=pharmacies.pop())
    if _professions(claims, exercices) & PRESCRIBING_PROFESSIONS:
        return Actor(role="prescriber", subject=subject, rpps=rpps)
    raise UnauthenticatedError(
        "this Pro Santé Connect identity is neither of a prescribing profession nor a "
        "pharmacist of an officine (no numeroFinessSite in sections A, D or E)"
    )


def _psc_rpps(claims: dict[str, Any]) -> str:
    national = next(
        (claims[name] for name in PSC_NATIONAL_ID if isinstance(claims.get(name), str)), None
    )
    if national is None:
        raise UnauthenticatedError("a Pro Santé Connect token needs its SubjectNameID")
    if not national.startswith(RPPS_PREFIX):
        raise UnauthenticatedError("ordo knows professionals by their RPPS (identifier 8…)")
    try:
        return Rpps.parse(national.removeprefix(RPPS_PREFIX)).value
    except InvalidIdentifier as error:
        raise UnauthenticatedError(f"invalid identity claim: {error}") from None


def _officines(exercice: dict[str, Any]) -> set[str]:
    """The FINESS of the officines a pharmacist's exercice practises in."""
    if exercice.get("codeProfession") != PHARMACIST:
        return set()
    sites = {
        activity.get("numeroFinessSite")
        for activity in map(_object, _listed(exercice.get("activities")))
        if activity.get("codeSectionPharmacien") in OFFICINE_SECTIONS
    }
    try:
        return {Finess.parse(site).value for site in sites if isinstance(site, str) and site}
    except InvalidIdentifier as error:
        raise UnauthenticatedError(f"invalid identity claim: {error}") from None


def _professions(claims: dict[str, Any], exercices: list[dict[str, Any]]) -> set[str]:
    """The profession codes of `SubjectRole` (`code^OID`) and of each exercice."""
    said = _listed(claims.get("SubjectRole"))
    roles = {role.partition("^")[0] for role in said if isinstance(role, str)}
    return roles | {str(exercice.get("codeProfession")) for exercice in exercices}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
