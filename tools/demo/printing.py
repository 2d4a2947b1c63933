"""What the demo prints: the API calls it made by action, what the day amounted to, what each
counter scene was answered, and three `curl` lines to read the showcase prescription as its
pharmacist, prescriber and patient."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from tools.demo.client import Tokens
from tools.demo.day import Report, day_facts
from tools.demo.plan import Plan

CURL_TOKEN_TTL = 8 * 3600


ACTIONS = (  # paths under /v1/prescriptions
    ("issue prescription", "POST /"),
    ("print QR code", "GET  /{id}/qr.svg"),
    ("print the ordonnance (PDF)", "GET  /{id}/document.pdf"),
    ("transmit to pharmacy", "POST /{id}/transmissions"),
    ("write in conversation", "POST /v1/conversations/{c}/messages"),
    ("read as pharmacist", "GET  /{id}"),
    ("dispense", "POST /{id}/dispensations"),
    ("bill", "POST /{id}/dispensations/{d_id}/billing"),
    ("how much now", "GET  /{id}/dispensable"),
    ("dispense (rules)", "POST /{id}/dispensations"),
    ("withdraw", "POST /{id}/dispensations/{d_id}/withdrawal"),
    ("refused as the rules say", "POST /{id}/dispensations"),
    ("cancel", "POST /{id}/cancel"),
    ("change consent", "PUT  /{id}/execution-view-consent"),
    ("read as prescriber", "GET  /{id}"),
    ("read as patient", "GET  /{id}"),
    ("read history", "GET  /{id}/events"),
)


def print_summary(console: Console, report: Report, base_url: str, tokens: Tokens) -> None:
    console.print(_actions_table(report.counts))
    console.print(_day_table(report))
    console.print(_rules_table(report))
    console.print(f"Medicines catalogue: {report.catalogue}", highlight=False)
    if report.sample_document is not None:
        number = report.played[0].prescription_id
        console.print(
            f"Sample ordonnance (PDF, the patient's copy): {report.sample_document}\n"
            f"  the prescriber's copy of any prescription: ordo document {number} --out FILE.pdf",
            highlight=False,
            soft_wrap=True,
        )
    _print_curls(console, report, base_url, tokens)


def _rules_table(report: Report) -> Table:
    table = Table(title="how much may be dispensed now", title_justify="left")
    table.add_column("rule")
    table.add_column("prescription", style="dim")
    table.add_column("what the API answered")
    for shown in report.rules:
        table.add_row(shown.rule, shown.prescription_id, shown.outcome)
    return table


def _actions_table(counts: Counter[str]) -> Table:
    table = Table(title="scripts/demo: API calls", title_justify="left")
    table.add_column("action")
    table.add_column("request (under /v1/prescriptions)", style="dim")
    table.add_column("calls", justify="right")
    for action, request in ACTIONS:
        table.add_row(action, request, str(counts[action]))
    table.add_section()
    table.add_row("total", "", str(counts.total()), style="bold")
    return table


def _day_table(report: Report) -> Table:
    table = Table(title="the day", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    corsicans = sum(ins[5:7] in ("2A", "2B") for ins in report.cast.patients)
    table.add_row("prescribers (RPPS)", str(len(report.cast.prescribers)))
    table.add_row("patients (INS), born in Corsica", f"{len(report.cast.patients)}, {corsicans}")
    table.add_row("pharmacies (FINESS)", str(len(report.cast.pharmacies)))
    table.add_section()
    for what, count in day_facts(report).items():
        text = f"{count / 100:.2f} €" if what.endswith("(cents)") else str(count)
        table.add_row(what.removesuffix(" (cents)"), text)
    return table


def _print_curls(console: Console, report: Report, base_url: str, tokens: Tokens) -> None:
    played = report.showcase()
    plan, url = played.plan, f"{base_url.rstrip('/')}/v1/prescriptions/{played.prescription_id}"
    pharmacy = plan.visits[0].pharmacy if plan.visits else report.cast.pharmacies[0]
    examples = [
        (
            f"as a pharmacist of {pharmacy.name} (FINESS {pharmacy.finess})",
            tokens.pharmacist(pharmacy.finess, pharmacy.pharmacists[0]),
        ),
        (_prescriber_caption(plan), tokens.prescriber(plan.prescriber)),
        ("as the patient: everything, with the dispensations", tokens.patient(plan.patient)),
    ]
    console.print(f"\nTry it (tokens valid {CURL_TOKEN_TTL // 3600} h):")
    for caption, token in examples:
        console.print(f"# {caption}", style="dim", markup=False, highlight=False)
        line = f"curl -s -H 'Authorization: Bearer {token}' {url}"
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _prescriber_caption(plan: Plan) -> str:
    if plan.consent_now():
        return "as the prescriber: the patient agreed, the dispensations are shown"
    return "as the prescriber: the patient opposed, the dispensations are masked"
