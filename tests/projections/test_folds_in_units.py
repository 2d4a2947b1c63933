"""The pharmacy's inbox counted in units (`projections.folds`): given a prescription of real
packs, Levothyrox 25 µg in boxes of 30 (3400930065556) and of 90 (3400930065570), sent to a
pharmacy and partly dispensed elsewhere, then its inbox lines say what is left as the read does,
whether the catalogue's sizes were known when the row was folded or only when it is read."""

from __future__ import annotations

import msgspec

from domain.catalogue import pack_sizes, sized
from domain.events import (
    DispensationRecorded,
    DispensedLine,
    Event,
    PrescribedLine,
    PrescriptionIssued,
    PrescriptionTransmitted,
)
from domain.prescription import Prescription, fold
from domain.units import PackSizes
from domain.views import remaining_units
from projections.folds import InboxEntry, counted, inbox_entries, left_to_dispense, packs_named
from tests.domain.builders import PHARMACIST, PHARMACY_A, PHARMACY_B, moment
from tests.domain.counter import line, prescribed
from tests.domain.real_packs import DOLIPRANE_SYRUP, LEVOTHYROX_30, LEVOTHYROX_90, RealPacks, pack

PACKS = RealPacks()


def written(*lines: PrescribedLine) -> PrescriptionIssued:
    return prescribed(*lines)


def sent(issued: PrescriptionIssued) -> PrescriptionTransmitted:
    return PrescriptionTransmitted(
        prescription_id=issued.prescription_id,
        version=2,
        at=moment().at,
        finess=PHARMACY_B.value,
        message="Je passe demain",
    )


def handed(issued: PrescriptionIssued, *packs: tuple[int, int, str]) -> DispensationRecorded:
    """Pharmacy A hands over (line, quantity, pack) for each of `packs`."""
    return DispensationRecorded(
        prescription_id=issued.prescription_id,
        version=3,
        at=moment().at,
        dispensation_id="d1",
        finess=PHARMACY_A.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensed_at=moment().at,
        lines=tuple(
            DispensedLine(line_no=no, quantity=quantity, product=pack(code))
            for no, quantity, code in packs
        ),
    )


def state_of(*events: Event) -> Prescription:
    state = fold(events)
    assert state is not None
    return state


def sizes_of(state: Prescription) -> PackSizes:
    """The catalogue's sizes of the packs the inbox rows of `state` name, as the read asks."""
    return pack_sizes(packs_named(inbox_entries(state)), PACKS)


def test_a_box_of_30_given_of_three_leaves_two_boxes_and_60_tablets() -> None:
    issued = written(line(3, 90, product=pack(LEVOTHYROX_30)))
    state = state_of(issued, sent(issued), handed(issued, (1, 1, LEVOTHYROX_30)))

    (folded,) = inbox_entries(state)  # folded without the catalogue: in packs
    (read,) = counted(folded, sizes_of(state)).lines

    assert (folded.lines[0].remaining, folded.lines[0].remaining_units) == (2, None)
    assert (read.remaining, read.remaining_units) == (2, 60)


def test_a_box_of_90_gives_three_boxes_of_30_so_the_prescription_leaves_the_inbox() -> None:
    issued = written(line(3, 90, product=pack(LEVOTHYROX_30)))
    state = state_of(issued, sent(issued), handed(issued, (1, 1, LEVOTHYROX_90)))

    (folded,) = inbox_entries(state)  # in packs: 1 box of 3
    read = counted(folded, sizes_of(state))

    assert folded.lines[0].remaining == 2
    assert (read.lines[0].remaining, read.lines[0].remaining_units) == (0, 0)
    assert not left_to_dispense(read)


def test_tablets_left_short_of_a_box_are_still_left_to_dispense() -> None:
    boxes_of_90, boxes_of_30 = pack(LEVOTHYROX_90), pack(LEVOTHYROX_30)
    issued = written(line(1, 90, product=boxes_of_90), line(3, 90, product=boxes_of_30))
    twice = ((1, 2, LEVOTHYROX_30), (2, 2, LEVOTHYROX_30))
    state = state_of(issued, sent(issued), handed(issued, *twice))

    read = counted(inbox_entries(state)[0], sizes_of(state))
    first = read.lines[0]

    assert [(line.remaining, line.remaining_units) for line in read.lines] == [(0, 30), (1, 30)]
    assert left_to_dispense(msgspec.structs.replace(read, lines=(first,)))
    given_up = msgspec.structs.replace(first, remaining_units=0)
    assert not left_to_dispense(msgspec.structs.replace(read, lines=(given_up,)))
    one_tablet = msgspec.structs.replace(first, remaining_units=1)
    assert left_to_dispense(msgspec.structs.replace(read, lines=(one_tablet,)))


def test_counted_when_read_or_when_folded_the_lines_are_the_read_s() -> None:
    issued = written(
        line(3, 90, product=pack(LEVOTHYROX_30)),
        line(2, 180, product=pack(LEVOTHYROX_90)),
        line(2, 10, product=pack(DOLIPRANE_SYRUP)),
    )
    given_packs = ((1, 1, LEVOTHYROX_90), (2, 1, LEVOTHYROX_30), (3, 1, DOLIPRANE_SYRUP))
    state = state_of(issued, sent(issued), handed(issued, *given_packs))
    catalogued = sized(state, PACKS)

    (at_read,) = [counted(entry, sizes_of(state)) for entry in inbox_entries(state)]
    (at_fold,) = inbox_entries(catalogued)

    assert at_read == at_fold
    assert [(line.remaining, line.remaining_units) for line in at_fold.lines] == [
        (catalogued.remaining(line.line_no), remaining_units(catalogued, line))
        for line in catalogued.lines
    ]
    assert [(line.remaining, line.remaining_units) for line in at_fold.lines] == [
        (0, 0),
        (1, 150),
        (1, None),  # syrup: its label counts no units, so the line counts bottles
    ]


def test_without_a_catalogue_the_lines_count_packs() -> None:
    issued = written(line(3, 90, product=pack(LEVOTHYROX_30)))
    state = state_of(issued, sent(issued), handed(issued, (1, 1, LEVOTHYROX_90)))
    (entry,) = inbox_entries(state)

    read = counted(entry, None)

    assert read == entry
    assert (read.lines[0].remaining, read.lines[0].remaining_units) == (2, None)
    assert left_to_dispense(read)


def test_a_row_stored_before_its_packs_were_kept_reads_as_stored() -> None:
    issued = written(line(3, 90, product=pack(LEVOTHYROX_30)))
    state = state_of(issued, sent(issued), handed(issued, (1, 1, LEVOTHYROX_90)))
    (entry,) = inbox_entries(state)
    stored_before = InboxEntry(
        **{**{f: getattr(entry, f) for f in entry.__struct_fields__}, "handed": None}
    )

    assert counted(stored_before, sizes_of(state)) == stored_before


def test_the_packs_an_entry_names_are_its_lines_and_what_was_handed_over() -> None:
    issued = written(line(3, 90, product=pack(LEVOTHYROX_30)))
    state = state_of(issued, sent(issued), handed(issued, (1, 1, LEVOTHYROX_90)))

    named = list(packs_named(inbox_entries(state)))

    assert named == [pack(LEVOTHYROX_30), pack(LEVOTHYROX_90)]


def test_an_entry_keeps_the_packs_of_standing_dispensings_only() -> None:
    issued = written(line(3, 90, product=pack(LEVOTHYROX_30)))
    state = state_of(issued, sent(issued), handed(issued, (1, 1, LEVOTHYROX_90)))

    (entry,) = inbox_entries(state)

    assert entry.handed == (DispensedLine(line_no=1, quantity=1, product=pack(LEVOTHYROX_90)),)


def test_two_boxes_of_30_against_a_box_of_90_keep_it_in_the_inbox_with_30_tablets_left() -> None:
    issued = written(line(1, 90, product=pack(LEVOTHYROX_90)))
    state = state_of(issued, sent(issued), handed(issued, (1, 2, LEVOTHYROX_30)))

    (folded,) = inbox_entries(state)  # in packs: 2 boxes given of 1, yet other packs
    read = counted(folded, sizes_of(state))

    assert folded.lines[0].remaining == -1
    assert (read.lines[0].remaining, read.lines[0].remaining_units) == (0, 30)
    assert left_to_dispense(read)


def test_three_boxes_of_30_against_a_box_of_90_are_kept_by_the_fold_and_left_out_when_read() -> (
    None
):
    issued = written(line(1, 90, product=pack(LEVOTHYROX_90)))
    state = state_of(issued, sent(issued), handed(issued, (1, 3, LEVOTHYROX_30)))

    (folded,) = inbox_entries(state)
    read = counted(folded, sizes_of(state))

    assert (read.lines[0].remaining, read.lines[0].remaining_units) == (0, 0)
    assert not left_to_dispense(read)


def test_the_prescribed_packs_all_given_leave_the_inbox_whatever_the_catalogue() -> None:
    issued = written(
        line(1, 90, product=pack(LEVOTHYROX_90)), line(3, 90, product=pack(LEVOTHYROX_30))
    )
    given_packs = ((1, 1, LEVOTHYROX_90), (2, 3, LEVOTHYROX_30))
    state = state_of(issued, sent(issued), handed(issued, *given_packs))

    assert inbox_entries(state) == ()
    assert inbox_entries(sized(state, PACKS)) == ()


def test_a_line_given_other_packs_keeps_the_prescription_though_another_line_is_used_up() -> None:
    issued = written(
        line(1, 90, product=pack(LEVOTHYROX_90)), line(3, 90, product=pack(LEVOTHYROX_30))
    )
    given_packs = ((1, 3, LEVOTHYROX_30), (2, 3, LEVOTHYROX_30))
    state = state_of(issued, sent(issued), handed(issued, *given_packs))

    (folded,) = inbox_entries(state)

    assert [line.remaining for line in folded.lines] == [-2, 0]
    assert not left_to_dispense(counted(folded, sizes_of(state)))
