"""`POST /v1/prescriptions/{id}/send-to-patient`: the ordonnance to the patient's Mon espace
santé mailbox (contract.md "The ordonnance as a document, sent through MSSanté")."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from adapters.http.call import Call
from adapters.http.problems import Problem
from adapters.http.routes import IdempotencyKey
from adapters.http.schemas import Body, LongText, strict_body
from domain.views import display_number


class SendToPatientBody(Body, frozen=True, kw_only=True):
    message: LongText = ""


class SentToPatientView(msgspec.Struct, frozen=True, kw_only=True):
    """The sending as recorded: the mailer delivers the e-mail (the PDF attached) from the log."""

    prescription_id: str
    message: str
    sent_at: datetime


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type="application/problem+json")


class SendingController(Controller):
    path = "/v1/prescriptions"
    tags = ["prescriptions"]  # noqa: RUF012

    @post(
        "/{prescription_id:str}/send-to-patient",
        status_code=202,
        summary="Send the ordonnance to the patient's Mon espace santé mailbox (MSSanté)",
        description="The prescriber who wrote it, for a patient who wants no paper: an e-mail "
        "to `<INS matricule>@patient.mssante.fr` with the ordonnance as a PDF attached (the "
        "patient's copy), delivered by the mailer through the same outbox as the "
        "conversations. 202: recorded, to be delivered. The history shows the sending.",
        dependencies={"payload": strict_body(SendToPatientBody)},
        responses={
            403: _problem("`forbidden`: only a prescriber sends an ordonnance to its patient"),
            404: _problem("`not_found`: unknown, or written by another prescriber"),
            409: _problem("`prescription_cancelled`: a cancelled prescription is not sent"),
        },
    )
    async def send_to_patient(
        self,
        prescription_id: FromPath[str],
        payload: NamedDependency[SendToPatientBody],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> SentToPatientView:
        actor, conversations = call.actor, call.conversations
        state = await conversations.send_to_patient(
            actor, prescription_id, payload.message, idempotency_key
        )
        sent = state.sent_to_patient[-1]
        return SentToPatientView(
            prescription_id=display_number(state.prescription_id),
            message=sent.message,
            sent_at=sent.sent_at,
        )
