"""Lines counted in units (tablets, capsules, sachets…), not packs, where the catalogue knows the
units of the prescribed pack and of every pack handed over for the line.

A line written as 3 boxes of 30 tablets holds 90 tablets: one box of 90 gives all of it, and
three boxes of 90 would give 270, three times what was prescribed (CSP R5132-22 and R5123-2:
what may be given at once is a duration of treatment, which only units make exact). Where a
pack's units are not known (a bottle in millilitres, a pack the catalogue does not know, no
catalogue at all), the line is counted in packs as it always was: a pack of the line is its
unit, one pack the amount it holds.

Pack sizes are what the catalogue says today; no event records them, so a prescription written
before a catalogue was imported is counted in units as soon as one is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

import msgspec

from domain.events import DispensedLine, PrescribedLine, Product

ONE_MONTH_DAYS = 30  # R5132-22: 4 weeks or 30 days at a time
LONG_PACK_MAX_DAYS = 90  # a pack made for more than a month: its duration, up to 3 months
CONTRACEPTIVE_MAX_DAYS = 84  # contraceptives: 12 weeks at once


class PackSizes(msgspec.Struct, frozen=True, kw_only=True):
    """What the catalogue says of the packs a prescription names: the units of each pack whose
    label states them (by CIP13), and which of them are contraceptives."""

    units: dict[str, int] = msgspec.field(default_factory=dict)
    contraceptives: frozenset[str] = frozenset()

    def of(self, product: Product) -> int | None:
        if product.system != "CIP13" or product.code is None:
            return None
        return self.units.get(product.code)

    def contraceptive(self, product: Product) -> bool:
        return product.system == "CIP13" and product.code in self.contraceptives


class Counting(msgspec.Struct, frozen=True, kw_only=True):
    """How one line is counted: `per_pack` is what a prescribed pack holds (1 in packs), and
    `sizes` the units of every pack known, None when the line is counted in packs."""

    per_pack: int
    sizes: PackSizes | None
    contraceptive: bool = False

    @property
    def in_units(self) -> bool:
        return self.sizes is not None

    def amount(self, quantity: int, product: Product) -> int:
        """What `quantity` packs of `product` give of the line: units, or packs."""
        if self.sizes is None:
            return quantity
        size = self.sizes.of(product)
        assert size is not None  # counted in units: every pack of the line has a size
        return quantity * size

    def prescribed(self, line: PrescribedLine) -> int:
        return line.quantity * self.per_pack

    def days_per_unit(self, line: PrescribedLine) -> Fraction:
        """The days one unit (or one pack) lasts, from the prescribed line: duration_days over
        what it prescribes."""
        return Fraction(line.duration_days, self.prescribed(line))

    def pack_days(self, line: PrescribedLine, pack: Product | None) -> Fraction:
        """The days one pack lasts: `pack` (None: the prescribed one) in units, any pack of
        the line in packs."""
        size = self.per_pack if pack is None or self.sizes is None else self.sizes.of(pack)
        assert size is not None  # counted in units: every pack of the line has a size
        return size * self.days_per_unit(line)

    def max_days_at_once(self, line: PrescribedLine, pack: Product | None) -> Fraction:
        """The longest one dispensing may cover, `pack` being the one handed over (None: the
        prescribed pack). In units, 30 days (12 weeks for a contraceptive), or the pack's own
        duration up to 3 months when it lasts longer. In packs, 30 days or one pack's
        duration, whatever that is."""
        pack_days = self.pack_days(line, pack)
        if self.sizes is None:
            return max(Fraction(ONE_MONTH_DAYS), pack_days)
        base = CONTRACEPTIVE_MAX_DAYS if self.contraceptive else ONE_MONTH_DAYS
        return max(Fraction(base), min(Fraction(LONG_PACK_MAX_DAYS), pack_days))


IN_PACKS = Counting(per_pack=1, sizes=None)


def counting(sizes: PackSizes | None, prescribed: Product, handed: Iterable[Product]) -> Counting:
    """The line of the `prescribed` pack in units when the units of that pack and of every pack
    `handed` over for it are known, else in packs."""
    if sizes is None:
        return IN_PACKS
    per_pack = sizes.of(prescribed)
    if per_pack is None or any(sizes.of(product) is None for product in handed):
        return IN_PACKS
    return Counting(per_pack=per_pack, sizes=sizes, contraceptive=sizes.contraceptive(prescribed))


def given(count: Counting, lines: Iterable[DispensedLine]) -> int:
    """What these dispensed lines gave, in the line's count."""
    return sum(count.amount(line.quantity, line.product) for line in lines)


class Left(msgspec.Struct, frozen=True, kw_only=True):
    """What a line has left: `packs` of the prescribed size, and `units` on a line counted in
    units (None on a line counted in packs)."""

    packs: int
    units: int | None


def left(
    sizes: PackSizes | None, prescribed: Product, quantity: int, handed: Sequence[DispensedLine]
) -> Left:
    """What a line of `quantity` packs of `prescribed` has left once `handed` was given for it."""
    count = counting(sizes, prescribed, (line.product for line in handed))
    amount = quantity * count.per_pack - given(count, handed)
    return Left(packs=amount // count.per_pack, units=amount if count.in_units else None)
