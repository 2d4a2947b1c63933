"""Substitution through HTTP (contract v1.2 "Substitution and units"), with the shipped sample of
the public database imported, on SQLite and PostgreSQL: the prescriber's `non_substitutable`, the
pharmacist's `generic_refused`, `non_substitution` (MTE-PH, the prescriber told by MSSanté) and a
biosimilar's `lot`, in the read, the history and the lists, and every refusal's code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from domain.identifiers import Ins
from tests.api.test_catalogue_rules_api import give, line, pack, prescribe
from tests.api.test_document_api import document, text_of
from tests.api.test_lists_api import eventually
from tests.api.test_prescriptions_api import assert_problem
from tests.api.test_products_api import AMOXICILLINE_ARROW, CLAMOXYL, import_sample
from tests.conftest import Client
from tools.cast import People

LEVOTHYROX, THYROFIX = "3400930065556", "3400930013649"
LOVENOX, INHIXA = "3400936468665", "3400930129753"
CHILD = Ins.from_body("2220575123456").value  # born in May 2022


@pytest.fixture
def directory(tmp_path: Path, people: People) -> Path:
    path = tmp_path / "mssante.csv"
    path.write_text(f"rpps,address\n{people.prescriber},dr.martin@medecin.mssante.fr\n")
    return path


@pytest.fixture
def counter(settings: Settings, directory: Path) -> Iterator[Client]:
    import_sample(settings)
    app = build_app(msgspec.structs.replace(settings, mssante_directory=directory))
    with TestClient(app) as client:
        yield client


def written(code: str, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    mention = {} if reason is None else {"non_substitutable": {"reason": reason}}
    return {
        **line(pack(code, "Levothyrox 25 µg" if code == LEVOTHYROX else "x")),
        **mention,
        **extra,
    }


def prescribed(client: Client, people: People, *lines: dict[str, Any], **changes: Any) -> str:
    response = prescribe(client, people, *lines, kind="standard", **changes)
    assert response.status_code == 201, response.text
    number: str = response.json()["prescription_id"]
    return number


def history(client: Client, people: People, number: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_patient())
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = [entry["data"] for entry in response.json()["events"]]
    return events


# --- prescribing ------------------------------------------------------------------------------


def test_non_substitutable_is_shown_in_the_read_the_history_and_the_lists(
    counter: Client, people: People
) -> None:
    number = prescribed(counter, people, written(LEVOTHYROX, "MTE"))

    read = counter.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    issued = history(counter, people, number)[0]
    listed = eventually(
        lambda: counter.get("/v1/patients/me/prescriptions", headers=people.as_patient()).json(),
        lambda page: bool(page["items"]),
    )

    assert read["lines"][0]["non_substitutable"] == {"reason": "MTE"}
    assert issued["lines"][0]["non_substitutable"] == {"reason": "MTE"}
    assert [item["lines"][0]["non_substitutable"] for item in listed["items"]] == [
        {"reason": "MTE"}
    ]


def test_a_reason_the_line_does_not_allow_is_refused_naming_the_field(
    counter: Client, people: People
) -> None:
    mte = prescribe(counter, people, written(CLAMOXYL, "MTE"), kind="standard")
    efg = prescribe(counter, people, written(CLAMOXYL, "EFG"), kind="standard")

    assert assert_problem(mte, 422, "non_substitution_reason_invalid")["field"] == (
        "lines[0].non_substitutable.reason"
    )
    assert assert_problem(efg, 422, "non_substitution_reason_invalid")["detail"] == (
        "EFG is for a child under 6 on issued_on"
    )


def test_efg_is_accepted_for_a_child_and_cif_for_anyone(counter: Client, people: People) -> None:
    child = prescribed(counter, people, written(CLAMOXYL, "EFG"), patient={"ins": CHILD})
    cif = prescribed(counter, people, written(CLAMOXYL, "CIF"))

    assert child and cif


def test_an_unknown_reason_is_a_bad_body(counter: Client, people: People) -> None:
    response = prescribe(counter, people, written(CLAMOXYL, "XYZ"), kind="standard")

    assert response.status_code in {400, 422}
    assert response.json()["code"] == "invalid_request"


# --- dispensing -------------------------------------------------------------------------------


def test_the_generic_on_a_non_substitutable_line_is_refused(
    counter: Client, people: People
) -> None:
    number = prescribed(counter, people, written(LEVOTHYROX, "MTE"))

    refused = give(counter, people, number, 1, product=pack(THYROFIX))
    itself = give(counter, people, number, 1, product=pack(LEVOTHYROX))

    assert assert_problem(refused, 422, "substitution_excluded")["field"] == "lines[0].product"
    assert itself.status_code == 201, itself.text


def test_the_refused_generic_is_shown_in_the_read_and_the_history(
    counter: Client, people: People
) -> None:
    number = prescribed(counter, people, written(CLAMOXYL))

    given = give(counter, people, number, 1, generic_refused=True)
    on_an_excluded_line = give(
        counter,
        people,
        prescribed(counter, people, written(CLAMOXYL, "CIF")),
        1,
        generic_refused=True,
    )

    assert given.status_code == 201, given.text
    read = counter.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["dispensations"][0]["lines"][0]["generic_refused"] is True
    assert history(counter, people, number)[1]["lines"][0]["generic_refused"] is True
    assert assert_problem(on_an_excluded_line, 422, "invalid_request")["field"] == (
        "lines[0].generic_refused"
    )


def test_mte_ph_is_recorded_and_the_prescriber_is_told(counter: Client, people: People) -> None:
    number = prescribed(counter, people, written(LEVOTHYROX))

    given = give(counter, people, number, 1, non_substitution="MTE-PH")

    assert given.status_code == 201, given.text
    read = counter.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["dispensations"][0]["lines"][0]["non_substitution"] == "MTE-PH"
    recorded = history(counter, people, number)[1]
    assert recorded["lines"][0]["non_substitution"] == "MTE-PH"
    assert [(m["kind"], m["recipient"]) for m in recorded["mails"]] == [
        ("non_substitution_notice", "dr.martin@medecin.mssante.fr")
    ]


def test_mte_ph_outside_the_list_is_refused(counter: Client, people: People) -> None:
    number = prescribed(counter, people, written(CLAMOXYL))

    refused = give(counter, people, number, 1, non_substitution="MTE-PH")

    assert assert_problem(refused, 422, "non_substitution_reason_invalid")["field"] == (
        "lines[0].non_substitution"
    )


def test_mte_ph_for_a_prescriber_without_an_address_records_no_mail(
    settings: Settings, people: People
) -> None:
    import_sample(settings)
    with TestClient(build_app(settings)) as client:
        number = prescribed(client, people, written(LEVOTHYROX))
        given = give(client, people, number, 1, non_substitution="MTE-PH")

        assert given.status_code == 201, given.text
        assert history(client, people, number)[1]["mails"] == []


def test_a_biosimilar_is_given_with_its_lot(counter: Client, people: People) -> None:
    number = prescribed(counter, people, written(LOVENOX))

    without = give(counter, people, number, 1, product=pack(INHIXA))
    given = give(counter, people, number, 1, product=pack(INHIXA), lot="L2311A")

    assert assert_problem(without, 422, "lot_required")["field"] == "lines[0].lot"
    assert given.status_code == 201, given.text
    read = counter.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert [(x["product"]["code"], x["lot"]) for x in read["dispensations"][0]["lines"]] == [
        (INHIXA, "L2311A")
    ]


def test_a_generic_is_no_biosimilar_of_lovenox(counter: Client, people: People) -> None:
    number = prescribed(counter, people, written(LOVENOX))

    refused = give(counter, people, number, 1, product=pack(AMOXICILLINE_ARROW), lot="L1")

    assert_problem(refused, 422, "substitution_not_allowed")


def test_the_pdf_prints_the_mentions_of_the_lines_and_of_the_dispensings(
    counter: Client, people: People
) -> None:
    excluded = prescribed(counter, people, written(LEVOTHYROX, "MTE"))
    kept = prescribed(counter, people, written(LEVOTHYROX))
    assert give(counter, people, kept, 1, non_substitution="MTE-PH").status_code == 201

    excluded_text = text_of(document(counter, excluded, people.as_prescriber()))
    kept_text = text_of(document(counter, kept, people.as_pharmacist()))

    assert "Non substituable (MTE)" in excluded_text
    assert "1 boîte de Levothyrox 25 µg (non substituable (MTE-PH))" in kept_text
