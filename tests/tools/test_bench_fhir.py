"""What `scripts/bench dispensing --fhir` sends is what it claims to measure: each body is
accepted by the API (so a run's rate counts successes, never refusals), and each FHIR run's
ratio is taken over its /v1 twin of the same server and clients."""

from __future__ import annotations

from collections import Counter

from tests.conftest import Client
from tools.bench import fhir
from tools.bench.load import Observation, Run, Tally, Window, make_cast
from tools.cast import People, prescriber

CAST = make_cast(prescribers=1, pharmacies=1, patients=20)


def run(target: str, clients: int, answered: int) -> Run:
    tally = Tally(latencies=[0.001] * answered, errors=Counter())
    observation = Observation(cores={}, sessions={})
    return Run(target, "postgres", 2, clients, Window(0.0, 1.0), tally, observation)


def test_the_bodies_of_both_doors_are_accepted(client: Client, people: People) -> None:
    token, pharmacist = CAST.prescribers[0], CAST.pharmacists[0]
    v1 = fhir.v1_prescription(CAST.product, people.patient)
    bundle = fhir.fhir_prescription(CAST.product, people.patient, prescriber(0).value)

    issued = client.post(
        "/v1/prescriptions", content=v1, headers={"Authorization": f"Bearer {token}"}
    )
    sent = client.post(
        "/fhir/R4",
        content=bundle,
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )

    assert issued.status_code == 201, issued.text
    assert sent.status_code == 200, sent.text
    number = issued.json()["prescription_id"]
    dispensed = client.post(
        "/fhir/R4/MedicationDispense",
        content=fhir.medication_dispense(number, CAST.product),
        headers={"Authorization": f"Bearer {pharmacist}", "content-type": "application/json"},
    )
    assert dispensed.status_code == 201, dispensed.text


def test_each_fhir_run_is_compared_with_its_v1_twin() -> None:
    runs = [
        run("API", 32, 1000),
        run("API fhir dispensing", 32, 900),
        run("API read", 32, 2000),
        run("API fhir read", 32, 1000),
        run("API prescribing 3 lines", 1, 100),
        run("API fhir prescribing 3 lines", 1, 80),
    ]

    lines = fhir.ratio_lines(runs)

    assert [line.split(":")[0] for line in lines] == [
        "- dispensing, postgres w2, 32 clients",
        "- read, postgres w2, 32 clients",
        "- prescribing 3 lines, postgres w2, 1 clients",
    ]
    assert "ratio 0.90 (aim ≥ 0.8: met)" in lines[0]
    assert "ratio 0.50 (aim ≥ 0.8: **not met**)" in lines[1]
    assert "ratio 0.80 (aim ≥ 0.8: met)" in lines[2]
