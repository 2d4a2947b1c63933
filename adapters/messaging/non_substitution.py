"""The prescriber told of the pharmacist's "non substituable (MTE-PH)" (arrêté of 30 January
2020: the pharmacist who keeps a narrow-therapeutic-margin medicine informs the prescriber), and
of an exceptional supply (`adapters.messaging.exceptional_supply`).

The e-mail is recorded in the `DispensationRecorded` that carries the mention (the log is the
outbox), to the prescriber's MSSanté address in the directory (`rpps,address` rows); a
prescriber the directory does not list gets no e-mail, and that is logged.
"""

from __future__ import annotations

import msgspec
import structlog

from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.exceptional_supply import exceptional_supply_notice
from domain.conversation import message_id_header, remaining_lines
from domain.events import DispensationRecorded, DispensedLine, Mail
from domain.prescription import Prescription
from domain.views import display_number

log = structlog.get_logger("ordo.messaging")


class PrescriberNotices:
    """Adds to a dispensing the e-mails it owes the prescriber."""

    def __init__(self, directory: MssanteDirectory, postmaster: str) -> None:
        self.directory = directory
        self.postmaster = postmaster

    def told(self, state: Prescription, recorded: DispensationRecorded) -> DispensationRecorded:
        """`recorded` with the notices to the prescriber, when it has an MSSanté address: of
        MTE-PH when a line carries the mention, of an exceptional supply when it is one."""
        kept = tuple(line for line in recorded.lines if line.non_substitution == "MTE-PH")
        supplied = recorded.procedure == "exceptional_supply"
        if not kept and not supplied:
            return recorded
        address = self.directory.prescriber_mailbox(state.prescriber_rpps)
        if address is None:
            log.info(
                "prescriber not told of MTE-PH or an exceptional supply: no MSSanté address "
                "in the directory",
                rpps=state.prescriber_rpps,
                prescription_id=recorded.prescription_id,
            )
            return recorded
        mails = [self._notice(state, recorded, kept, address)] if kept else []
        if supplied:
            mails.append(exceptional_supply_notice(state, recorded, address, self.postmaster))
        return msgspec.structs.replace(recorded, mails=tuple(mails))

    def _notice(
        self,
        state: Prescription,
        recorded: DispensationRecorded,
        kept: tuple[DispensedLine, ...],
        address: str,
    ) -> Mail:
        number = display_number(state.prescription_id)
        local = f"non-substitution.{recorded.prescription_id}.{recorded.version}"
        listed = "\n".join(
            f"- ligne {line.line_no} : {line.product.label}, {line.quantity} boîte(s)"
            for line in kept
        )
        return Mail(
            message_id=message_id_header(local, self.postmaster.rpartition("@")[2]),
            kind="non_substitution_notice",
            sender=self.postmaster,
            recipient=address,
            subject=f"Non substituable (MTE-PH) : ordonnance {number}",
            body=(
                f"Le pharmacien (RPPS {recorded.pharmacist_rpps}) de la pharmacie FINESS "
                f"{recorded.finess} a délivré le {recorded.dispensed_at:%d/%m/%Y} le médicament "
                "prescrit sans le substituer, avec la mention « non substituable (MTE-PH) » "
                "(médicament à marge thérapeutique étroite, arrêté du 30 janvier 2020) :\n"
                f"{listed}"
            ),
            prescription_id=recorded.prescription_id,
            remaining=remaining_lines(state),
        )
