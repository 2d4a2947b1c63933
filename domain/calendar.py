"""The pharmacy's local calendar: every day-counting rule counts days where the packs are given.

A FINESS starts with its department; overseas departments have three digits (971…976).
At 22:00 in Guadeloupe on a prescription's last valid day it is already the next day in Paris:
counted in Paris, the patient would be turned away at a counter where the day is not over.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import msgspec

PARIS = "Europe/Paris"


class Moment(msgspec.Struct, frozen=True):
    """When a command runs: the instant recorded, and the calendar day in France."""

    at: datetime
    today: date


# domain.md "Local calendar"; 975 (Saint-Pierre-et-Miquelon) is an overseas FINESS department
# too, whose pharmacies live three hours behind Paris' winter time.
OVERSEAS_ZONES = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "975": "America/Miquelon",
    "976": "Indian/Mayotte",
}


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_of(finess: str) -> ZoneInfo:
    """The time zone of the pharmacy with this FINESS (Europe/Paris unless overseas)."""
    return _zone(OVERSEAS_ZONES.get(finess[:3], PARIS))


def local_day(at: datetime, finess: str) -> date:
    """The calendar day at the pharmacy at this instant."""
    return at.astimezone(zone_of(finess)).date()


def paris_day(at: datetime) -> date:
    """The day in mainland France: prescribing, and reads that no pharmacy makes."""
    return at.astimezone(_zone(PARIS)).date()
