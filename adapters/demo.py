"""`ordo demo`: fill an instance with a realistic day of e-prescriptions, through the public API.

A day is drawn from `random.Random(seed)`: prescribers (RPPS) write prescriptions for patients
(INS, some born in Corsica), patients send some to a pharmacy, pharmacies (FINESS) scan and
dispense them, sometimes in two pharmacies, sometimes with a generic, and bill part of what they
dispensed; one prescription is cancelled, one patient withdraws their consent. The people are
new at every run (a second run on the same store would otherwise give its patients a second,
overlapping narcotic prescription). Then the rules that decide how much may be given now are
shown one by one (`show_rules`): a narcotic in fractions, a late narcotic reduced to the days
left, a refused overlap, a renewal month by month, a withdrawal.

Every step is an HTTP call, either to a running server (`--url`) or to the embedded app
in-process, so the demo also exercises the API: a non-2xx answer that was not the point, or an
answer that contradicts the contract, stops it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import structlog
from litestar.testing import AsyncTestClient
from rich.console import Console
from rich.table import Table
from rich.text import Text

from adapters.auth import sign_token
from adapters.bootstrap import build_app, build_log, catalogue_store_for
from adapters.catalogue import SAMPLE_DIR
from adapters.catalogue.importer import import_directory
from adapters.config import Settings
from domain.identifiers import Cip13, Finess, Ins, Rpps

PARIS = ZoneInfo("Europe/Paris")
EMBEDDED_URL = "http://ordo.local"
SERVE_URL = "http://127.0.0.1:8000"  # where `ordo serve` listens by default
API_TOKEN_TTL = 3600
CURL_TOKEN_TTL = 8 * 3600
MONTH_DAYS = 30
STOCKPILING_MARGIN_DAYS = 7
PRESCRIBERS, PATIENTS, CORSICAN_PATIENTS = 5, 30, 4
Fate = Literal["untouched", "one_pharmacy", "split", "cancelled"]
FATES: tuple[Fate, ...] = ("untouched", "one_pharmacy", "split")
FATE_WEIGHTS = (15, 55, 30)

# --- the day's cast and medicines -------------------------------------------------------------


def _product(code: str, label: str) -> dict[str, str]:
    return {"system": "CIP13", "code": Cip13.from_body("3400" + code).value, "label": label}


def _pack(cip13: str, label: str) -> dict[str, str]:
    """A real pack of the public medicines database (in the sample the demo imports)."""
    return {"system": "CIP13", "code": Cip13(cip13).value, "label": label}


@dataclass(frozen=True)
class Medicine:
    """A pack as prescribed: `quantity` packs over `duration_days`, and its generic if any."""

    product: dict[str, str]
    price_cents: int
    dosage: str
    duration_days: int
    quantity: int
    generic: dict[str, str] | None = None
    narcotic: bool = False

    def packs_per_visit(self) -> int:
        """At most about one month of treatment is handed over at a time."""
        return max(1, self.quantity * MONTH_DAYS // self.duration_days)


STANDARD = (
    Medicine(
        _pack("3400935955838", "Doliprane 1000 mg, 8 comprimés"),
        107,
        "1 comprimé 3 fois par jour si douleur",
        8,
        3,
        _product("93000101", "Paracétamol Biogaran 1 g, 8 comprimés"),
    ),
    Medicine(
        _pack("3400931587538", "Clamoxyl 500 mg, 12 gélules"),
        153,
        "2 gélules matin et soir",
        6,
        2,
        _pack("3400935765680", "Amoxicilline Arrow 500 mg, 12 gélules"),
    ),
    Medicine(
        _product("93000003", "Lévothyroxine 75 µg, 30 comprimés"),
        235,
        "1 comprimé le matin à jeun",
        90,
        3,
    ),
    Medicine(
        _product("93000004", "Ibuprofène 400 mg, 30 comprimés"),
        195,
        "1 comprimé 3 fois par jour au cours des repas",
        5,
        1,
        _product("93000104", "Ibuprofène Mylan 400 mg, 30 comprimés"),
    ),
    Medicine(
        _product("93000005", "Amlodipine 5 mg, 30 gélules"),
        328,
        "1 gélule le matin",
        90,
        3,
        _product("93000105", "Amlodipine Teva 5 mg, 30 gélules"),
    ),
    Medicine(
        _product("93000006", "Atorvastatine 20 mg, 30 comprimés"),
        515,
        "1 comprimé le soir",
        90,
        3,
        _product("93000106", "Atorvastatine Zentiva 20 mg, 30 comprimés"),
    ),
    Medicine(
        _product("93000007", "Metformine 850 mg, 90 comprimés"),
        512,
        "1 comprimé 3 fois par jour au cours des repas",
        90,
        3,
        _product("93000107", "Metformine Arrow 850 mg, 90 comprimés"),
    ),
    Medicine(
        _product("93000008", "Oméprazole 20 mg, 28 gélules"),
        412,
        "1 gélule le matin",
        56,
        2,
        _product("93000108", "Oméprazole EG 20 mg, 28 gélules"),
    ),
    Medicine(
        _product("93000009", "Salbutamol 100 µg/dose, suspension pour inhalation, 200 doses"),
        366,
        "2 bouffées en cas de gêne respiratoire",
        30,
        1,
    ),
)
MORPHINE = Medicine(
    _pack("3400933323523", "Skenan LP 10 mg, 14 gélules"),
    309,
    "1 gélule matin et soir, à 12 heures d'intervalle",
    28,
    4,
    narcotic=True,
)
MACROGOL = Medicine(
    _product("93000011", "Macrogol 4000 10 g, 20 sachets"),
    425,
    "1 sachet le matin",
    28,
    2,
)
CITIES = (("75", "056"), ("13", "055"), ("69", "123"), ("33", "063"), ("59", "350"))
CORSICA = (("2A", "004"), ("2B", "033"))  # Ajaccio, Bastia
PHARMACY_NAMES = ("du Marché", "de la Gare", "Centrale", "des Halles", "du Port", "Saint-Roch")


@dataclass(frozen=True)
class Pharmacy:
    name: str
    finess: str
    pharmacists: tuple[str, ...]


@dataclass(frozen=True)
class Cast:
    prescribers: tuple[str, ...]
    patients: tuple[str, ...]
    pharmacies: tuple[Pharmacy, ...]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _distinct(draw: Callable[[], str], count: int) -> tuple[str, ...]:
    found: dict[str, None] = {}
    while len(found) < count:
        found[draw()] = None
    return tuple(found)


def _rpps(rng: random.Random) -> str:
    return Rpps.from_body("10" + _digits(rng, 8)).value


def _ins(rng: random.Random, corsican: bool) -> str:
    """A NIR: sex, year and month of birth, department and commune of birth, order number."""
    department, commune = rng.choice(CORSICA if corsican else CITIES)
    born = f"{rng.randint(1, 2)}{rng.randint(30, 99):02d}{rng.randint(1, 12):02d}"
    return Ins.from_body(born + department + commune + _digits(rng, 3)).value


def _pharmacy(rng: random.Random, index: int) -> Pharmacy:
    department = CITIES[index % len(CITIES)][0]
    return Pharmacy(
        name=f"Pharmacie {PHARMACY_NAMES[index]}",
        finess=Finess.from_body(department + "0" + _digits(rng, 5)).value,
        pharmacists=_distinct(lambda: _rpps(rng), 2),
    )


def make_cast(rng: random.Random) -> Cast:
    corsicans = _distinct(lambda: _ins(rng, corsican=True), CORSICAN_PATIENTS)
    others = _distinct(lambda: _ins(rng, corsican=False), PATIENTS - CORSICAN_PATIENTS)
    patients = list(dict.fromkeys(corsicans + others))
    rng.shuffle(patients)
    return Cast(
        prescribers=_distinct(lambda: _rpps(rng), PRESCRIBERS),
        patients=tuple(patients),
        pharmacies=tuple(_pharmacy(rng, index) for index in range(len(PHARMACY_NAMES))),
    )


# --- the day's plan: pure, drawn from the seed ------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One pharmacy visit: packs handed over per line, lines given as a generic, billed or not."""

    pharmacy: Pharmacy
    pharmacist: str
    quantities: tuple[tuple[int, int], ...]
    substituted: frozenset[int]
    billed: bool


@dataclass(frozen=True)
class Plan:
    prescriber: str
    patient: str
    kind: Literal["standard", "secure"]
    consent: bool
    days_ago: int
    medicines: tuple[Medicine, ...]
    visits: tuple[Visit, ...] = ()
    transmitted: bool = False
    cancelled: bool = False
    consent_withdrawn: bool = False
    patient_looks: bool = False
    showcase: bool = False

    def consent_now(self) -> bool:
        return self.consent and not self.consent_withdrawn


def plan_day(rng: random.Random, cast: Cast, count: int) -> list[Plan]:
    """The showcases first (narcotic, opposition with two pharmacies and a generic, a
    cancellation, a later opposition), then ordinary prescriptions."""
    showcases: list[Callable[[], Plan]] = [
        lambda: _draw(rng, cast, secure=True),
        lambda: _draw(rng, cast, fate="split", consent=False, first=STANDARD[1], showcase=True),
        lambda: replace(_draw(rng, cast, fate="cancelled"), cancelled=True),
        lambda: replace(
            _draw(rng, cast, fate="one_pharmacy", consent=True), consent_withdrawn=True
        ),
    ]
    plans = [draw() for draw in showcases[:count]]
    plans += [_draw(rng, cast) for _ in range(count - len(plans))]
    # One narcotic prescription per patient: no overlapping periods (chevauchement).
    narcotic_patients = itertools.cycle(cast.patients)
    return [
        replace(plan, patient=next(narcotic_patients)) if plan.kind == "secure" else plan
        for plan in plans
    ]


def _draw(
    rng: random.Random,
    cast: Cast,
    *,
    fate: Fate | None = None,
    secure: bool | None = None,
    consent: bool | None = None,
    first: Medicine | None = None,
    showcase: bool = False,
) -> Plan:
    secure = rng.random() < 0.1 if secure is None else secure
    medicines = _medicines(rng, secure, first)
    fate = fate or rng.choices(FATES, weights=FATE_WEIGHTS)[0]
    visits = _visits(rng, cast, medicines, fate, force_generic=showcase)
    return Plan(
        prescriber=rng.choice(cast.prescribers),
        patient=rng.choice(cast.patients),
        kind="secure" if secure else "standard",
        consent=rng.random() >= 0.2 if consent is None else consent,
        days_ago=0 if secure else rng.choice((0, 0, 0, 1, 2, 5, 12)),
        medicines=medicines,
        visits=visits,
        transmitted=bool(visits) and rng.random() < 0.2,
        patient_looks=showcase or rng.random() < 0.3,
        showcase=showcase,
    )


def _medicines(rng: random.Random, secure: bool, first: Medicine | None) -> tuple[Medicine, ...]:
    if secure:
        return (MORPHINE, MACROGOL) if rng.random() < 0.7 else (MORPHINE,)
    others = [medicine for medicine in STANDARD if medicine is not first]
    drawn = rng.sample(others, k=rng.choice((1, 1, 2, 2, 3)))
    return tuple([first, *drawn][:3] if first else drawn)


def _visits(
    rng: random.Random,
    cast: Cast,
    medicines: tuple[Medicine, ...],
    fate: Fate,
    force_generic: bool,
) -> tuple[Visit, ...]:
    if fate == "untouched":
        return ()
    here, there = rng.sample(cast.pharmacies, 2)
    parts = _split(rng, medicines) if fate in ("split", "cancelled") else None
    if parts is None:
        return (_visit(rng, here, _whole(medicines), medicines, force_generic),)
    visits: tuple[Visit, ...] = (_visit(rng, here, parts[0], medicines, force_generic),)
    if fate == "split":
        visits += (_visit(rng, there, parts[1], medicines, force_generic),)
    return visits


Quantities = dict[int, int]


def _whole(medicines: tuple[Medicine, ...]) -> Quantities:
    return {no: min(m.quantity, m.packs_per_visit()) for no, m in enumerate(medicines, 1)}


def _split(
    rng: random.Random, medicines: tuple[Medicine, ...]
) -> tuple[Quantities, Quantities] | None:
    """Part in a first pharmacy (out of stock of the rest), the rest in another; None when the
    prescription is too small to split."""
    first: Quantities = {}
    for no, medicine in enumerate(medicines, 1):
        if no == 1 or rng.random() < 0.5:
            first[no] = min(medicine.packs_per_visit(), max(1, medicine.quantity - 1))
    # The same day, the second pharmacy completes this month's packs, not next month's.
    rest = {no: _rest_of_month(m, first.get(no, 0)) for no, m in enumerate(medicines, 1)}
    rest = {no: packs for no, packs in rest.items() if packs > 0}
    return (first, rest) if rest else None


def _rest_of_month(medicine: Medicine, given: int) -> int:
    """What a second pharmacy may add the same day: the rest of this month's packs, when what
    the first gave covers at most the 7 days a renewal may be collected early."""
    covered = math.ceil(given * medicine.duration_days / medicine.quantity)
    if given and covered > STOCKPILING_MARGIN_DAYS and not medicine.narcotic:
        return 0
    return min(medicine.packs_per_visit() - given, medicine.quantity - given)


def _visit(
    rng: random.Random,
    pharmacy: Pharmacy,
    quantities: Quantities,
    medicines: tuple[Medicine, ...],
    force_generic: bool,
) -> Visit:
    generic = {
        no
        for no in quantities
        if medicines[no - 1].generic and (force_generic or rng.random() < 0.3)
    }
    return Visit(
        pharmacy=pharmacy,
        pharmacist=rng.choice(pharmacy.pharmacists),
        quantities=tuple(quantities.items()),
        substituted=frozenset(generic),
        billed=force_generic or rng.random() < 0.6,
    )


# --- talking to the API -----------------------------------------------------------------------


class DemoError(Exception):
    """The demo cannot go on: an API error, a contract violation, or a set-up problem."""


class ApiError(DemoError):
    def __init__(self, action: str, method: str, path: str, response: httpx.Response) -> None:
        problem = _problem(response)
        where = f" (field {problem['field']})" if problem.get("field") else ""
        hint = AUTH_HINT if response.status_code == 401 else ""
        super().__init__(
            f"{action}: {method} {path} answered {response.status_code} "
            f"{problem.get('code', '')}: {problem.get('detail', response.text[:300])}{where}{hint}"
        )
        self.status = response.status_code
        self.code = problem.get("code")


AUTH_HINT = (
    "\nThe demo signs HS256 tokens with ORDO_AUTH_SECRET (or ./var/auth-secret): the server "
    "must share the same secret (same ORDO_AUTH_SECRET or same ORDO_DATA_DIR)."
)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ContractError(DemoError):
    """A 2xx answer that says something the contract rules out."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise ContractError(f"unexpected answer: {what}")


class Tokens:
    """Bearer tokens for each actor of the day, signed once with the local HS256 secret."""

    def __init__(self, secret: str, ttl_seconds: int = API_TOKEN_TTL) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, ...], str] = {}

    def prescriber(self, rpps: str) -> str:
        return self._sign("prescriber", rpps=rpps)

    def pharmacist(self, pharmacy: Pharmacy, rpps: str) -> str:
        return self._sign("pharmacist", rpps=rpps, finess=pharmacy.finess)

    def patient(self, ins: str) -> str:
        return self._sign("patient", ins=ins)

    def _sign(self, role: str, **identity: str) -> str:
        key = (role, *identity.values())
        if key not in self._cache:
            # A patient's subject is not their INS: tokens end up in shells and logs.
            names = [
                hashlib.sha256(v.encode()).hexdigest()[:12] if k == "ins" else v
                for k, v in identity.items()
            ]
            subject = f"{role}:{'/'.join(names)}"
            self._cache[key] = sign_token(
                self._secret, role=role, subject=subject, ttl_seconds=self._ttl, **identity
            )
        return self._cache[key]


class Api:
    """Every call of the demo, counted per action; any non-2xx answer raises ApiError."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens) -> None:
        self.client = client
        self.tokens = tokens
        self.counts: Counter[str] = Counter()

    async def call(
        self,
        action: str,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        response = await self.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}", **(headers or {})}
        )
        if not response.is_success:
            raise ApiError(action, method, path, response)
        self.counts[action] += 1
        return response

    async def json(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.call(*args, **kwargs)).json()
        return answer

    async def refused(
        self, action: str, path: str, token: str, body: dict[str, Any], *, code: str
    ) -> dict[str, Any]:
        """A POST the rules must refuse with this problem `code`; its problem body."""
        response = await self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        problem = _problem(response)
        expect(problem.get("code") == code, f"{action} answered {response.status_code}, not {code}")
        self.counts[action] += 1
        return problem


# --- playing the day --------------------------------------------------------------------------


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


async def fill(api: Api, options: DemoOptions) -> Report:
    """Draw the day from the seed and play it, prescription after prescription."""
    rng = random.Random(options.seed)
    cast = make_cast(random.Random())
    today = datetime.now(PARIS).date()
    report = Report(cast=cast, played=[], counts=api.counts)
    for plan in plan_day(rng, cast, options.prescriptions):
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
    pharmacist = api.tokens.pharmacist(visit.pharmacy, visit.pharmacist)
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
    token = api.tokens.pharmacist(visit.pharmacy, visit.pharmacist)
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
    token = api.tokens.pharmacist(visit.pharmacy, visit.pharmacist)
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


# --- the rules of how much may be given now ----------------------------------------------------

LEVOTHYROXINE = STANDARD[2]  # 3 packs for 90 days: one a month


@dataclass(frozen=True)
class RuleShown:
    rule: str
    prescription_id: str
    outcome: str


class _Desk:
    """One pharmacy's counter for the rules' showcase: read what may be given, then give it."""

    def __init__(self, api: Api, pharmacy: Pharmacy) -> None:
        self.api = api
        self.token = api.tokens.pharmacist(pharmacy, pharmacy.pharmacists[0])

    async def allowed(self, number: str, line_no: int = 1) -> dict[str, Any]:
        url = f"/v1/prescriptions/{number}/dispensable"
        answer = await self.api.json("how much now", "GET", url, self.token)
        line: dict[str, Any] = answer["lines"][line_no - 1]
        return line

    async def give(self, number: str, packs: int) -> dict[str, Any]:
        body = {"lines": [{"line_no": 1, "quantity": packs}]}
        url = f"/v1/prescriptions/{number}/dispensations"
        return await self.api.json("dispense (rules)", "POST", url, self.token, body)


async def show_rules(api: Api, cast: Cast, today: date) -> list[RuleShown]:
    """Each rule of contract v1.1 at a counter, checked against what `dispensable` says."""
    desk, other_desk = _Desk(api, cast.pharmacies[0]), _Desk(api, cast.pharmacies[1])
    fresh = random.Random()
    patient, late_patient, chronic_patient = (_ins(fresh, corsican=False) for _ in range(3))
    shown = [await _fractions(api, desk, cast, patient, today)]
    shown.append(await _overlap(api, other_desk, cast, patient, today))
    shown.append(await _late_narcotic(api, desk, cast, late_patient, today))
    renewal, number = await _renewal(api, desk, cast, chronic_patient, today)
    shown += [renewal, await _withdrawal(api, desk, number)]
    return shown


async def _prescribe(
    api: Api, cast: Cast, patient: str, medicine: Medicine, issued_on: date, **extra: Any
) -> str:
    body = {
        "patient": {"ins": patient},
        "issued_on": issued_on.isoformat(),
        "kind": "secure" if medicine.narcotic else "standard",
        "execution_view_consent": True,
        "lines": [
            {
                "product": medicine.product,
                "quantity": medicine.quantity,
                "dosage": medicine.dosage,
                "duration_days": medicine.duration_days,
                "narcotic": medicine.narcotic,
                **extra,
            }
        ],
    }
    token = api.tokens.prescriber(cast.prescribers[0])
    issued = await api.json("issue prescription", "POST", "/v1/prescriptions", token, body)
    number: str = issued["prescription_id"]
    return number


async def _fractions(api: Api, desk: _Desk, cast: Cast, patient: str, today: date) -> RuleShown:
    number = await _prescribe(api, cast, patient, MORPHINE, today, fraction_days=7)
    now = await desk.allowed(number)
    expect(now["max_quantity"] == 1, f"a 7-day fraction of morphine is 1 pack, not {now}")
    await desk.give(number, 1)
    then = await desk.allowed(number)
    expected = today + timedelta(days=6)
    expect(then["next_on"] == expected.isoformat(), f"next fraction on {then}, not {expected}")
    outcome = f"28 days in fractions of 7: 1 pack now, the next fraction from {then['next_on']}"
    return RuleShown("narcotic in fractions", number, outcome)


async def _overlap(api: Api, desk: _Desk, cast: Cast, patient: str, today: date) -> RuleShown:
    number = await _prescribe(api, cast, patient, MORPHINE, today)
    url = f"/v1/prescriptions/{number}/dispensations"
    body = {"lines": [{"line_no": 1, "quantity": 1}]}
    await api.refused("refused as the rules say", url, desk.token, body, code="narcotic_overlap")
    outcome = "a second morphine prescription, another pharmacy: 409 narcotic_overlap"
    return RuleShown("no overlap between narcotic prescriptions", number, outcome)


async def _late_narcotic(api: Api, desk: _Desk, cast: Cast, patient: str, today: date) -> RuleShown:
    number = await _prescribe(api, cast, patient, MORPHINE, today - timedelta(days=10))
    now = await desk.allowed(number)
    # 4 packs for 28 days (7 days a pack), presented on day 10: 18 days left, 2 whole packs.
    expect(now["max_quantity"] == 2, f"18 days left of 28 is 2 packs, not {now}")
    await desk.give(number, 2)
    outcome = "presented 10 days late: 2 packs of 4, the 18 days left of 28"
    return RuleShown("narcotic presented late (3-day rule)", number, outcome)


async def _renewal(
    api: Api, desk: _Desk, cast: Cast, patient: str, today: date
) -> tuple[RuleShown, str]:
    number = await _prescribe(api, cast, patient, LEVOTHYROXINE, today)
    now = await desk.allowed(number)
    expect(now["max_quantity"] == 1, f"one month of 3 packs for 90 days is 1 pack, not {now}")
    await desk.give(number, 1)
    then = await desk.allowed(number)
    expected = today + timedelta(days=23)  # covered 30 days, collected up to 7 days early
    expect(then["next_on"] == expected.isoformat(), f"next month on {then}, not {expected}")
    outcome = f"3 packs for 90 days: 1 now, the next from {then['next_on']}"
    return RuleShown("renewal month by month", number, outcome), number


async def _withdrawal(api: Api, desk: _Desk, number: str) -> RuleShown:
    path = f"/v1/prescriptions/{number}"
    seen = await api.json("read as pharmacist", "GET", path, desk.token)
    dispensation_id = seen["dispensations"][0]["dispensation_id"]
    url = f"{path}/dispensations/{dispensation_id}/withdrawal"
    body = {"reason": "Saisie sur la mauvaise ordonnance"}
    after = await api.json("withdraw", "POST", url, desk.token, body)
    expect(after["lines"][0]["remaining"] == 3, "a withdrawn dispensing still counts")
    expect(after["dispensations"][0]["withdrawn"] is True, "the dispensing is not withdrawn")
    outcome = "the month's pack withdrawn as recorded in error: 3 packs left again"
    return RuleShown("withdrawal of a dispensing recorded in error", number, outcome)


# --- running it -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOptions:
    url: str | None = None
    prescriptions: int = 40
    seed: int = 1


def run(options: DemoOptions, settings: Settings) -> Report:
    """Play the day against `options.url`, or against the embedded app on `settings`' store."""
    if not settings.auth_secret:
        raise DemoError("the demo signs HS256 tokens: set ORDO_AUTH_SECRET")
    tokens = Tokens(settings.auth_secret)
    return asyncio.run(_run(options, settings, tokens))


async def _run(options: DemoOptions, settings: Settings, tokens: Tokens) -> Report:
    catalogue = await ensure_catalogue(settings)
    async with _client(options.url, settings) as client:
        api = Api(client, tokens)
        await _catalogue_in_use(api, catalogue)
        report = await fill(api, options)
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


SAMPLE_DATE = date(2022, 6, 2)  # the official files the shipped sample was cut from
SKENAN = "3400933323523"


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
    token = api.tokens.patient("184127645108946")
    deadline = asyncio.get_running_loop().time() + patience
    while asyncio.get_running_loop().time() < deadline:
        response = await api.client.get(
            f"/v1/products/{SKENAN}", headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code == 200:
            return
        await asyncio.sleep(0.25)
    logging.getLogger("ordo.demo").warning("the server does not use the catalogue: %s", catalogue)


@asynccontextmanager
async def _client(url: str | None, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call otherwise
    if url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client
        return
    log = build_log(settings)
    try:
        app = build_app(settings, log)
        # The summary is the output: keep the server's warnings and errors, not one line per call.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        async with AsyncTestClient(
            app=app, base_url=EMBEDDED_URL, raise_server_exceptions=False
        ) as client:
            yield client
    finally:
        log.close()


def main(options: DemoOptions, console: Console | None = None) -> int:
    """`ordo demo`: 0 when the whole day was played, 1 when the API refused or contradicted it."""
    console = console or Console()
    settings = Settings.from_env()
    try:
        report = run(options, settings)
    except DemoError as error:
        _fail(f"{error}")
        return 1
    except httpx.TransportError as error:
        _fail(f"cannot reach {options.url}: {error or type(error).__name__}")
        return 1
    assert settings.auth_secret is not None  # run() checked it
    print_summary(
        console, report, options.url or SERVE_URL, Tokens(settings.auth_secret, CURL_TOKEN_TTL)
    )
    return 0


def _fail(message: str) -> None:
    Console(stderr=True).print(Text.assemble(("ordo demo: ", "bold red"), message))


# --- the summary ------------------------------------------------------------------------------

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
    table = Table(title="ordo demo: API calls", title_justify="left")
    table.add_column("action")
    table.add_column("request (under /v1/prescriptions)", style="dim")
    table.add_column("calls", justify="right")
    for action, request in ACTIONS:
        table.add_row(action, request, str(counts[action]))
    table.add_section()
    table.add_row("total", "", str(counts.total()), style="bold")
    return table


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
            tokens.pharmacist(pharmacy, pharmacy.pharmacists[0]),
        ),
        (_prescriber_caption(plan), tokens.prescriber(plan.prescriber)),
        ("as the patient: everything, with the dispensations", tokens.patient(plan.patient)),
    ]
    console.print(f"\nTry it (tokens valid {CURL_TOKEN_TTL // 3600} h; `ordo serve` first):")
    for caption, token in examples:
        console.print(f"# {caption}", style="dim", markup=False, highlight=False)
        line = f"curl -s -H 'Authorization: Bearer {token}' {url}"
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _prescriber_caption(plan: Plan) -> str:
    if plan.consent_now():
        return "as the prescriber: the patient agreed, the dispensations are shown"
    return "as the prescriber: the patient opposed, the dispensations are masked"
