"""How a line is counted (`domain.units`): the pack sizes a prescription's packs have, in
units only where every pack of the line states them."""

from __future__ import annotations

from domain.events import Product
from domain.units import IN_PACKS, PackSizes, counting
from tests.domain.real_packs import LEVOTHYROX_30, LEVOTHYROX_90, MINIDRIL_1, pack

SIZES = PackSizes(units={LEVOTHYROX_30: 30, LEVOTHYROX_90: 90, MINIDRIL_1: 21})


def test_only_a_cip13_pack_has_a_size_and_is_a_contraceptive() -> None:
    same_digits = Product(system="UCD", code=LEVOTHYROX_30, label="a UCD with those digits")
    sizes = PackSizes(units=SIZES.units, contraceptives=frozenset({MINIDRIL_1}))

    assert sizes.of(pack(LEVOTHYROX_30)) == 30
    assert sizes.of(same_digits) is None
    assert sizes.of(Product(system="DCI", label="lévothyroxine")) is None
    assert sizes.contraceptive(pack(MINIDRIL_1))
    assert not sizes.contraceptive(Product(system="UCD", code=MINIDRIL_1, label="x"))


def test_a_line_is_counted_in_units_only_when_every_pack_of_it_states_its_units() -> None:
    written = pack(LEVOTHYROX_30)
    unknown = pack("3400930000007")

    in_units = counting(SIZES, written, [pack(LEVOTHYROX_90)])

    assert (in_units.in_units, in_units.per_pack, in_units.contraceptive) == (True, 30, False)
    assert in_units.amount(2, pack(LEVOTHYROX_90)) == 180
    assert counting(SIZES, written, [unknown]) == IN_PACKS
    assert counting(None, written, []) == IN_PACKS
    assert counting(SIZES, unknown, []) == IN_PACKS
    assert IN_PACKS.amount(2, pack(LEVOTHYROX_90)) == 2
