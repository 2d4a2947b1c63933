"""The demo day played through the API: each prescription of the plan issued, printed, sent,
dispensed (in one or two pharmacies), billed, cancelled or opposed as drawn, and read back by
its prescriber and patient; then the counter scenes of `tools.demo.counter`."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tools.demo.client import Api, expect
from tools.demo.counter import RuleShown, show_rules
from tools.demo.plan import Cast, Plan, Visit, make_cast, plan_day

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Played:
    prescription_id: str
    plan: Plan


@dataclass
class Report:
    cast: Cast
    played: list[Played]
    counts: Counter[str] = field(default_factory=Counter)
    rules: list[RuleShown] = field(default_factory=list)
    catalogue: str = ""
    sample_document: Path | None = None

    def showcase(self) -> Played:
        return next((p for p in self.played if p.plan.showcase), self.played[0])


async def fill(api: Api, prescriptions: int, seed: int) -> Report:
    """Draw the day from the seed and play it, prescription after prescription."""
    rng = random.Random(seed)
    cast = make_cast(random.Random())
    today = datetime.now(PARIS).date()
    report = Report(cast=cast, played=[], counts=api.counts)
    for plan in plan_day(rng, cast, prescriptions):
        report.played.append(Played(await play(api, plan, today), plan))
    report.rules = await show_rules(api, cast, today)
    return report


async def play(api: Api, plan: Plan, today: date) -> str:
    number = await _issue(api, plan, today)
    path = f"/v1/prescriptions/{number}"
    if plan.transmitted:
        await _transmit(api, path, plan)
    remaining = {no: medicine.quantity for no, medicine in enumerate(plan.medicines, 1)}
    for visit_no in range(1, len(plan.visits) + 1):
        await _dispense(api, path, plan, visit_no, remaining)
    if plan.cancelled:
        await _cancel(api, path, plan)
    if plan.consent_withdrawn:
        await _withdraw_consent(api, path, plan)
    await _prescriber_looks(api, path, plan)
    if plan.patient_looks:
        await _patient_looks(api, path, plan)
    return number


def _issue_body(plan: Plan, today: date) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient": {"ins": plan.patient},
        "kind": plan.kind,
        "execution_view_consent": plan.consent,
        "lines": [
            {
                "product": m.product,
                "quantity": m.quantity,
                "dosage": m.dosage,
                "duration_days": m.duration_days,
                "narcotic": m.narcotic,
            }
            for m in plan.medicines
        ],
    }
    if plan.days_ago:
        body["issued_on"] = (today - timedelta(days=plan.days_ago)).isoformat()
    return body


async def _issue(api: Api, plan: Plan, today: date) -> str:
    token = api.tokens.prescriber(plan.prescriber)
    body = _issue_body(plan, today)
    issued = await api.json("issue prescription", "POST", "/v1/prescriptions", token, body)
    number: str = issued["prescription_id"]
    expect(issued["status"] == "active", f"a new prescription is {issued['status']}")
    expect(bool(issued.get("qr_payload")), "a new prescription has no qr_payload")
    svg = await api.call("print QR code", "GET", f"/v1/prescriptions/{number}/qr.svg", token)
    expect("<svg" in svg.text, "qr.svg is not an SVG image")
    return number


async def _transmit(api: Api, path: str, plan: Plan) -> None:
    body = {"finess": plan.visits[0].pharmacy.finess, "message": "Je passe la chercher ce soir."}
    token = api.tokens.patient(plan.patient)
    sent = await api.json("transmit to pharmacy", "POST", f"{path}/transmissions", token, body)
    await _converse(api, plan, sent["conversation_id"])


async def _converse(api: Api, plan: Plan, conversation_id: str) -> None:
    """The pharmacy answers over MSSanté, the patient thanks it, the pharmacist closes ("FIN")."""
    visit = plan.visits[0]
    pharmacist = api.tokens.pharmacist(visit.pharmacy.finess, visit.pharmacist)
    patient = api.tokens.patient(plan.patient)
    messages = f"/v1/conversations/{conversation_id}/messages"
    for token, subject, text in (
        (pharmacist, "Prête à 18 h", "Votre commande sera prête à 18 h."),
        (patient, "Merci", "Merci, à ce soir."),
        (pharmacist, "FIN", "Bonne soirée."),
    ):
        await api.json(
            "write in conversation", "POST", messages, token, {"subject": subject, "body": text}
        )


async def _dispense(
    api: Api, path: str, plan: Plan, visit_no: int, remaining: dict[int, int]
) -> None:
    """Scan the QR code (read), hand over the packs (dispense), and maybe bill at once."""
    visit = plan.visits[visit_no - 1]
    token = api.tokens.pharmacist(visit.pharmacy.finess, visit.pharmacist)
    seen = await api.json("read as pharmacist", "GET", path, token)
    elsewhere = any(v.pharmacy != visit.pharmacy for v in plan.visits[: visit_no - 1])
    expect(seen["dispensed_elsewhere"] is elsewhere, f"dispensed_elsewhere is not {elsewhere}")
    body = {"lines": [_dispensed_line(plan, visit, no, packs) for no, packs in visit.quantities]}
    key = {"Idempotency-Key": f"demo-{path.rsplit('/', 1)[-1]}-{visit_no}"}
    receipt = await api.json("dispense", "POST", f"{path}/dispensations", token, body, headers=key)
    for no, packs in visit.quantities:
        remaining[no] -= packs
    left = {line["line_no"]: line["remaining"] for line in receipt["lines"]}
    expect(left == remaining, f"remaining {left} after dispensing, expected {remaining}")
    if visit.billed:
        await _bill(api, path, plan, visit, receipt["dispensation_id"])


def _dispensed_line(plan: Plan, visit: Visit, line_no: int, packs: int) -> dict[str, Any]:
    line: dict[str, Any] = {"line_no": line_no, "quantity": packs}
    if line_no in visit.substituted:
        line["product"] = plan.medicines[line_no - 1].generic
    return line


def billed_cents(plan: Plan, visit: Visit) -> dict[int, int]:
    """What the pharmacy bills per line: generics cost about 30% less than the reference."""
    prices = {no: m.price_cents for no, m in enumerate(plan.medicines, 1)}
    return {
        no: packs * (prices[no] * 7 // 10 if no in visit.substituted else prices[no])
        for no, packs in visit.quantities
    }


async def _bill(api: Api, path: str, plan: Plan, visit: Visit, dispensation_id: str) -> None:
    number = path.rsplit("/", 1)[-1].replace("-", "")
    amounts = billed_cents(plan, visit)
    body = {
        "invoice_number": f"FAC-{visit.pharmacy.finess}-{number[:10]}",
        "lines": [
            {"line_no": no, "quantity": packs, "amount_cents": amounts[no]}
            for no, packs in visit.quantities
        ],
    }
    token = api.tokens.pharmacist(visit.pharmacy.finess, visit.pharmacist)
    url = f"{path}/dispensations/{dispensation_id}/billing"
    billed = await api.json("bill", "POST", url, token, body)
    expect(billed.get("billed") is True, "a billed dispensation does not read billed")


async def _cancel(api: Api, path: str, plan: Plan) -> None:
    body = {"reason": "Traitement modifié après résultat d'analyse : nouvelle ordonnance."}
    token = api.tokens.prescriber(plan.prescriber)
    cancelled = await api.json("cancel", "POST", f"{path}/cancel", token, body)
    expect(cancelled["status"] == "cancelled", f"a cancelled prescription is {cancelled['status']}")


async def _withdraw_consent(api: Api, path: str, plan: Plan) -> None:
    token = api.tokens.patient(plan.patient)
    url = f"{path}/execution-view-consent"
    changed = await api.json("change consent", "PUT", url, token, {"consent": False})
    expect(changed["execution_view_consent"] is False, "consent still reads true after PUT")


async def _prescriber_looks(api: Api, path: str, plan: Plan) -> None:
    """The prescriber checks how the prescription was executed, unless the patient opposed."""
    view = await api.json("read as prescriber", "GET", path, api.tokens.prescriber(plan.prescriber))
    if plan.consent_now():
        expect(len(view["dispensations"]) == len(plan.visits), "dispensations missing")
        return
    masked = not view["execution_visible"] and not view["dispensations"]
    masked = masked and all(line["dispensed"] is None for line in view["lines"])
    expect(masked, "the prescriber sees execution data despite the patient's opposition")
    expect(view["status"] in ("active", "cancelled", "expired"), "status leaks execution")


async def _patient_looks(api: Api, path: str, plan: Plan) -> None:
    token = api.tokens.patient(plan.patient)
    view = await api.json("read as patient", "GET", path, token)
    expect(len(view["dispensations"]) == len(plan.visits), "the patient misses dispensations")
    history = await api.json("read history", "GET", f"{path}/events", token)
    expect(len(history["events"]) > len(plan.visits), "the history misses events")


def day_facts(report: Report) -> dict[str, int]:
    """What the day amounted to, as the plan says; the test checks it against the API."""
    plans = [played.plan for played in report.played]
    visits = [visit for plan in plans for visit in plan.visits]
    return {
        "prescriptions": len(plans),
        "secure (narcotic) prescriptions": sum(plan.kind == "secure" for plan in plans),
        "lines": sum(len(plan.medicines) for plan in plans),
        "packs prescribed": sum(m.quantity for plan in plans for m in plan.medicines),
        "packs dispensed": sum(packs for visit in visits for _, packs in visit.quantities),
        "dispensations": len(visits),
        "dispensed in two pharmacies": sum(len({v.pharmacy for v in p.visits}) > 1 for p in plans),
        "generic substitutions (lines)": sum(len(visit.substituted) for visit in visits),
        "billed dispensations": sum(visit.billed for visit in visits),
        "amount billed (cents)": sum(
            sum(billed_cents(p, v).values()) for p in plans for v in p.visits if v.billed
        ),
        "not dispensed yet": sum(not plan.visits for plan in plans),
        "cancelled": sum(plan.cancelled for plan in plans),
        "patient opposes the prescriber's view": sum(not p.consent_now() for p in plans),
    }
