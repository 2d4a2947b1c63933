"""Request bodies of the v1 contract, and their translation into domain commands.

msgspec rejects malformed JSON, wrong types and unknown fields (400). What it cannot know, a
check key or a line that does not exist, is checked when the command is built or decided
(422), and the error names the field either way.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from adapters.http.call import Call
from domain.decisions.billing import Bill
from domain.decisions.corrections import RecordAdaptation, Withdraw
from domain.decisions.dispensing import Dispense, DispenseLine
from domain.decisions.issuing import IssuePrescription, RequestedLine
from domain.errors import invalid
from domain.events import (
    BilledLine,
    NonSubstitutable,
    PharmacistNonSubstitution,
    Procedure,
    Product,
)
from domain.identifiers import Finess, Ins, InvalidIdentifier, Rpps

ShortText = Annotated[str, msgspec.Meta(max_length=500)]
LongText = Annotated[str, msgspec.Meta(max_length=2000)]
IdentifierT = TypeVar("IdentifierT", Ins, Rpps, Finess)


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class PatientBody(Body, frozen=True, kw_only=True):
    ins: str


class PrescriptionLineBody(Body, frozen=True, kw_only=True):
    product: Product
    quantity: int
    dosage: ShortText
    duration_days: int
    narcotic: Annotated[
        bool | None,
        msgspec.Meta(
            description="A narcotic (stupéfiant): secure prescription, 28 days at most. Unset: "
            "the medicines catalogue says for the packs it knows, else false"
        ),
    ] = None
    assimilated: Annotated[
        bool | None,
        msgspec.Meta(
            description="Tramadol, codeine, dihydrocodeine: secure, 84 days at most. Unset: "
            "the medicines catalogue says for the packs it knows, else false"
        ),
    ] = None
    fraction_days: Annotated[
        int | None,
        msgspec.Meta(
            description="Narcotic lines, and lines of a product the catalogue dispenses in "
            "fractions: each dispensing covers at most this many days; "
            "1 <= fraction_days < duration_days (else 422). Unset: the catalogue's fractioning "
            "of the pack, if any"
        ),
    ] = None
    overlap_allowed: Annotated[
        bool,
        msgspec.Meta(
            description="Narcotic lines, and lines of a product whose conditions forbid "
            "overlap (chevauchement interdit): the prescriber's express mention that this line "
            "may overlap another prescription of the patient (a narcotic's, or one of the same "
            "substance)"
        ),
    ] = False
    non_substitutable: Annotated[
        NonSubstitutable | None,
        msgspec.Meta(
            description='The prescriber\'s "non substituable" mention and its reason: MTE '
            "(a product of a narrow-therapeutic-margin substance of the list), EFG (a patient "
            "under 6 on issued_on, by the INS), CIF (a contra-indicated excipient); another "
            "reason for this line: 422 non_substitution_reason_invalid. No other medicine is "
            "then dispensed on the line (422 substitution_excluded)"
        ),
    ] = None
    designated_finess: Annotated[
        str | None,
        msgspec.Meta(
            description="The pharmacy named on the prescription (CSS L162-4-2), a FINESS (else "
            "422): any other pharmacy's dispensing of the line gets 409 designated_pharmacy_only"
        ),
    ] = None


class IssueBody(Body, frozen=True, kw_only=True):
    patient: PatientBody
    issued_on: date | None = None
    kind: Literal["standard", "secure"] = "standard"
    execution_view_consent: bool
    lines: Annotated[list[PrescriptionLineBody], msgspec.Meta(max_length=200)]

    def command(self, prescriber: Rpps, today: date) -> IssuePrescription:
        return IssuePrescription(
            prescriber=prescriber,
            patient=parse_identifier(Ins, self.patient.ins, "patient.ins"),
            issued_on=self.issued_on or today,
            kind=self.kind,
            execution_view_consent=self.execution_view_consent,
            lines=tuple(
                RequestedLine(
                    product=line.product,
                    quantity=line.quantity,
                    dosage=line.dosage,
                    duration_days=line.duration_days,
                    narcotic=line.narcotic,
                    assimilated=line.assimilated,
                    fraction_days=line.fraction_days,
                    overlap_allowed=line.overlap_allowed,
                    non_substitutable=line.non_substitutable,
                    designated_finess=_designated(line, index),
                )
                for index, line in enumerate(self.lines)
            ),
        )


def _designated(line: PrescriptionLineBody, index: int) -> Finess | None:
    if line.designated_finess is None:
        return None
    return parse_identifier(Finess, line.designated_finess, f"lines[{index}].designated_finess")


class DispenseLineBody(Body, frozen=True, kw_only=True):
    line_no: int
    quantity: int
    product: Product | None = None
    generic_refused: Annotated[
        bool,
        msgspec.Meta(
            description="The patient refused the generic offered on a substitutable line: the "
            "prescribed medicine is given (else 422)"
        ),
    ] = False
    non_substitution: Annotated[
        PharmacistNonSubstitution | None,
        msgspec.Meta(
            description="MTE-PH: the pharmacist's own exclusion of the generic, for a product "
            "of a narrow-therapeutic-margin substance on a substitutable line (else 422 "
            "non_substitution_reason_invalid); the prescriber is told by MSSanté"
        ),
    ] = None
    lot: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=64,
                description="The lot handed over; required for a biosimilar given for the "
                "prescribed biological (422 lot_required)",
            ),
        ]
        | None
    ) = None

    def command(self) -> DispenseLine:
        """The line as the decision reads it; a mention not given stays unset (see
        `DispenseLine`)."""
        return DispenseLine(
            line_no=self.line_no,
            quantity=self.quantity,
            product=self.product,
            generic_refused=self.generic_refused or msgspec.UNSET,
            non_substitution=self.non_substitution or msgspec.UNSET,
            lot=msgspec.UNSET if self.lot is None else self.lot,
        )


class DispenseBody(Body, frozen=True, kw_only=True):
    lines: Annotated[list[DispenseLineBody], msgspec.Meta(max_length=200)]
    dispensed_at: Annotated[
        datetime | None,
        msgspec.Meta(
            description="When the packs were handed over (RFC 3339 with offset), at most "
            "5 minutes ahead of the server's clock and 72 hours behind it; default: now"
        ),
    ] = None
    procedure: Annotated[
        Procedure | None,
        msgspec.Meta(
            description="The pharmacist's own procedure, beyond what the prescription gives: "
            "exceptional_supply continues a chronic treatment (at least 3 months prescribed, no "
            "narcotic, assimilated or restricted line) on an expired prescription, one month "
            "at a time, 3 months in all, the first within a month of expiry, and the "
            "prescriber is told; contraceptive_extension gives an oral contraceptive once all "
            "of it was given, on a prescription under a year old, 3 months at once, 6 in all. "
            "Else 409 exceptional_supply_not_allowed"
        ),
    ] = None

    def command(self, pharmacy: Finess, pharmacist: Rpps) -> Dispense:
        return Dispense(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            lines=tuple(line.command() for line in self.lines),
            dispensed_at=self.dispensed_at,
            procedure=msgspec.UNSET if self.procedure is None else self.procedure,
        )


class WithdrawalBody(Body, frozen=True, kw_only=True):
    """Withdraw a dispensing of the caller's pharmacy, within 7 days of `dispensed_at` and
    before billing (409 withdrawal_window_closed, already_billed)."""

    reason: Annotated[str, msgspec.Meta(max_length=500, description="Why; not blank (422)")]

    def command(self, pharmacy: Finess, pharmacist: Rpps, dispensation_id: str) -> Withdraw:
        return Withdraw(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            dispensation_id=dispensation_id,
            reason=self.reason,
        )


class AdaptationBody(Body, frozen=True, kw_only=True):
    """An adaptation agreed with the prescriber; 409 prescription_cancelled on a cancelled one."""

    line_no: int
    description: Annotated[str, msgspec.Meta(max_length=2000, description="Not blank (422)")]
    prescriber_rpps: Annotated[str, msgspec.Meta(description="The agreeing prescriber's RPPS")]
    agreed_on: Annotated[
        date,
        msgspec.Meta(description="Between the prescription's issued_on and today (else 422)"),
    ]
    dispensation_id: (
        Annotated[
            str, msgspec.Meta(max_length=64, description="The dispensing it was made at, if any")
        ]
        | None
    ) = None

    def command(self, pharmacy: Finess, pharmacist: Rpps) -> RecordAdaptation:
        return RecordAdaptation(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            line_no=self.line_no,
            description=self.description,
            agreed_by=parse_identifier(Rpps, self.prescriber_rpps, "prescriber_rpps"),
            agreed_on=self.agreed_on,
            dispensation_id=self.dispensation_id,
        )


class BillLineBody(Body, frozen=True, kw_only=True):
    line_no: int
    quantity: Annotated[
        int,
        msgspec.Meta(description="1 to 999, at most what the dispensation gave of the line (422)"),
    ]
    amount_cents: Annotated[
        int, msgspec.Meta(description="0 to 10,000,000 cents per line (else 422)")
    ]


class BillBody(Body, frozen=True, kw_only=True):
    invoice_number: Annotated[str, msgspec.Meta(max_length=64)]
    lines: Annotated[list[BillLineBody], msgspec.Meta(max_length=200)]

    def command(self, pharmacy: Finess, pharmacist: Rpps, dispensation_id: str) -> Bill:
        return Bill(
            pharmacy=pharmacy,
            pharmacist=pharmacist,
            dispensation_id=dispensation_id,
            invoice_number=self.invoice_number,
            lines=tuple(
                BilledLine(
                    line_no=line.line_no, quantity=line.quantity, amount_cents=line.amount_cents
                )
                for line in self.lines
            ),
        )


class CancelBody(Body, frozen=True, kw_only=True):
    reason: ShortText


class ConsentBody(Body, frozen=True, kw_only=True):
    consent: bool


class TransmissionBody(Body, frozen=True, kw_only=True):
    finess: str
    message: LongText = ""


def parse_identifier(kind: type[IdentifierT], text: str, field: str) -> IdentifierT:
    try:
        return kind.parse(text)
    except InvalidIdentifier as error:
        raise invalid(str(error), field) from error


BodyT = TypeVar("BodyT", bound=Body)
MSGSPEC_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
WHOLE_FLOAT_REFUSED = re.compile(r"^Expected `int[^`]*`, got `float`")
UNKNOWN_FIELD = re.compile(r"unknown field `(?P<name>[^`]+)`")


class BadBody(Exception):  # noqa: N818 - reads as the HTTP answer it becomes
    """A body that is not JSON of the expected shape (400), with the field it is about."""

    def __init__(self, detail: str, field: str | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


def decode_strictly(raw: bytes, kind: type[BodyT]) -> BodyT:
    """msgspec in strict mode: "3" is not a number and "true" is not a boolean (contract: 400).

    A whole number written `3.0` is the integer 3 for JSON Schema, so for the OpenAPI document
    too: taken as such (only after the strict decoding refused it, so at no cost otherwise).
    """
    try:
        return msgspec.json.decode(raw, type=kind, strict=True)
    except msgspec.ValidationError as error:
        if WHOLE_FLOAT_REFUSED.search(str(error)):
            return _with_whole_numbers(raw, kind)
        raise BadBody(*_located(str(error))) from None
    except msgspec.DecodeError as error:
        raise BadBody(f"the body is not valid JSON: {error}", None) from None
    except RecursionError:  # deeper than the decoder follows: still the client's mistake
        raise BadBody("the body is not valid JSON: nested too deeply", None) from None
    except UnicodeDecodeError as error:
        raise BadBody(f"the body is not valid UTF-8: {error.reason}", None) from None


def _with_whole_numbers(raw: bytes, kind: type[BodyT]) -> BodyT:
    try:
        return msgspec.convert(_whole_numbers(msgspec.json.decode(raw)), type=kind, strict=True)
    except msgspec.ValidationError as error:
        raise BadBody(*_located(str(error))) from None


def _whole_numbers(value: Any) -> Any:
    """`value` with every float that is a whole number as an int (3.0 -> 3; 3.5 stays)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    return value


def _located(message: str) -> tuple[str, str | None]:
    where = MSGSPEC_PATH.search(message)
    path = where.group("path") if where else None
    unknown = UNKNOWN_FIELD.search(message)
    if unknown:
        path = f"{path}.{unknown.group('name')}" if path else unknown.group("name")
    return MSGSPEC_PATH.sub("", message), path or None


def strict_body(kind: type[BodyT]) -> Provide:
    """A dependency giving the handler its body decoded strictly.

    Litestar converts bodies leniently; its `data` parameter stays here only so that the
    OpenAPI document describes the request body.
    """

    # `call` only so that this resolves after the call, never beside it (see `Call`).
    async def provide_body(
        request: Request[Any, Any, Any], data: Any, call: NamedDependency[Call]
    ) -> Any:
        return decode_strictly(await request.body(), kind)

    body: Any = JSONBody[kind]  # type: ignore[valid-type,misc]
    provide_body.__annotations__ = {
        "request": Request,
        "data": body,
        "call": NamedDependency[Call],
        "return": kind,
    }
    return Provide(provide_body)
