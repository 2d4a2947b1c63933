"""The prescriber told through the outbox (`adapters.messaging.non_substitution`): given a
dispensing, when its notices are added, then the e-mails recorded in its event, to the
prescriber's address in the MSSanté directory: an exceptional supply's (CSP L5125-23-1), an
MTE-PH's, both, or none."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.non_substitution import PrescriberNotices
from domain.events import DispensationRecorded, Procedure
from domain.prescription import Prescription, evolve
from tests.domain.builders import PRESCRIBER, dispensed, given, issued

POSTMASTER = "ordo@ordo.mssante.fr"
ADDRESS = "dr.martin@medecin.mssante.fr"


@pytest.fixture
def notices(tmp_path: Path) -> PrescriberNotices:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"rpps,address\n{PRESCRIBER.value},{ADDRESS}\n")
    return PrescriberNotices(MssanteDirectory(directory), POSTMASTER)


def recorded_under(procedure: Procedure | None, *, mte_ph: bool = False) -> DispensationRecorded:
    event = dispensed(2, (1, 1))
    line = msgspec.structs.replace(event.lines[0], non_substitution="MTE-PH" if mte_ph else None)
    return msgspec.structs.replace(event, lines=(line,), procedure=procedure)


def told(notices: PrescriberNotices, recorded: DispensationRecorded) -> DispensationRecorded:
    state: Prescription = evolve(recorded, given(issued(3)))
    return notices.told(state, recorded)


def test_an_exceptional_supply_tells_the_prescriber(notices: PrescriberNotices) -> None:
    event = told(notices, recorded_under("exceptional_supply"))

    (mail,) = event.mails
    assert (mail.kind, mail.recipient, mail.sender) == (
        "exceptional_supply_notice",
        ADDRESS,
        POSTMASTER,
    )
    assert mail.subject.startswith("Dispensation supplémentaire exceptionnelle : ordonnance ")
    assert mail.message_id == f"<exceptional-supply.{event.prescription_id}.2@ordo.mssante.fr>"
    assert "- ligne 1 : Paracétamol 1 g, 1 boîte(s)" in mail.body
    assert "article L. 5125-23-1" in mail.body
    assert [(r.line_no, r.remaining) for r in mail.remaining] == [(1, 3)]  # beyond the prescription


def test_an_exceptional_supply_with_mte_ph_tells_both(notices: PrescriberNotices) -> None:
    event = told(notices, recorded_under("exceptional_supply", mte_ph=True))

    assert [mail.kind for mail in event.mails] == [
        "non_substitution_notice",
        "exceptional_supply_notice",
    ]


@pytest.mark.parametrize("procedure", ["contraceptive_extension", None])
def test_other_dispensings_tell_nobody(
    notices: PrescriberNotices, procedure: Procedure | None
) -> None:
    assert told(notices, recorded_under(procedure)).mails == ()


def test_a_prescriber_the_directory_does_not_list_is_not_told(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("rpps,address\n")
    notices = PrescriberNotices(MssanteDirectory(empty), POSTMASTER)

    assert told(notices, recorded_under("exceptional_supply")).mails == ()
