"""Signed receipts on SQLite and PostgreSQL: `Ordo-Receipt` on the 201s of prescribing,
dispensing and billing (/v1 and /fhir), checked with a JOSE library (PyJWT) against the keys
published at `/.well-known/jwks.json` (EdDSA with Ed25519 keys, ES256 with a P-256 key the ring or
`ORDO_RECEIPT_KEY` already held), before and after a key rotation; one byte changed and the
receipt no longer verifies; its log position and hash are the event's in the chained log; a retry
answered from its `Idempotency-Key` carries a receipt naming the first answer's position and hash
(none when its record was kept before records kept their position)."""

from __future__ import annotations

import base64
import stat
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.cli import main
from adapters.config import Settings
from adapters.receipts import KeyRing, thumbprint
from tests.api.previous_release import query
from tests.api.test_billing_api import bill, dispensed
from tests.api.test_fhir_dispensing import dispense as fhir_dispense
from tests.api.test_fhir_prescribing import FHIR_JSON, fixture, post_bundle
from tests.api.test_idempotent_prescribing import fhir_post
from tests.api.test_prescriptions_api import dispense, issue
from tests.api.test_reconciliation_api import invoice, reconcile
from tests.conftest import Client, settings_for
from tools.cast import People


def published(client: Client) -> jwt.PyJWKSet:
    answer = client.get("/.well-known/jwks.json")  # no token
    assert answer.status_code == 200, answer.text
    return jwt.PyJWKSet.from_dict(answer.json())


def verified(client: Client, receipt: str) -> dict[str, Any]:
    """The receipt's claims, checked with the key its `kid` names among those published."""
    kid = jwt.get_unverified_header(receipt)["kid"]
    key = published(client)[kid]
    claims: dict[str, Any] = jwt.decode(receipt, key.key, algorithms=["ES256", "EdDSA"])
    return claims


def logged_hash(settings: Settings, position: int) -> str:
    column = "rowid" if settings.database_url is None else "notification_id"
    [(stored,)] = query(settings, f"SELECT hash FROM ordo_events WHERE {column} = {position}")
    return bytes(stored).hex()


def test_a_prescribing_receipt_verifies_and_names_the_event_in_the_log(
    client: Client, people: People, settings: Settings
) -> None:
    answer = client.post(
        "/v1/prescriptions", json=people.prescription_body(3, 1), headers=people.as_prescriber()
    )

    claims = verified(client, answer.headers["Ordo-Receipt"])
    assert claims["action"] == "prescribing"
    assert claims["prescription_id"] == answer.json()["prescription_id"]
    assert claims["rpps"] == people.prescriber and claims["finess"] is None
    assert [(line["line_no"], line["quantity"]) for line in claims["lines"]] == [(1, 3), (2, 1)]
    assert claims["log_hash"] == logged_hash(settings, claims["log_position"])
    assert claims["iss"] == "ordo" and claims["iat"] > 0  # ORDO_RECEIPT_ISSUER's default


def test_a_dispensing_receipt_names_the_pharmacy_and_the_packs(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people, 3)["prescription_id"]

    answer = dispense(client, people, number, (1, 2))

    claims = verified(client, answer.headers["Ordo-Receipt"])
    assert claims["action"] == "dispensing"
    assert claims["dispensation_id"] == answer.json()["dispensation_id"]
    assert (claims["finess"], claims["rpps"]) == (people.pharmacy, people.pharmacist)
    [line] = claims["lines"]
    assert (line["line_no"], line["quantity"], line["product"]["code"]) == (
        1,
        2,
        people.paracetamol,
    )
    assert claims["log_hash"] == logged_hash(settings, claims["log_position"])


def test_a_billing_receipt_names_the_invoice(client: Client, people: People) -> None:
    where = dispensed(client, people)

    answer = bill(client, people, where, invoice_number="F-7")

    claims = verified(client, answer.headers["Ordo-Receipt"])
    assert (claims["action"], claims["invoice_number"]) == ("billing", "F-7")
    assert claims["dispensation_id"] == where.split("/")[1]
    assert claims["lines"] == [{"line_no": 1, "quantity": 2, "amount_cents": 500}]


def test_a_fhir_dispensing_carries_its_receipt(client: Client, people: People) -> None:
    number = issue(client, people, 3)["prescription_id"]

    created = client.post(
        "/fhir/R4/MedicationDispense",
        json=fhir_dispense(f"MedicationRequest/{number}-1", 2),
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )

    assert created.status_code == 201, created.text
    claims = verified(client, created.headers["Ordo-Receipt"])
    assert (claims["action"], claims["prescription_id"]) == ("dispensing", number)


def test_what_records_no_receipted_event_gets_no_receipt(client: Client, people: People) -> None:
    number = issue(client, people, 3)["prescription_id"]
    refused = dispense(client, people, number, (1, 9))
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist())

    assert refused.status_code == 409 and "Ordo-Receipt" not in refused.headers
    assert read.status_code == 200 and "Ordo-Receipt" not in read.headers


def test_a_receipt_changed_in_one_byte_does_not_verify(client: Client, people: People) -> None:
    number = issue(client, people, 3)["prescription_id"]
    receipt = dispense(client, people, number, (1, 1)).headers["Ordo-Receipt"]
    header, payload, signature = receipt.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = claims.replace(b'"quantity":1', b'"quantity":2')
    assert forged != claims
    altered = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()

    with pytest.raises(jwt.InvalidSignatureError):
        verified(client, f"{header}.{altered}.{signature}")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(jwt.InvalidSignatureError):
        verified(client, f"{header}.{payload}.{flipped}")


def test_after_a_rotation_old_and_new_receipts_verify(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    before = dispense(client, people, number, (1, 1)).headers["Ordo-Receipt"]

    new_kid = KeyRing(settings.data_dir).rotate()  # as `ordo keys rotate` does, beside the server
    after = dispense(client, people, number, (1, 1)).headers["Ordo-Receipt"]

    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert jwt.get_unverified_header(before)["kid"] != new_kid
    assert verified(client, before)["action"] == verified(client, after)["action"] == "dispensing"
    assert len(published(client).keys) == 2


def test_the_generated_key_is_kept_once_readable_by_its_owner_only(
    client: Client, people: People, settings: Settings
) -> None:
    issue(client, people, 1)
    ring = settings.data_dir / "receipt-keys"
    [key] = ring.glob("*.pem")

    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (ring / "current").read_text() == key.stem
    with TestClient(build_app(settings)) as again:  # a second start keeps the key
        assert [k.key_id for k in published(again).keys] == [key.stem]


def test_receipts_are_signed_with_eddsa_and_the_key_published_as_okp(
    client: Client, people: People
) -> None:
    receipt = issue_receipt(client, people)

    assert jwt.get_unverified_header(receipt)["alg"] == "EdDSA"
    [key] = client.get("/.well-known/jwks.json").json()["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert key["kid"] == jwt.get_unverified_header(receipt)["kid"]


def issue_receipt(client: Client, people: People) -> str:
    answer = client.post(
        "/v1/prescriptions", json=people.prescription_body(1), headers=people.as_prescriber()
    )
    assert answer.status_code == 201, answer.text
    return answer.headers["Ordo-Receipt"]


def pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    "settings", ["sqlite"], indirect=True
)  # keys are files, whatever the store
def test_a_ring_signing_with_es256_rotates_to_eddsa_and_both_receipts_verify(
    settings: Settings, people: People
) -> None:
    old = ec.generate_private_key(ec.SECP256R1())  # the ring as a release signing ES256 left it
    ring = settings.data_dir / "receipt-keys"
    ring.mkdir(mode=0o700)
    (ring / f"{thumbprint(old.public_key())}.pem").write_bytes(pem(old))
    (ring / "current").write_text(thumbprint(old.public_key()))

    with TestClient(build_app(settings)) as client:
        before = issue_receipt(client, people)
        KeyRing(settings.data_dir).rotate()
        after = issue_receipt(client, people)

        assert jwt.get_unverified_header(before)["alg"] == "ES256"
        assert jwt.get_unverified_header(after)["alg"] == "EdDSA"
        assert verified(client, before)["action"] == verified(client, after)["action"]
        keys = {key["kid"]: key for key in client.get("/.well-known/jwks.json").json()["keys"]}
        assert keys[thumbprint(old.public_key())]["kty"] == "EC"
        for receipt in (before, after):
            header, payload, signature = receipt.split(".")
            flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
            with pytest.raises(jwt.InvalidSignatureError):
                verified(client, f"{header}.{payload}.{flipped}")


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_ordo_receipt_key_names_the_signing_key(
    settings: Settings, people: People, tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("keys") / "receipts.pem"
    path.write_bytes(pem(key))
    named = settings_for(settings.data_dir)
    named = Settings(
        **{**{f: getattr(named, f) for f in named.__struct_fields__}, "receipt_key": path}
    )

    with TestClient(build_app(named)) as client:
        receipt = client.post(
            "/v1/prescriptions", json=people.prescription_body(1), headers=people.as_prescriber()
        ).headers["Ordo-Receipt"]
        assert jwt.get_unverified_header(receipt)["kid"] == thumbprint(key.public_key())
        assert verified(client, receipt)["action"] == "prescribing"
        KeyRing(named.data_dir, path).rotate()
        rotated = client.post(
            "/v1/prescriptions", json=people.prescription_body(1), headers=people.as_prescriber()
        ).headers["Ordo-Receipt"]
        assert jwt.get_unverified_header(rotated)["kid"] != thumbprint(key.public_key())
        assert verified(client, receipt) and verified(client, rotated)


# --- receipts in reconciliation ------------------------------------------------------------------


def receipted_invoice(client: Client, people: People, *, product: str | None = None) -> Any:
    """A dispensing of 2 packs, and the invoice billing them with its receipt."""
    number = issue(client, people, 3)["prescription_id"]
    answer = dispense(client, people, number, (1, 2))
    billed = invoice(people, number, (1, 2), product=product)
    return {**billed, "receipt": answer.headers["Ordo-Receipt"]}


def test_an_invoice_with_its_dispensings_receipt_is_matched(client: Client, people: People) -> None:
    (item,) = reconcile(client, people, receipted_invoice(client, people))

    assert item["outcome"] == "matched"


def test_a_forged_receipt_is_receipt_invalid(client: Client, people: People) -> None:
    billed = receipted_invoice(client, people)
    header, payload, signature = billed["receipt"].split(".")
    forged = {**billed, "receipt": f"{header}.{payload}.{signature[::-1]}"}

    (item,) = reconcile(client, people, forged)

    assert item["outcome"] == "receipt_invalid"
    assert "does not verify" in item["detail"]


def test_a_receipt_naming_other_packs_than_the_invoice_is_receipt_invalid(
    client: Client, people: People
) -> None:
    billed = receipted_invoice(client, people, product=people.generic)

    (item,) = reconcile(client, people, billed)

    assert item["outcome"] == "receipt_invalid"
    assert item["detail"] == (
        f"line 1: billed CIP13 {people.generic}, the receipt names CIP13 {people.paracetamol}"
    )


def test_another_dispensings_receipt_is_receipt_invalid(client: Client, people: People) -> None:
    billed = receipted_invoice(client, people)
    other = receipted_invoice(client, people)

    (item,) = reconcile(client, people, {**billed, "receipt": other["receipt"]})

    assert item["outcome"] == "receipt_invalid"
    assert item["detail"].startswith("the receipt is of prescription ")


def same_receipt(
    client: Client, settings: Settings, first: Any, retry: Any, status: int = 201
) -> dict[str, Any]:
    """The retry's receipt verifies and names the first answer's place in the log."""
    assert (first.status_code, retry.status_code) == (status, status), retry.text
    assert retry.json() == first.json()
    claims = verified(client, retry.headers["Ordo-Receipt"])
    firsts = verified(client, first.headers["Ordo-Receipt"])
    assert (claims["log_position"], claims["log_hash"]) == (
        firsts["log_position"],
        firsts["log_hash"],
    )
    assert claims["log_hash"] == logged_hash(settings, claims["log_position"])
    return claims


def test_a_dispensing_retried_with_its_key_carries_the_first_answers_receipt(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    first = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "lgo-1"})

    retry = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "lgo-1"})

    assert same_receipt(client, settings, first, retry)["action"] == "dispensing"


def test_a_billing_retried_with_its_key_carries_the_first_answers_receipt(
    client: Client, people: People, settings: Settings
) -> None:
    where = dispensed(client, people)
    first = bill(client, people, where, key="lgo-7")
    dispense(client, people, where.split("/")[0], (1, 1))  # the log moves on meanwhile

    retry = bill(client, people, where, key="lgo-7")

    assert same_receipt(client, settings, first, retry)["action"] == "billing"


def test_a_prescribing_retried_with_its_key_carries_the_first_answers_receipt(
    client: Client, people: People, settings: Settings
) -> None:
    body, headers = people.prescription_body(2), {**people.as_prescriber(), "Idempotency-Key": "k"}
    first = client.post("/v1/prescriptions", json=body, headers=headers)

    retry = client.post("/v1/prescriptions", json=body, headers=headers)

    assert same_receipt(client, settings, first, retry)["action"] == "prescribing"


def test_a_fhir_dispensing_retried_with_its_key_carries_the_first_answers_receipt(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    headers = {**people.as_pharmacist(), **FHIR_JSON, "Idempotency-Key": "lgo-42"}
    sent = fhir_dispense(f"MedicationRequest/{number}-1", 1)
    first = client.post("/fhir/R4/MedicationDispense", json=sent, headers=headers)

    retry = client.post("/fhir/R4/MedicationDispense", json=sent, headers=headers)

    assert same_receipt(client, settings, first, retry)["action"] == "dispensing"


def test_a_fhir_transaction_retried_with_its_key_carries_the_first_answers_receipt(
    client: Client, people: People, settings: Settings
) -> None:
    bundle = fixture("HAS-32-2-Presc-ULTIBRO-BREEZ")
    first = fhir_post(client, people, "/fhir/R4", bundle, "lap-7")

    retry = fhir_post(client, people, "/fhir/R4", bundle, "lap-7")

    assert same_receipt(client, settings, first, retry, 200)["action"] == "prescribing"


def test_a_record_kept_before_positions_is_replayed_without_a_receipt(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    first = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "lgo-1"})
    query(settings, "ALTER TABLE ordo_idempotency DROP COLUMN position")  # as kept before

    with TestClient(build_app(settings)) as upgraded:
        retry = dispense(upgraded, people, number, (1, 1), **{"Idempotency-Key": "lgo-1"})
        later = dispense(upgraded, people, number, (1, 1), **{"Idempotency-Key": "lgo-2"})
        again = dispense(upgraded, people, number, (1, 1), **{"Idempotency-Key": "lgo-2"})

    assert (retry.status_code, retry.json()) == (201, first.json())
    assert "Ordo-Receipt" not in retry.headers
    assert same_receipt(client, settings, later, again)["action"] == "dispensing"


@pytest.mark.parametrize(
    "settings", ["sqlite"], indirect=True
)  # keys are files, whatever the store
def test_ordo_keys_rotate_makes_a_new_signer_and_keeps_the_old_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = KeyRing(settings.data_dir)
    old = ring.keys().kid
    monkeypatch.setenv("ORDO_DATA_DIR", str(settings.data_dir))

    assert main(["keys", "rotate"]) == 0

    keys = KeyRing(settings.data_dir).keys()
    assert keys.kid != old and [thumbprint(k) for k in keys.published] == [keys.kid, old]


def test_a_fhir_transaction_prescribing_carries_its_receipt(client: Client, people: People) -> None:
    answer = post_bundle(client, people, fixture("HAS-32-2-Presc-ULTIBRO-BREEZ"))

    assert answer.status_code == 200, answer.text
    claims = verified(client, answer.headers["Ordo-Receipt"])
    (location,) = [e["response"]["location"] for e in answer.json()["entry"]]
    assert claims["action"] == "prescribing"
    assert location == f"MedicationRequest/{claims['prescription_id']}-1"
