"""The service's cache of folded prescriptions: bounded, and never moved backwards."""

from __future__ import annotations

import msgspec

from adapters.unit_of_work import StateCache
from domain.prescription import Prescription, fold
from tests.domain.builders import issued


def prescription(number: str, version: int = 1) -> Prescription:
    state = fold([issued(3)])
    assert state is not None
    return msgspec.structs.replace(state, prescription_id=number, version=version)


def test_beyond_its_size_the_least_recently_used_state_is_dropped() -> None:
    cache = StateCache(size=2)
    cache.put(prescription("A"))
    cache.put(prescription("B"))
    assert cache.get("A") is not None  # A is now the most recently used

    cache.put(prescription("C"))

    assert (cache.get("A"), cache.get("B"), len(cache)) == (prescription("A"), None, 2)
    assert cache.get("C") == prescription("C")


def test_an_older_state_never_replaces_a_newer_one() -> None:
    cache = StateCache()
    cache.put(prescription("A", version=3))

    cache.put(prescription("A", version=2))  # a slower concurrent load finishing late

    cached = cache.get("A")
    assert cached is not None and cached.version == 3


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache = StateCache(size=0)
    cache.put(prescription("A"))
    assert (cache.get("A"), len(cache)) == (None, 0)
