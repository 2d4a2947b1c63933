"""The ordonnance as a PDF (contract.md "The ordonnance as a document"), through HTTP on the
embedded default and on PostgreSQL: what is printed is read back from the PDF as a pharmacist's
software would, the text with pdfplumber and the QR code from the rendered page with zxing-cpp."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pdfplumber
import pypdfium2
import pytest
import zxingcpp
from pdfminer.pdftypes import resolve1

from adapters.document.french import long_date
from adapters.document.pdf import MARGIN, MASKED_EXECUTION, TRANSMISSION_TEXT
from tests.api.test_dispensing_rules_api import give, morphine, prescribe
from tests.api.test_prescriptions_api import assert_problem, dispense, issue
from tests.conftest import Client
from tools.cast import People

A4_POINTS = (595.28, 841.89)
CONSENT = "Accord du patient pour la consultation des données d'exécution par le prescripteur"


def document(client: Client, number: str, headers: dict[str, str]) -> bytes:
    response = client.get(f"/v1/prescriptions/{number}/document.pdf", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    return response.content


def text_of(pdf: bytes) -> str:
    """The text of every page, as pdfplumber extracts it (what a reader can copy or search)."""
    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        return "\n".join(page.extract_text() for page in opened.pages)


def pages_of(pdf: bytes) -> list[str]:
    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        return [page.extract_text() for page in opened.pages]


def qr_codes_on_first_page(pdf: bytes) -> list[str]:
    """The QR codes a scanner finds on the first page rendered at 150 dpi."""
    rendered = pypdfium2.PdfDocument(pdf)
    try:
        image = rendered[0].render(scale=150 / 72).to_pil()
    finally:
        rendered.close()
    return [found.text for found in zxingcpp.read_barcodes(image)]


def fonts_of(pdf: bytes) -> list[dict[str, Any]]:
    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        return [
            resolve1(font)
            for page in opened.pages
            for font in resolve1(page.page_obj.resources["Font"]).values()
        ]


# --- what is printed --------------------------------------------------------------------------


def test_the_document_carries_every_field_of_the_ordonnance(client: Client, people: People) -> None:
    created = issue(client, people, 3, 1)
    number = created["prescription_id"]

    text = text_of(document(client, number, people.as_prescriber()))

    assert f"Prescripteur : RPPS {people.prescriber}" in text
    assert f"Patient : INS {people.patient}" in text
    issued_on = date.fromisoformat(created["issued_on"])
    assert f"Date de prescription : {long_date(issued_on)}" in text
    for line_no in (1, 2):
        assert f"{line_no}. Paracétamol 1 g" in text
    assert text.count(f"CIP13 {people.paracetamol}") == 2
    assert text.count("Posologie : 1 comprimé 3 fois par jour") == 2
    assert text.count("Durée : 8 jours") == 2
    assert "Quantité : 3 boîtes" in text and "Quantité : 1 boîte" in text
    assert number in text.split("Prescription")[0]  # the number, under the QR code
    assert f"{CONSENT} : OUI" in text
    assert TRANSMISSION_TEXT in text


def test_the_qr_code_decoded_from_the_page_is_the_qr_payload(
    client: Client, people: People
) -> None:
    created = issue(client, people)

    pdf = document(client, created["prescription_id"], people.as_pharmacist())

    assert qr_codes_on_first_page(pdf) == [created["qr_payload"]]


def test_the_document_is_a4_with_every_font_embedded(client: Client, people: People) -> None:
    pdf = document(client, issue(client, people)["prescription_id"], people.as_patient())

    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        sizes = [(round(page.width, 2), round(page.height, 2)) for page in opened.pages]
        characters = {char["text"] for page in opened.pages for char in page.chars}
    assert sizes == [A4_POINTS]
    fonts = fonts_of(pdf)
    assert fonts and all("FontFile2" in resolve1(font["FontDescriptor"]) for font in fonts)
    assert {"é", "à", "É"} <= characters  # accents are text, not drawings


def test_a_secure_prescription_writes_its_numbers_in_words_too(
    client: Client, people: People
) -> None:
    number = prescribe(
        client,
        people,
        morphine(dosage="1 gélule matin et soir, 12 heures d'intervalle", fraction_days=7),
        kind="secure",
    )

    text = text_of(document(client, number, people.as_prescriber()))

    assert "Ordonnance sécurisée" in text
    assert "Durée : 28 jours (vingt-huit jours)" in text
    assert "Quantité : 4 (quatre) boîtes" in text
    assert "Posologie : 1 (un) gélule matin et soir, 12 (douze) heures d'intervalle" in text
    assert "Délivrance fractionnée par périodes de 7 jours (sept jours)" in text
    assert "Stupéfiant" in text


def test_a_standard_prescription_writes_figures_only(client: Client, people: People) -> None:
    text = text_of(document(client, issue(client, people)["prescription_id"], people.as_patient()))

    assert "Ordonnance sécurisée" not in text
    assert "huit" not in text and "(trois)" not in text


# --- the patient's opposition -----------------------------------------------------------------


def test_the_prescribers_copy_under_opposition_shows_no_execution_data(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3, consent=False)["prescription_id"]
    assert dispense(client, people, number, (1, 2)).status_code == 201

    prescriber = text_of(document(client, number, people.as_prescriber()))

    assert f"{CONSENT} : NON" in prescriber
    assert MASKED_EXECUTION in " ".join(prescriber.split())
    assert people.pharmacy not in prescriber
    assert "Délivré" not in prescriber and "reste" not in prescriber


@pytest.mark.parametrize("reader", ["patient", "pharmacist"])
def test_the_patient_and_pharmacists_copies_show_the_dispensings(
    client: Client, people: People, reader: str
) -> None:
    number = issue(client, people, 3, consent=False)["prescription_id"]
    assert dispense(client, people, number, (1, 2)).status_code == 201
    headers = people.as_patient() if reader == "patient" else people.as_pharmacist()

    text = text_of(document(client, number, headers))

    assert f"{CONSENT} : NON" in text
    assert f"pharmacie FINESS {people.pharmacy}" in text
    assert "ligne 1 : 2 boîtes de Paracétamol 1 g" in text
    assert "Délivré : 2 boîtes ; reste : 1 boîte" in text
    assert MASKED_EXECUTION not in " ".join(text.split())


def test_the_prescribers_copy_with_consent_shows_the_dispensings(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3, consent=True)["prescription_id"]
    assert dispense(client, people, number, (1, 1)).status_code == 201

    text = text_of(document(client, number, people.as_prescriber()))

    assert f"pharmacie FINESS {people.pharmacy}" in text
    assert "Délivré : 1 boîte ; reste : 2 boîtes" in text


def test_a_cancelled_prescription_says_so(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]
    cancelled = client.post(
        f"/v1/prescriptions/{number}/cancel",
        json={"reason": "erreur de patient"},
        headers=people.as_prescriber(),
    )
    assert cancelled.status_code == 200, cancelled.text

    assert "ANNULÉE" in text_of(document(client, number, people.as_pharmacist()))


# --- long prescriptions -----------------------------------------------------------------------


def test_a_long_prescription_flows_onto_pages_that_each_carry_the_mentions(
    client: Client, people: People
) -> None:
    created = issue(client, people, *range(1, 41))

    pages = pages_of(document(client, created["prescription_id"], people.as_prescriber()))

    assert len(pages) > 1
    for page_no, page in enumerate(pages, 1):
        assert f"{CONSENT} : OUI" in page
        assert TRANSMISSION_TEXT in page
        assert f"n° {created['prescription_id']}" in page and f"page {page_no}" in page
    text = "\n".join(pages)
    assert all(f"{line_no}. Paracétamol 1 g" in text for line_no in range(1, 41))
    assert "Quantité : 40 boîtes" in text


def test_a_secure_narcotic_given_in_part_still_prints(client: Client, people: People) -> None:
    number = prescribe(client, people, morphine(), kind="secure")
    assert give(client, people, number, 1).status_code == 201

    text = text_of(document(client, number, people.as_patient()))

    assert "ligne 1 : 1 boîte de Skenan" in text
    assert "Délivré : 1 boîte ; reste : 3 boîtes" in text


# --- who may have it --------------------------------------------------------------------------


def test_a_prescriber_who_did_not_write_it_gets_404(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]

    response = client.get(
        f"/v1/prescriptions/{number}/document.pdf",
        headers=people.as_prescriber(people.other_prescriber),
    )

    assert_problem(response, 404, "not_found")


def test_another_patient_gets_404(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]

    response = client.get(
        f"/v1/prescriptions/{number}/document.pdf",
        headers=people.as_patient(people.corsican_patient),
    )

    assert_problem(response, 404, "not_found")


def test_the_insurer_has_no_copy(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]

    response = client.get(f"/v1/prescriptions/{number}/document.pdf", headers=people.as_insurer())

    assert_problem(response, 403, "forbidden")


def test_an_unknown_prescription_gets_404(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]
    unknown = number[:-1] + ("A" if number[-1] != "A" else "B")

    response = client.get(
        f"/v1/prescriptions/{unknown}/document.pdf", headers=people.as_pharmacist()
    )

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_without_a_token_the_answer_is_401(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]

    response = client.get(f"/v1/prescriptions/{number}/document.pdf")

    assert response.status_code == 401


def test_the_document_is_in_the_openapi_document(client: Client) -> None:
    schema = client.get("/schema/openapi.json").json()

    operation = schema["paths"]["/v1/prescriptions/{prescription_id}/document.pdf"]["get"]
    assert "application/pdf" in operation["responses"]["200"]["content"]
    assert {"403", "404"} <= operation["responses"].keys()


def test_a_label_without_spaces_stays_inside_the_page(client: Client, people: People) -> None:
    label = "Préparation" + "X" * 300  # a pasted code: no space to break at
    body = people.prescription_body(2)
    body["lines"][0]["product"] = {"system": "DCI", "label": label}
    response = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    assert response.status_code == 201, response.text

    pdf = document(client, response.json()["prescription_id"], people.as_prescriber())

    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        rightmost = max(char["x1"] for page in opened.pages for char in page.chars)
        text = "".join(page.extract_text() for page in opened.pages).replace("\n", "")
    assert rightmost <= A4_POINTS[0] - MARGIN + 1
    assert label in text
    assert "DCI (dénomination commune internationale)" in text
