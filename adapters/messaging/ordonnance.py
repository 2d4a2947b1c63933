"""The ordonnance sent through MSSanté: the e-mails that carry it as a PDF, to the patient's
Mon espace santé mailbox or to a pharmacy's BAL ORG.

The events record the e-mails (the log is the outbox); the PDF itself is drawn by the mailer
at delivery time from the reference kept in the `Attachment` (`RENDERERS` in
`adapters.mailer.compose`, `ordonnance_renderers` below), never in the request path and never
copied into the log. Each recipient gets its own copy: the patient's is whole, the pharmacy's
is what a pharmacist of that pharmacy reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from adapters.document.pdf import render
from adapters.librarylog import LibraryLog
from domain.actors import Actor
from domain.catalogue import PackLookup, sized
from domain.conversation import message_id_header, patient_address, remaining_lines
from domain.events import Attachment, Mail
from domain.prescription import Prescription, fold
from domain.views import display_number, qr_payload, view_of

PATIENT_COPY = "ordonnance_pdf"  # ref: the prescription number
PHARMACY_COPY = "ordonnance_pdf_pharmacy"  # ref: "<prescription number>/<FINESS>"


def ordonnance_pdf(prescription_id: str, finess: str | None = None) -> Attachment:
    """The PDF attached (not inline): the patient's copy, or the copy of pharmacy `finess`."""
    number = display_number(prescription_id)
    return Attachment(
        kind=PATIENT_COPY if finess is None else PHARMACY_COPY,
        ref=prescription_id if finess is None else f"{prescription_id}/{finess}",
        filename=f"ordonnance-{number}.pdf",
        content_type="application/pdf",
    )


def to_patient(state: Prescription, version: int, message: str, postmaster: str) -> Mail:
    """The ordonnance to `<INS matricule>@patient.mssante.fr`. Its Message-ID names the
    prescription and the event's version: the same on every delivery attempt, unique per
    sending."""
    number = display_number(state.prescription_id)
    return Mail(
        message_id=_message_id(state, version, "patient", postmaster),
        kind="ordonnance",
        sender=postmaster,
        recipient=patient_address(state.patient_ins),
        subject=f"Votre ordonnance n° {number}",
        body=_body(
            message,
            "Votre médecin vous adresse votre ordonnance numérique, jointe à ce message "
            "(PDF). Présentez-la en pharmacie, imprimée ou sur votre téléphone : le pharmacien "
            "lit son QR code.",
        ),
        prescription_id=state.prescription_id,
        remaining=remaining_lines(state),
        attachments=(ordonnance_pdf(state.prescription_id),),
    )


def to_pharmacy(  # noqa: PLR0917 - the prescription, which sending, what, to whom, from whom
    state: Prescription, version: int, message: str, finess: str, bal_org: str, postmaster: str
) -> Mail:
    """The ordonnance to the pharmacy's BAL ORG, sent by the prescriber who wrote it."""
    number = display_number(state.prescription_id)
    return Mail(
        message_id=_message_id(state, version, "pharmacy", postmaster),
        kind="ordonnance",
        sender=postmaster,
        recipient=bal_org,
        subject=f"Ordonnance n° {number} transmise par le prescripteur",
        body=_body(
            message,
            f"Le prescripteur (RPPS {state.prescriber_rpps}) vous transmet cette ordonnance, "
            "jointe à ce message (PDF) ; elle est aussi dans la liste des ordonnances qui vous "
            "sont transmises.",
        ),
        prescription_id=state.prescription_id,
        remaining=remaining_lines(state),
        attachments=(ordonnance_pdf(state.prescription_id, finess),),
    )


def _message_id(state: Prescription, version: int, to: str, postmaster: str) -> str:
    local = f"ordonnance.{state.prescription_id}.{version}.{to}"
    return message_id_header(local, postmaster.rpartition("@")[2])


def _body(message: str, notice: str) -> str:
    """The prescriber's own words first, when there are some, then what is attached."""
    return f"{message.strip()}\n\n{notice}" if message.strip() else notice


# --- rendered at delivery (the mailer) --------------------------------------------------------


Renderer = Callable[[str], bytes]


def ordonnance_renderers(
    log: LibraryLog,
    today: Callable[[], date],
    catalogue: Callable[[], PackLookup | None] = lambda: None,
) -> dict[str, Renderer]:
    """The PDF renderers the mailer registers, reading the prescription from its own log (they
    run in the mailer's worker threads, where the log's synchronous reads belong), with the
    units of its packs as the catalogue in force states them (what is left, as the read says)."""

    def prescription(prescription_id: str) -> Prescription:
        state = fold(log.events_of(prescription_id))
        if state is None:  # an event named it: the log cannot have lost it
            msg = f"no prescription {prescription_id} in the log"
            raise LookupError(msg)
        return sized(state, catalogue())

    def patient_copy(ref: str) -> bytes:
        state = prescription(ref)
        patient = Actor(role="patient", subject="ordo-mailer", ins=state.patient_ins)
        return render(view_of(state, patient, today()), qr_payload(state.prescription_id))

    def pharmacy_copy(ref: str) -> bytes:
        prescription_id, _, finess = ref.partition("/")
        state = prescription(prescription_id)
        pharmacist = Actor(role="pharmacist", subject="ordo-mailer", finess=finess)
        return render(view_of(state, pharmacist, today()), qr_payload(state.prescription_id))

    return {PATIENT_COPY: patient_copy, PHARMACY_COPY: pharmacy_copy}
