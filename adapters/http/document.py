"""`GET /v1/prescriptions/{id}/document.pdf`: the ordonnance as it is printed (contract.md
"The ordonnance as a document")."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from adapters.document.ordonnance import document_for
from adapters.http.call import Call
from adapters.http.dependencies import today_of
from adapters.http.problems import Problem

# The day as the JSON reads count it (a pharmacy's own calendar), so both copies agree.

PDF = "application/pdf"


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, description=description, media_type="application/problem+json")


class DocumentController(Controller):
    path = "/v1/prescriptions"
    tags = ["prescriptions"]  # noqa: RUF012

    @get(
        "/{prescription_id:str}/document.pdf",
        media_type=PDF,
        summary="The ordonnance as a PDF (A4, fonts embedded, text extractable)",
        description="The prescriber who wrote it, the patient, any pharmacist. The QR code holds "
        "`qr_payload`, the number is printed under it; the patient's OUI/NON on the "
        "prescriber's access to execution data and the fixed text on the electronic "
        "transmission to the Assurance Maladie are on every page. A `secure` prescription "
        "writes quantities, dosages' numbers and durations in words too. The prescriber's "
        "copy under the patient's opposition shows no execution data.",
        responses={
            403: _problem("`forbidden`: the insurer has no copy"),
            404: _problem("`not_found`: unknown, or not the caller's prescription"),
        },
    )
    async def document(
        self,
        prescription_id: FromPath[str],
        call: NamedDependency[Call],
    ) -> Response[bytes]:
        actor, service = call.actor, call.service
        document = await document_for(service, actor, prescription_id, today_of(service, actor))
        return Response(
            document.pdf,
            media_type=PDF,
            headers={"Content-Disposition": f'inline; filename="{document.filename}"'},
        )
