"""Settings, read once from the environment (twelve-factor), with safe local defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import msgspec

from adapters.auth import CLAIMS_SHAPES, ClaimsShape
from adapters.private_files import written_once

# Secrets once written in this repository (docker/compose.yaml's old default): anyone can mint
# tokens with them, so they count as the development secret.
PUBLISHED_SECRETS = frozenset({"ordo-local-development-secret-not-for-production"})


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    database_url: str | None
    auth_secret: str | None
    auth_public_key: str | None
    log_hash_key: bytes
    max_body_bytes: int
    db_pool_size: int
    failpoint: str | None
    projections_in_process: bool
    metrics_host: str
    kafka: KafkaSettings | None
    # How often a server asks which catalogue snapshot is in force (an import is used within
    # this plus its loading time).
    catalogue_refresh_seconds: float = 2.0
    # Refuse CIP13 codes the imported catalogue does not know (422 unknown_product).
    catalogue_strict: bool = False
    # The access log (who called a prescription's endpoints): on unless measuring its cost.
    access_log: bool = True
    access_log_retention_days: int = 3650
    # An identity provider's keys (JWKS), and the issuer/audience its tokens must name.
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    # The claims' shape: ordo's own (`role`, `rpps`, ...) or Pro Santé Connect's (adapters/auth.py).
    auth_claims: ClaimsShape = "ordo"
    # Secure messaging (MSSanté): the pharmacies' BAL ORG directory (CSV finess,address), the
    # relay the e-mails leave through (none: .eml files under data_dir/outbox), and the address
    # that writes notices and the right-hand side of our Message-IDs.
    mssante_directory: Path | None = None
    smtp_url: str | None = None
    postmaster: str = "ne-pas-repondre@ordo.mssante.fr"
    # Connections the mailer keeps to the relay, each delivering its share of a batch.
    mailer_connections: int = 4
    # `ordo serve` may deliver the e-mails itself (ORDO_MAILER=in-process); off: `ordo mailer`
    # must run beside it.
    mailer_in_process: bool = True
    # Webhooks: the key sealing the subscriptions' secrets (a Fernet key; none: one generated
    # once as data_dir/webhooks.key), and whether a receiver may be plain http (tests only).
    webhooks_key: str | None = None
    webhooks_allow_http: bool = False
    # The secret was made up under data_dir (no ORDO_AUTH_SECRET nor ORDO_AUTH_PUBLIC_KEY): a
    # development set-up, which `ordo serve` keeps on loopback.
    auth_secret_is_local: bool = False
    # Calls a minute per caller on /v1 (0: no limit) and how many may come at once.
    rate_limit_per_minute: int = 0
    rate_limit_burst: int = 0
    # A request body that stalls this long (nothing of it arrives) is answered 408.
    request_timeout_seconds: float = 30.0
    # The receipts' signing key (PEM, EC P-256); None: one generated under data_dir. Their `iss`.
    receipt_key: Path | None = None
    receipt_issuer: str = "ordo"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("ORDO_DATA_DIR", "./var"))
        public_key = _public_key(env.get("ORDO_AUTH_PUBLIC_KEY"))
        jwks_url = env.get("ORDO_AUTH_JWKS_URL") or None
        asymmetric = public_key or jwks_url
        secret = env.get("ORDO_AUTH_SECRET") or (None if asymmetric else local_secret(data_dir))
        per_minute = int(env.get("ORDO_RATE_LIMIT_PER_MINUTE", 0))
        return cls(
            data_dir=data_dir,
            database_url=env.get("ORDO_DATABASE_URL") or None,
            auth_secret=secret,
            auth_public_key=public_key,
            log_hash_key=(env.get("ORDO_LOG_HASH_KEY") or secret or asymmetric or "").encode(),
            max_body_bytes=int(env.get("ORDO_MAX_BODY_BYTES", 64 * 1024)),
            db_pool_size=int(env.get("ORDO_DB_POOL_SIZE", 16)),
            failpoint=env.get("ORDO_FAILPOINT") or None,
            # With Kafka, the relay and the workers feed the views, not `ordo serve`.
            projections_in_process=env.get("ORDO_PROJECTIONS", "in-process") != "off"
            and not env.get("ORDO_KAFKA_BOOTSTRAP"),
            kafka=KafkaSettings.from_env(env),
            metrics_host=env.get("ORDO_METRICS_HOST", "127.0.0.1"),
            catalogue_refresh_seconds=float(env.get("ORDO_CATALOGUE_REFRESH_SECONDS", 2.0)),
            catalogue_strict=_flag(
                env.get("ORDO_CATALOGUE_STRICT", "false"), "ORDO_CATALOGUE_STRICT"
            ),
            access_log=_flag(env.get("ORDO_ACCESS_LOG", "true"), "ORDO_ACCESS_LOG"),
            access_log_retention_days=int(env.get("ORDO_ACCESS_LOG_RETENTION_DAYS", 3650)),
            auth_jwks_url=jwks_url,
            auth_issuer=env.get("ORDO_AUTH_ISSUER") or None,
            auth_audience=env.get("ORDO_AUTH_AUDIENCE") or None,
            auth_claims=_claims_shape(env.get("ORDO_AUTH_CLAIMS", "ordo")),
            mssante_directory=Path(env["ORDO_MSSANTE_DIRECTORY"])
            if env.get("ORDO_MSSANTE_DIRECTORY")
            else None,
            smtp_url=env.get("ORDO_SMTP_URL") or None,
            postmaster=env.get("ORDO_MSSANTE_POSTMASTER") or "ne-pas-repondre@ordo.mssante.fr",
            mailer_connections=max(int(env.get("ORDO_MAILER_CONNECTIONS", 4)), 1),
            mailer_in_process=env.get("ORDO_MAILER", "in-process") != "off",
            webhooks_key=env.get("ORDO_WEBHOOKS_KEY") or None,
            webhooks_allow_http=_flag(
                env.get("ORDO_WEBHOOKS_ALLOW_HTTP", "false"), "ORDO_WEBHOOKS_ALLOW_HTTP"
            ),
            auth_secret_is_local=(not env.get("ORDO_AUTH_SECRET") and not asymmetric)
            or secret in PUBLISHED_SECRETS,
            rate_limit_per_minute=per_minute,
            rate_limit_burst=int(env.get("ORDO_RATE_LIMIT_BURST", max(1, per_minute // 6))),
            request_timeout_seconds=float(env.get("ORDO_REQUEST_TIMEOUT_SECONDS", 30)),
            receipt_key=Path(env["ORDO_RECEIPT_KEY"]) if env.get("ORDO_RECEIPT_KEY") else None,
            receipt_issuer=env.get("ORDO_RECEIPT_ISSUER") or "ordo",
        )


class KafkaSettings(msgspec.Struct, frozen=True, kw_only=True):
    bootstrap: str
    topic: str
    partitions: int
    replication: int
    group: str
    relay_batch_size: int
    # How long a silent worker keeps its partitions: a killed one's come back after this.
    session_timeout_ms: int

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic}.dead-letter"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> KafkaSettings | None:
        if not env.get("ORDO_KAFKA_BOOTSTRAP"):
            return None
        return cls(
            bootstrap=env["ORDO_KAFKA_BOOTSTRAP"],
            topic=env.get("ORDO_KAFKA_TOPIC", "ordo.prescription-events"),
            partitions=int(env.get("ORDO_KAFKA_PARTITIONS", 6)),
            replication=int(env.get("ORDO_KAFKA_REPLICATION", 1)),
            group=env.get("ORDO_KAFKA_GROUP", "ordo-projections"),
            relay_batch_size=int(env.get("ORDO_RELAY_BATCH_SIZE", 5000)),
            session_timeout_ms=int(env.get("ORDO_KAFKA_SESSION_TIMEOUT_MS", 45_000)),
        )


def _flag(value: str, name: str) -> bool:
    """A yes/no setting: true/false, yes/no, 1/0 (any case); anything else is a mistake."""
    text = value.strip().lower()
    if text in {"true", "yes", "1"}:
        return True
    if text in {"false", "no", "0", ""}:
        return False
    msg = f"{name} must be true or false, got {value!r}"
    raise ValueError(msg)


def _public_key(value: str | None) -> str | None:
    """The PEM itself, or a path to a PEM file."""
    if not value:
        return None
    if value.lstrip().startswith("-----BEGIN"):
        return value
    return Path(value).read_text()


def local_secret(data_dir: Path) -> str:
    """A development secret kept under ./var, so `ordo serve` and `ordo token` agree with no
    set-up. Production sets ORDO_AUTH_SECRET or, better, ORDO_AUTH_PUBLIC_KEY."""
    secret = written_once(data_dir / "auth-secret", lambda: secrets.token_urlsafe(32).encode())
    return secret.decode().strip()


def with_schema(database_url: str, schema: str) -> str:
    """ORDO_DATABASE_URL with ordo's own `?schema=` option: every table of the instance lives
    in that PostgreSQL schema (tests and benchmarks give each run its own)."""
    return f"{database_url}{'&' if '?' in database_url else '?'}schema={schema}"


def schema_of(database_url: str, default: str = "public") -> str:
    """The schema ORDO_DATABASE_URL's `?schema=` option names (the last one given), else
    `default`."""
    options = dict(parse_qsl(urlsplit(database_url).query))
    return options.get("schema", default)


def _claims_shape(value: str) -> ClaimsShape:
    for shape in CLAIMS_SHAPES:
        if value == shape:
            return shape
    msg = f"ORDO_AUTH_CLAIMS must be one of {', '.join(CLAIMS_SHAPES)}, got {value!r}"
    raise ValueError(msg)
