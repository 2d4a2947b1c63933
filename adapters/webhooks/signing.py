"""Secrets and signatures of webhooks, by the Standard Webhooks rules.

A subscription's secret is shown once, when it is created. Signing needs the raw secret (an
HMAC-SHA256 key), so it cannot be stored hashed: it is stored encrypted (Fernet) with a key from
`ORDO_WEBHOOKS_KEY`, else with one generated once in `webhooks.key` under the data directory.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook

from adapters.private_files import written_once

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix Standard Webhooks gives secrets


def new_secret() -> str:
    """24 random bytes, as Standard Webhooks writes a secret: `whsec_` and base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signed_headers(secret: str, webhook_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three headers a receiver checks: the same `webhook-id` on every attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
        "content-type": "application/json",
    }


class SecretBox:
    """Encrypts the secrets at rest; `key` is a Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        return self._fernet.decrypt(sealed).decode()


def webhooks_key(configured: str | None, data_dir: Path) -> bytes:
    """`ORDO_WEBHOOKS_KEY` when set, else `webhooks.key` under the data directory, written once
    (readable by its owner only) the first time it is needed."""
    if configured:
        return configured.encode()
    return written_once(data_dir / "webhooks.key", Fernet.generate_key).strip()
