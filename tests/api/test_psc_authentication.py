"""Pro Santé Connect's tokens (`ORDO_AUTH_CLAIMS=psc`), signed by a local identity provider's
JWKS: a physician is a prescriber, a pharmacist of one officine that pharmacy's pharmacist;
anyone else, and a token for another issuer or audience, is refused. Patients keep their
shape. The claims are shaped as in the UserInfo and introspection answers of Pro Santé Connect's
sandbox that the ANS quotes in its e-signature service's tests (adapters/auth.py): every field
of an activity present, an absent value an empty string; `sub` `f:<uuid>:8<RPPS>`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.api.test_jwks_authentication import (
    IdentityProvider,
    SigningKey,
    provider,
    settings_with,
    status,
)
from tests.conftest import Client
from tools.cast import People

__all__ = ["provider"]  # the fixture: a JWKS endpoint on a local port
PROFESSIONS = "1.2.250.1.213.1.1.5.5"  # TRE_G15 ProfessionSante


def exercice(profession: str, *activities: dict[str, str]) -> dict[str, Any]:
    return {
        "codeProfession": profession,
        "codeCategorieProfessionnelle": "C",
        "codeTypeSavoirFaire": "",
        "codeSavoirFaire": "",
        "activities": list(activities) or [cabinet()],
    }


def cabinet() -> dict[str, str]:
    """A liberal practice without FINESS, as PSC writes it: the absent values empty."""
    return {
        "codeModeExercice": "L",
        "codeSecteurDactivite": "SA07",
        "codeSectionPharmacien": "",
        "numeroFinessSite": "",
        "numeroFinessetablissementJuridique": "",
        "raisonSocialeSite": "CABINET DU DR MARTIN",
    }


def site(finess: str, section: str = "A") -> dict[str, str]:
    """A place of practice, as PSC describes it (a pharmacist's with its Ordre section)."""
    return {
        **cabinet(),
        "codeSectionPharmacien": section,
        "numeroFinessSite": finess,
        "raisonSocialeSite": "PHARMACIE DU MARCHE",
    }


def psc_token(key: SigningKey, people: People, rpps: str, *exercices: dict[str, Any]) -> str:
    """A token shaped as Pro Santé Connect's: no `role`, the RPPS as national identifier."""
    return key.sign(
        people,
        role=None,
        rpps=None,
        finess=None,
        sub=f"f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:8{rpps}",
        SubjectNameID=f"8{rpps}",
        preferred_username=f"8{rpps}",
        otherIds=[{"identifiant": f"8{rpps}", "origine": "RPPS", "qualite": 1}],
        SubjectRole=[f"{e['codeProfession']}^{PROFESSIONS}" for e in exercices],
        SubjectRefPro={"codeCivilite": "DR", "exercices": list(exercices)},
    )


@pytest.fixture
def key(provider: IdentityProvider) -> SigningKey:
    signing = SigningKey.new("psc-1")
    provider.publish(signing)
    return signing


@pytest.fixture
def psc(tmp_path: Path, provider: IdentityProvider) -> Iterator[Client]:
    settings = settings_with(tmp_path, provider, ORDO_AUTH_CLAIMS="psc")
    with TestClient(build_app(settings)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_physician_prescribes_and_a_pharmacist_of_an_officine_dispenses(
    psc: Client, key: SigningKey, people: People
) -> None:
    physician = psc_token(key, people, people.prescriber, exercice("10"))
    pharmacist = psc_token(key, people, people.pharmacist, exercice("21", site(people.pharmacy)))

    issued = psc.post(
        "/v1/prescriptions", json=people.prescription_body(2), headers=bearer(physician)
    )
    number = issued.json()["prescription_id"]
    dispensed = psc.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 1}]},
        headers=bearer(pharmacist),
    )

    assert issued.status_code == 201, issued.text
    assert dispensed.status_code == 201, dispensed.text
    patient = key.sign(people, role="patient", rpps=None, finess=None, ins=people.patient)
    history = psc.get(f"/v1/prescriptions/{number}/events", headers=bearer(patient)).json()
    issuing, dispensing = (entry["actor"] for entry in history["events"])
    assert issuing == {"role": "prescriber", "rpps": people.prescriber}
    assert dispensing == {
        "role": "pharmacist",
        "rpps": people.pharmacist,
        "finess": people.pharmacy,
    }


@pytest.mark.parametrize("profession", ["40", "50", "60"])
def test_the_other_prescribing_professions_prescribe(
    psc: Client, key: SigningKey, people: People, profession: str
) -> None:
    token = psc_token(key, people, people.prescriber, exercice(profession))

    mine = psc.get("/v1/prescribers/me/prescriptions", headers=bearer(token))

    assert mine.status_code == 200, mine.text


@pytest.mark.parametrize(
    ("who", "exercices"),
    [
        ("a pharmacist of no officine", [exercice("21")]),
        ("a pharmacist whose officine has no FINESS", [exercice("21", site("", section="D"))]),
        ("a hospital pharmacist", [exercice("21", site("750712184", section="H"))]),
        ("an officine without its FINESS", [exercice("21", site(""))]),
        ("a pharmacist of two officines", [exercice("21", site("750712184"), site("130001233"))]),
        ("a psychologist", [exercice("93")]),
        ("nobody", []),
    ],
)
def test_who_is_neither_a_prescriber_nor_an_officines_pharmacist_is_refused(
    psc: Client, key: SigningKey, people: People, who: str, exercices: list[dict[str, Any]]
) -> None:
    token = psc_token(key, people, people.pharmacist, *exercices)

    assert status(psc, token) == 401, who


def test_an_access_token_without_the_userinfo_claims_names_no_profession(
    psc: Client, key: SigningKey, people: People
) -> None:
    """What Pro Santé Connect's access token itself carries (its introspection answer): the
    national identifier, no `SubjectRole` nor `SubjectRefPro`, which come from UserInfo."""
    national = f"8{people.pharmacist}"
    access = key.sign(
        people,
        role=None,
        rpps=None,
        finess=None,
        sub=f"f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:{national}",
        preferred_username=national,
        otherIds=[{"identifiant": national, "origine": "RPPS", "qualite": 1}],
        acr="eidas1",
        scope="openid scope_all",
    )

    assert status(psc, access) == 401


def test_a_professional_is_known_by_the_rpps_only(
    psc: Client, key: SigningKey, people: People
) -> None:
    adeli = key.sign(
        people,
        role=None,
        SubjectNameID="0751234567",
        SubjectRole=[f"60^{PROFESSIONS}"],
    )
    nameless = key.sign(people, role=None, SubjectRole=[f"10^{PROFESSIONS}"])

    assert status(psc, adeli) == 401
    assert status(psc, nameless) == 401


@pytest.mark.parametrize(
    ("what", "changes"),
    [("wrong issuer", {"iss": "https://elsewhere.example"}), ("wrong audience", {"aud": "x"})],
)
def test_a_psc_token_for_another_issuer_or_audience_is_refused(
    psc: Client, key: SigningKey, people: People, what: str, changes: dict[str, str]
) -> None:
    token = psc_token(key, people, people.prescriber, exercice("10"))
    forged = key.sign(
        people,
        role=None,
        rpps=None,
        finess=None,
        SubjectNameID=f"8{people.prescriber}",
        SubjectRole=[f"10^{PROFESSIONS}"],
        **changes,
    )

    assert status(psc, token) == 404
    assert status(psc, forged) == 401, what


def test_patients_keep_their_own_shape_and_professionals_come_through_psc(
    psc: Client, key: SigningKey, people: People
) -> None:
    patient = key.sign(people, role="patient", rpps=None, finess=None, ins=people.patient)
    ordo_pharmacist = key.sign(people)  # role, rpps and finess: ordo's shape

    mine = psc.get("/v1/patients/me/prescriptions", headers=bearer(patient))

    assert mine.status_code == 200, mine.text
    assert status(psc, ordo_pharmacist) == 401


def test_the_claims_shape_is_checked_at_start(tmp_path: Path) -> None:
    env = {"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": "s" * 32}

    assert Settings.from_env({**env, "ORDO_AUTH_CLAIMS": "psc"}).auth_claims == "psc"
    assert Settings.from_env(env).auth_claims == "ordo"
    with pytest.raises(ValueError, match="ORDO_AUTH_CLAIMS"):
        Settings.from_env({**env, "ORDO_AUTH_CLAIMS": "saml"})
