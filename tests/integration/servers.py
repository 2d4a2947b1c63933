"""Run `ordo serve` as a real process, the way production does, for integration tests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tools import harness
from tools.cast import SECRET, People
from tools.harness import free_port

REPO = harness.ROOT
__all__ = ["REPO", "free_port", "ordo_process", "ordo_server", "wait_for"]


@contextmanager
def ordo_server(
    database_url: str,
    data_dir: Path,
    *,
    workers: int = 1,
    failpoint: str | None = None,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the API on a free port; yields its base URL and process, stops it afterwards.
    With `log`, its output (the structured log lines included) goes to that file."""
    env = {
        **os.environ,
        "ORDO_DATABASE_URL": database_url,
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_AUTH_SECRET": SECRET,
    }
    if failpoint:
        env["ORDO_FAILPOINT"] = failpoint
    env.update(extra_env or {})
    with harness.serving(
        env, log, workers=workers, patience=30.0, grace=10.0, stdout_to_log=log is not None
    ) as server:
        yield server.base_url, server.process


@contextmanager
def ordo_process(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `ordo COMMAND…` (relay, worker, project) with its output in `log_path`."""
    environment = {**os.environ, "ORDO_AUTH_SECRET": SECRET, **env}
    process = harness.start_ordo(command, environment, log_path)
    try:
        yield process
    finally:
        harness.stop(process, grace=15.0)


def wait_for(check: Callable[[], object], seconds: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


def dispense_two_of_three(base_url: str, people: People) -> None:
    """A prescriber registers 3 packs and a pharmacy dispenses 2, through the API."""
    created = httpx.post(
        f"{base_url}/v1/prescriptions",
        json=people.prescription_body(3),
        headers=people.as_prescriber(),
    )
    number = created.json()["prescription_id"]
    dispensed = httpx.post(
        f"{base_url}/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 2}]},
        headers=people.as_pharmacist(),
    )
    assert dispensed.status_code == 201, dispensed.text


def listed_as_dispensed(base_url: str, people: People) -> bool:
    """Whether the prescriber's list already shows those 2 packs dispensed."""
    page = httpx.get(
        f"{base_url}/v1/prescribers/me/prescriptions", headers=people.as_prescriber()
    ).json()
    return bool(page["items"]) and page["items"][0]["lines"][0]["dispensed"] == 2
