"""Schemathesis, an OpenAPI fuzzer, against a real `ordo serve` on SQLite: the examples,
coverage, fuzzing and stateful phases, with tokens of every role. No answer may be a 5xx and
none may contradict the OpenAPI document.

Bounded in time (ORDO_FUZZ_MAX_SECONDS for the whole run, default 90) and
reproducible (ORDO_FUZZ_SEED). A failure prints schemathesis's own report: the operation, the
check, the request as a curl command and the answer; fix the server or the document.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from domain.actors import ROLES
from tests.integration.servers import REPO, ordo_server
from tools.cast import SECRET

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
CONFIG = Path(__file__).with_name("schemathesis.toml")  # realistic identifiers
SEED = os.environ.get("ORDO_FUZZ_SEED", "12")
MAX_SECONDS = os.environ.get("ORDO_FUZZ_MAX_SECONDS", "90")
# Who the tokens name: well-formed identifiers (the fuzzer invents the prescriptions).
IDENTITY = {
    "prescriber": ["--rpps", "10001234565"],
    "pharmacist": ["--rpps", "20001234564", "--finess", "750712184"],
    "patient": ["--ins", "184127645108946"],
    "insurer": [],
}


def tokens(env: dict[str, str]) -> dict[str, str]:
    """A token of each role, as a user makes one: `ordo token`."""
    made: dict[str, str] = {}
    for role in ROLES:
        command = [sys.executable, "-m", "adapters.cli", "token", "--role", role]
        made[role] = subprocess.run(
            [*command, *IDENTITY[role], "--ttl", "3600"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return made


def test_the_fuzzer_finds_no_server_error_and_no_answer_the_document_does_not_allow(
    tmp_path: Path,
) -> None:
    with ordo_server("", tmp_path) as (base_url, _):
        env = {**os.environ, "ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET}
        fuzz_env = {
            **env,
            "ORDO_FUZZ_TOKENS": json.dumps(tokens(env)),
            "ORDO_FUZZ_SEED": SEED,
            "SCHEMATHESIS_HOOKS": str(HOOKS),
            "NO_COLOR": "1",
        }
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                f"--config-file={CONFIG}",
                "run",
                f"{base_url}/schema/openapi.json",
                "--phases=examples,coverage,fuzzing,stateful",
                "--checks=not_a_server_error,response_schema_conformance",
                "--max-examples=30",
                f"--max-time={MAX_SECONDS}",
                f"--seed={SEED}",
                "--workers=1",
                "--request-timeout=30",  # a loaded CI machine is slow, not broken
                "--continue-on-failure",
                "--warnings=off",
                "--no-color",
            ],
            env=fuzz_env,
            cwd=tmp_path,  # its cache (.schemathesis/) stays out of the checkout
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    report = run.stdout + run.stderr
    assert run.returncode == 0, _failures(report)
    assert re.search(r"Stateful", report), report


def _failures(report: str) -> str:
    """Schemathesis's FAILURES and ERRORS sections, which name the operation and the check."""
    start = min(
        (report.find(title) for title in ("= FAILURES =", "= ERRORS =") if title in report),
        default=0,
    )
    return report[start:]
