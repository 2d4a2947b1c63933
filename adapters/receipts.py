"""Signed receipts: a compact JWS (EdDSA, `kid` in its header) of what one append recorded.

Every 201 of prescribing, dispensing and billing carries one in `Ordo-Receipt`: who did what
(the action, the prescription number, the dispensation, the FINESS and RPPS, the lines with
their quantities) and where it landed in the hash-chained log (`log_position`, `log_hash`: see
`adapters.chain`). Anyone holding the published keys (`GET /.well-known/jwks.json`) can check
it without asking us; the insurer's reconciliation does (`receipt_invalid`).

The keys: `ORDO_RECEIPT_KEY` names the signing key's PEM file; without it an Ed25519 key is
generated once under `ORDO_DATA_DIR/receipt-keys/` (mode 0600) and named by `current` there.
`ordo keys rotate` makes a new Ed25519 key the signer; the old ones stay in the key ring,
published, so receipts they signed keep verifying. A key may be Ed25519 (signing EdDSA, an OKP
JWK) or EC P-256 (signing ES256, an EC JWK): a P-256 key in the ring, or the PEM that
`ORDO_RECEIPT_KEY` names, goes on signing with ES256 until the next rotation, and its receipts
verify after it. A server notices a rotation at its next receipt (the ring's files are looked
at, not read again, on each one). Keys are never logged.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from adapters.chain import LogPoint
from adapters.private_files import write_private
from adapters.storedevents import AnyEvent
from domain.events import (
    BillingRecorded,
    DispensationRecorded,
    DispensedLine,
    PrescribedLine,
    PrescriptionIssued,
)
from domain.identifiers import PrescriptionNumber
from domain.reconciliation.receipts import Receipt

HEADER = "Ordo-Receipt"
RING = "receipt-keys"
CURRENT = "current"


SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def algorithm_of(public: PublicKey) -> str:
    """The JWS algorithm a key signs with."""
    return "EdDSA" if isinstance(public, ed25519.Ed25519PublicKey) else "ES256"


def _jwk(public: PublicKey) -> dict[str, Any]:
    if isinstance(public, ed25519.Ed25519PublicKey):
        okp: dict[str, Any] = OKPAlgorithm.to_jwk(public, as_dict=True)
        return okp
    ec_jwk: dict[str, Any] = ECAlgorithm.to_jwk(public, as_dict=True)
    return ec_jwk


def thumbprint(public: PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint (base64url SHA-256 of its required members): its
    `kid`."""
    jwk = _jwk(public)
    required = ("crv", "kty", "x") if jwk["kty"] == "OKP" else ("crv", "kty", "x", "y")
    members = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"))
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwk(public: PublicKey) -> dict[str, Any]:
    return {**_jwk(public), "kid": thumbprint(public), "alg": algorithm_of(public), "use": "sig"}


def _pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read_key(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    ):
        return key
    msg = f"{path}: a receipt key must be an Ed25519 or EC P-256 private key (PEM)"
    raise ValueError(msg)


def _modified(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@dataclass(frozen=True)
class Keys:
    """The signer and every key published (the signer's included), as loaded once."""

    signer: SigningKey
    kid: str
    algorithm: str
    published: tuple[PublicKey, ...]
    by_kid: dict[str, PublicKey]

    def public(self, kid: str) -> PublicKey | None:
        return self.by_kid.get(kid)


class KeyRing:
    """The receipt keys of one instance: `ORDO_RECEIPT_KEY`'s file, or the ring's current key,
    and the ring's other keys, published."""

    def __init__(self, data_dir: Path, key_file: Path | None = None) -> None:
        self.directory = data_dir / RING
        self.key_file = key_file
        self._keys: Keys | None = None
        self._stamp: tuple[int, ...] = ()

    def keys(self) -> Keys:
        """The keys as the files say now (loaded again only when one of them changed)."""
        stamp = self._files_stamp()  # before loading: a change while loading is seen next time
        if self._keys is None or stamp != self._stamp:
            self._keys, self._stamp = self._load(), stamp
        return self._keys

    def rotate(self) -> str:
        """A new signing key (Ed25519); the old one stays published. Returns the new `kid`."""
        with self._locked():
            key = ed25519.Ed25519PrivateKey.generate()
            kid = thumbprint(key.public_key())
            if self.key_file is not None:
                old = _read_key(self.key_file)
                write_private(self.directory / f"{thumbprint(old.public_key())}.pem", _pem(old))
                write_private(self.key_file, _pem(key))
            else:
                write_private(self.directory / f"{kid}.pem", _pem(key))
                write_private(self.directory / CURRENT, kid.encode())
        return kid

    def _files_stamp(self) -> tuple[int, ...]:
        """The ring's and the key file's modification times: every key written (a rotation, a
        new `current`) is put in place by a rename, which changes its directory's."""
        paths = (self.directory,) if self.key_file is None else (self.directory, self.key_file)
        return tuple(_modified(path) for path in paths)

    def _load(self) -> Keys:
        with self._locked():
            if self.key_file is not None:
                signer = _read_key(self.key_file)
            else:
                signer = self._current_or_new()
        kid = thumbprint(signer.public_key())
        ring = [_read_key(path) for path in sorted(self.directory.glob("*.pem"))]
        others = [key.public_key() for key in ring if thumbprint(key.public_key()) != kid]
        published = (signer.public_key(), *others)
        by_kid = {thumbprint(key): key for key in published}
        return Keys(signer, kid, algorithm_of(signer.public_key()), published, by_kid)

    def _current_or_new(self) -> SigningKey:
        current = self.directory / CURRENT
        if current.exists():
            return _read_key(self.directory / f"{current.read_text().strip()}.pem")
        key = ed25519.Ed25519PrivateKey.generate()
        kid = thumbprint(key.public_key())
        write_private(self.directory / f"{kid}.pem", _pem(key))
        write_private(current, kid.encode())
        return key

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time generates or rotates (servers starting together, a rotation
        while they serve)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(public) for public in self.keys().published]}

    def sign(self, claims: dict[str, Any]) -> str:
        keys = self.keys()
        return jwt.encode(claims, keys.signer, algorithm=keys.algorithm, headers={"kid": keys.kid})


class ReceiptVerifier:
    """Reconciliation's `ReceiptCheck`: a receipt's claims if its signature holds with one of
    the keys this instance publishes, else None."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def __call__(self, token: str) -> Receipt | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            public = self._ring.keys().public(str(kid))
            if public is None:
                return None
            claims = jwt.decode(token, public, algorithms=[algorithm_of(public)])
            return msgspec.convert(claims, Receipt)
        except (jwt.PyJWTError, msgspec.ValidationError):
            return None


def receipt_claims(
    event: AnyEvent, point: LogPoint, issuer: str, now: int
) -> dict[str, Any] | None:
    """What a receipt of this event says, or None when the event gets no receipt."""
    said = _recorded(event)
    if said is None:
        return None
    where = {"log_position": point.position, "log_hash": point.hash.hex()}
    return {"iss": issuer, "iat": now, **said, **where}


def _recorded(event: AnyEvent) -> dict[str, Any] | None:
    """The event's facts, its prescription number as the API shows it."""
    match event:
        case PrescriptionIssued():
            return {
                "action": "prescribing",
                "prescription_id": PrescriptionNumber(event.prescription_id).display(),
                "dispensation_id": None,
                "finess": None,
                "rpps": event.prescriber_rpps,
                "lines": _lines(event.lines),
            }
        case DispensationRecorded():
            return {
                "action": "dispensing",
                "prescription_id": PrescriptionNumber(event.prescription_id).display(),
                "dispensation_id": event.dispensation_id,
                "finess": event.finess,
                "rpps": event.pharmacist_rpps,
                "lines": _lines(event.lines),
            }
        case BillingRecorded():
            return {
                "action": "billing",
                "prescription_id": PrescriptionNumber(event.prescription_id).display(),
                "dispensation_id": event.dispensation_id,
                "finess": event.finess,
                "rpps": event.pharmacist_rpps,
                "invoice_number": event.invoice_number,
                "lines": [msgspec.to_builtins(line) for line in event.lines],
            }
    return None


def _lines(lines: Iterable[PrescribedLine | DispensedLine]) -> list[dict[str, Any]]:
    return [
        {
            "line_no": line.line_no,
            "product": msgspec.to_builtins(line.product),
            "quantity": line.quantity,
        }
        for line in lines
    ]


__all__ = ["HEADER", "KeyRing", "ReceiptVerifier", "public_jwk", "receipt_claims", "thumbprint"]
