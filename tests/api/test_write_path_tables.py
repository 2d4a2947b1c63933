"""Idempotency records and invoice claims live beside the log, not in it.

Given a keyed dispensing and a billing, when a reader follows the notification log, then it
sees only prescriptions' events: no fake `idempotency:` or `invoice:` streams to skip; and the
record and the claim are where a retry and a second billing find them.
"""

from __future__ import annotations

from adapters.config import Settings
from adapters.librarylog import open_library_log
from tests.api.test_billing_api import bill, dispensed
from tests.api.test_prescriptions_api import dispense, issue
from tests.conftest import Client
from tools.cast import People


def test_the_log_holds_only_events_and_retries_still_replay(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    first = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "lgo-7"})
    where = dispensed(client, people)
    billed = bill(client, people, where, invoice_number="F-7", quantity=2)
    assert (first.status_code, billed.status_code) == (201, 201)

    log = open_library_log(settings.database_url, settings.data_dir)
    try:
        streams = {str(n.originator_id) for n in log.notifications(0, 1000)}
        topics = {n.topic.rpartition(".v")[0] for n in log.notifications(0, 1000)}
    finally:
        log.close()

    assert all(not s.startswith(("idempotency:", "invoice:")) for s in streams), streams
    assert topics == {"PrescriptionIssued", "DispensationRecorded", "BillingRecorded"}
    again = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "lgo-7"})
    assert again.json() == first.json()
    taken = bill(client, people, dispensed(client, people), invoice_number="F-7", quantity=2)
    assert (taken.status_code, taken.json()["code"]) == (409, "invoice_number_used")
