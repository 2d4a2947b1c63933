"""`scripts/demo`: fill a running ordo with a realistic day of e-prescriptions, through its API.

Every step is an HTTP call to the server at `--url` (by default `scripts/serve`'s), so the demo
also exercises the API: a non-2xx answer that was not the point, or an answer that contradicts
the contract, stops it. It shares the server's settings (ORDO_DATA_DIR, ORDO_AUTH_SECRET,
ORDO_DATABASE_URL): it signs its tokens with the same secret, and imports the shipped sample of
the medicines catalogue into the same store when none is in force.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
from rich.console import Console
from rich.text import Text

from adapters.bootstrap import catalogue_store_for
from adapters.catalogue import SAMPLE_DIR
from adapters.catalogue.importer import import_directory
from adapters.config import Settings
from tools.cast import PATIENT, SKENAN
from tools.demo.client import Api, DemoError, Tokens, expect
from tools.demo.day import Report, fill
from tools.demo.printing import CURL_TOKEN_TTL, print_summary

SERVE_URL = "http://127.0.0.1:8000"  # where scripts/serve listens by default
DESCRIPTION = "fill a running ordo with a realistic demo day, through its API"
SAMPLE_DATE = date(2022, 6, 2)  # the official files the shipped sample was cut from


@dataclass(frozen=True)
class DemoOptions:
    url: str = SERVE_URL
    prescriptions: int = 40
    seed: int = 1


def demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=DESCRIPTION)
    parser.add_argument("--url", default=SERVE_URL, help=f"the server (default {SERVE_URL})")
    parser.add_argument("--prescriptions", type=int, default=40, help="how many (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    return parser


def run(options: DemoOptions, settings: Settings) -> Report:
    """Play the day against the server at `options.url`, which uses `settings`' store."""
    if not settings.auth_secret:
        raise DemoError("the demo signs HS256 tokens: set ORDO_AUTH_SECRET")
    tokens = Tokens(settings.auth_secret)
    return asyncio.run(_run(options, settings, tokens))


async def _run(options: DemoOptions, settings: Settings, tokens: Tokens) -> Report:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call otherwise
    async with httpx.AsyncClient(base_url=options.url, timeout=30) as client:
        api = Api(client, tokens)
        catalogue = await _catalogue(api, settings)
        report = await fill(api, options.prescriptions, options.seed)
        report.catalogue = catalogue
        report.sample_document = await save_sample_document(api, report, settings.data_dir)
        return report


async def save_sample_document(api: Api, report: Report, directory: Path) -> Path:
    """The day's first prescription (a secure one: numbers in words too) as its patient
    receives it, written where the summary says."""
    played = report.played[0]
    path = f"/v1/prescriptions/{played.prescription_id}/document.pdf"
    token = api.tokens.patient(played.plan.patient)
    response = await api.call("print the ordonnance (PDF)", "GET", path, token)
    expect(response.content.startswith(b"%PDF-"), f"{path} is not a PDF")
    sample = directory / f"ordonnance-{played.prescription_id}.pdf"
    await asyncio.to_thread(_write, sample, response.content)
    return sample


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


async def _catalogue(api: Api, settings: Settings) -> str:
    """What the server's medicines catalogue is: its own when it knows the demo's packs (say a
    server in containers, its sample imported there), else the one `ensure_catalogue` puts in
    the store the demo shares with it."""
    if await _knows_skenan(api):
        return "the server's, which knows the demo's packs"
    catalogue = await ensure_catalogue(settings)
    await _catalogue_in_use(api, catalogue)
    return catalogue


async def ensure_catalogue(settings: Settings) -> str:
    """The instance's medicines catalogue: the shipped sample of the public database is
    imported when none is in force, so the demo's packs are real and their rules apply."""
    async with catalogue_store_for(settings) as store:
        current = await store.current()
        if current is not None:
            return f"snapshot {current.snapshot_id} of {current.snapshot_date} in force"
        await import_directory(store, SAMPLE_DIR, snapshot_date=SAMPLE_DATE)
        return f"the shipped sample of the BDPM ({SAMPLE_DATE}) imported"


async def _catalogue_in_use(api: Api, catalogue: str, patience: float = 10.0) -> None:
    """Wait until the server knows Skenan: a running server picks an import up within
    ORDO_CATALOGUE_REFRESH_SECONDS. One that never does uses another store: go on without."""
    deadline = asyncio.get_running_loop().time() + patience
    while asyncio.get_running_loop().time() < deadline:
        if await _knows_skenan(api):
            return
        await asyncio.sleep(0.25)
    logging.getLogger("ordo.demo").warning("the server does not use the catalogue: %s", catalogue)


async def _knows_skenan(api: Api) -> bool:
    token = api.tokens.patient(PATIENT.value)
    headers = {"Authorization": f"Bearer {token}"}
    response = await api.client.get(f"/v1/products/{SKENAN.value}", headers=headers)
    return response.status_code == 200


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """0 when the whole day was played, 1 when the API refused or contradicted it or could not
    be reached, 2 for a wrong option."""
    args = demo_parser().parse_args(argv)
    if args.prescriptions < 1:
        _fail("--prescriptions must be at least 1")
        return 2
    options = DemoOptions(args.url, args.prescriptions, args.seed)
    settings = Settings.from_env()
    try:
        report = run(options, settings)
    except DemoError as error:
        _fail(f"{error}")
        return 1
    except httpx.TransportError as error:
        reason = f"{error or type(error).__name__}"
        _fail(f"cannot reach {options.url}: {reason} (is scripts/serve running?)")
        return 1
    assert settings.auth_secret is not None  # run() checked it
    tokens = Tokens(settings.auth_secret, CURL_TOKEN_TTL)
    print_summary(console or Console(), report, options.url, tokens)
    return 0


def _fail(message: str) -> None:
    Console(stderr=True).print(Text.assemble(("scripts/demo: ", "bold red"), message))
