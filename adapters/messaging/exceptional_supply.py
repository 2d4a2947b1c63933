"""The prescriber told of an exceptional supply (CSP L5125-23-1: "sous réserve d'informer le
médecin prescripteur"; R5123-2-1: as soon as possible, by secure messaging).

The e-mail is recorded in the `DispensationRecorded` of the supply (the log is the outbox), to the
prescriber's MSSanté address in the directory, as the MTE-PH notice is
(`adapters.messaging.non_substitution`).
"""

from __future__ import annotations

from domain.conversation import message_id_header, remaining_lines
from domain.events import DispensationRecorded, Mail
from domain.prescription import Prescription
from domain.views import display_number


def exceptional_supply_notice(
    state: Prescription, recorded: DispensationRecorded, address: str, postmaster: str
) -> Mail:
    """The e-mail telling the prescriber which packs an exceptional supply gave."""
    number = display_number(state.prescription_id)
    local = f"exceptional-supply.{recorded.prescription_id}.{recorded.version}"
    listed = "\n".join(
        f"- ligne {line.line_no} : {line.product.label}, {line.quantity} boîte(s)"
        for line in recorded.lines
    )
    return Mail(
        message_id=message_id_header(local, postmaster.rpartition("@")[2]),
        kind="exceptional_supply_notice",
        sender=postmaster,
        recipient=address,
        subject=f"Dispensation supplémentaire exceptionnelle : ordonnance {number}",
        body=(
            f"Le pharmacien (RPPS {recorded.pharmacist_rpps}) de la pharmacie FINESS "
            f"{recorded.finess} a délivré le {recorded.dispensed_at:%d/%m/%Y}, l'ordonnance "
            "étant expirée, de quoi poursuivre le traitement chronique pour un mois au plus "
            "(dispensation supplémentaire exceptionnelle, article L. 5125-23-1 du code de la "
            "santé publique) :\n"
            f"{listed}\n"
            "Une nouvelle ordonnance est nécessaire pour la suite du traitement."
        ),
        prescription_id=recorded.prescription_id,
        remaining=remaining_lines(state),
    )
