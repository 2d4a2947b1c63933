"""Schemathesis hooks for the fuzzing run of test_schemathesis.py (SCHEMATHESIS_HOOKS).

Each generated call carries a token of one of the four roles (`ordo token`, handed over in
ORDO_FUZZ_TOKENS): 9 times in 10 the role that may make that call, so that the stateful phase can
chain issue -> dispense -> bill, and otherwise any role, so that refusals are fuzzed too.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import schemathesis

# A generated call, as schemathesis hands it to the hooks (whatever kind of operation it is for).
Call = schemathesis.Case[Any]

TOKENS: dict[str, str] = json.loads(os.environ["ORDO_FUZZ_TOKENS"])
CHOOSE = random.Random(int(os.environ.get("ORDO_FUZZ_SEED", "12")))
# The role whose calls an operation is for, by the last words of its path.
ROLE_OF_PATH = {
    "/dispensations": "pharmacist",
    "/billing": "pharmacist",
    "/withdrawal": "pharmacist",
    "/adaptations": "pharmacist",
    "/dispensable": "pharmacist",
    "/pharmacies/me/inbox": "pharmacist",
    "/transmissions": "patient",
    "/execution-view-consent": "patient",
    "/patients/me/prescriptions": "patient",
    "/events": "insurer",
    "/reconciliation/batches": "insurer",
    "/items": "insurer",
    "/v1/prescriptions": "prescriber",
    "/cancel": "prescriber",
    "/send-to-patient": "prescriber",
    "/prescribers/me/prescriptions": "prescriber",
    "/access-log": "insurer",
    "/pharmacies/me/conversations": "pharmacist",
    "/patients/me/conversations": "patient",
    "/messages": "patient",
    "/fhir/R4": "prescriber",
    "/MedicationRequest": "prescriber",
    "/$cancel": "prescriber",
    "/MedicationDispense": "pharmacist",
    "/$withdraw": "pharmacist",
    "/subscriptions": "pharmacist",
}


def role_for(method: str, path: str) -> str:
    for ending, role in ROLE_OF_PATH.items():
        if path.rstrip("/").endswith(ending.rstrip("/")) or (
            ending == "/reconciliation/batches" and "/reconciliation/" in path
        ):
            return role
    return "pharmacist" if method == "GET" else "prescriber"


@schemathesis.auth(refresh_interval=None)
class RoleTokens:
    def get(self, case: Call, context: schemathesis.AuthContext) -> str:
        operation = context.operation
        role = role_for(operation.method.upper(), operation.path)
        if CHOOSE.random() < 0.1:
            role = CHOOSE.choice(sorted(TOKENS))
        return TOKENS[role]

    def set(self, case: Call, data: str, context: schemathesis.AuthContext) -> None:
        headers = case.headers.copy()  # as before, the generated mapping is left as it was
        headers["Authorization"] = f"Bearer {data}"
        case.headers = headers


@schemathesis.serializer("application/x-ndjson")
def ndjson_body(context: Any, value: Any) -> bytes:
    """The reconciliation batch is declared as text: send it as it was generated."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


@schemathesis.deserializer("application/x-ndjson")
def ndjson_items(context: Any, response: Any) -> list[Any]:
    return [json.loads(line) for line in response.content.splitlines() if line.strip()]
