"""Ids: shape, uniqueness, and the strict order envelope ids must keep."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator

from hubbub.model import MonotonicIds, id_time_ns, make_id

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_make_id_is_32_lowercase_hex() -> None:
    for _ in range(100):
        assert HEX32.fullmatch(make_id())


def test_make_id_is_unique() -> None:
    assert len({make_id() for _ in range(10_000)}) == 10_000


def test_make_id_carries_the_time_it_was_minted() -> None:
    before = time.time_ns()
    id_ = make_id()
    after = time.time_ns()
    assert before <= id_time_ns(id_) <= after


def test_monotonic_ids_are_32_lowercase_hex() -> None:
    ids = MonotonicIds()
    assert HEX32.fullmatch(ids())


def test_frozen_clock_still_gives_strictly_increasing_unique_ids() -> None:
    ids = MonotonicIds(clock=lambda: 5)
    minted = [ids() for _ in range(1000)]
    assert all(HEX32.fullmatch(i) for i in minted)
    assert all(a < b for a, b in itertools.pairwise(minted))
    assert len(set(minted)) == 1000
    # The first id takes the clock's value, each later one a nanosecond more.
    assert [id_time_ns(i) for i in minted] == list(range(5, 1005))


def test_clock_stepping_backwards_still_gives_increasing_ids() -> None:
    readings: Iterator[int] = iter([1_000, 2_000, 1_500, 10, 2_000, 3_000, 0])
    ids = MonotonicIds(clock=lambda: next(readings))
    minted = [ids() for _ in range(7)]
    assert all(a < b for a, b in itertools.pairwise(minted))
    assert [id_time_ns(i) for i in minted] == [1_000, 2_000, 2_001, 2_002, 2_003, 3_000, 3_001]


def test_advance_past_makes_later_ids_sort_after_a_stored_id() -> None:
    stored = f"{10**15:016x}{'f' * 16}"  # from a WAL written when the clock read far ahead
    ids = MonotonicIds(clock=lambda: 42)
    ids.advance_past(stored)
    later = [ids() for _ in range(3)]
    assert all(stored < i for i in later)
    assert [id_time_ns(i) for i in later] == [10**15 + 1, 10**15 + 2, 10**15 + 3]


def test_advance_past_an_older_id_changes_nothing() -> None:
    ids = MonotonicIds(clock=lambda: 500)
    first = ids()
    ids.advance_past(f"{100:016x}{'0' * 16}")
    assert id_time_ns(ids()) == 501
    assert id_time_ns(first) == 500


def test_id_time_ns_round_trips_the_clock_reading() -> None:
    for ns in (1, 1_767_225_600_123_456_789, 2**64 - 1):
        assert id_time_ns(MonotonicIds(clock=lambda ns=ns: ns)()) == ns


def test_sort_order_of_ids_is_the_order_of_their_timestamps() -> None:
    early = MonotonicIds(clock=lambda: 0x0FFF)()
    late = MonotonicIds(clock=lambda: 0x1000)()
    # Fixed-width hex: string order agrees with numeric order.
    assert early < late
    assert id_time_ns(early) < id_time_ns(late)
