"""Identifiers: 32 hex characters, an 8-byte nanosecond timestamp then 8 random bytes.

:func:`make_id` is unique and roughly time ordered (agents, channels, requests).
:class:`MonotonicIds` is what envelope ids come from: every id it mints sorts
strictly after the one before, even when the clock stands still or steps back,
because delivery cursors and replay compare envelope ids by sort order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ._time import iso_from_ns

__all__ = ["MonotonicIds", "id_time_ns", "make_id"]

_rand = random.SystemRandom()


def make_id() -> str:
    """A fresh unique id, ordered by creation time to the clock's resolution."""
    return f"{time.time_ns():016x}{_rand.getrandbits(64):016x}"


def id_time_ns(id_: str) -> int:
    """The nanosecond timestamp an id was minted at (its first 16 hex digits)."""
    return int(id_[:16], 16)


class MonotonicIds:
    """Mints strictly increasing ids; one instance per hub (or per channel owner).

    The timestamp part is clamped to one nanosecond past the previous id when
    the clock has not advanced, so the order of ids is the order of minting.
    The last 8 bytes are random per instance (per hub): the timestamp already
    makes ids unique within a hub, the suffix keeps two hubs' ids apart, and
    formatting one constant suffix is a quarter of the cost of fresh bits.
    """

    __slots__ = ("_clock", "_last_ns", "_suffix")

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self._clock: Callable[[], int] = clock or time.time_ns
        self._last_ns = 0
        self._suffix = f"{_rand.getrandbits(64):016x}"

    def advance_past(self, id_: str) -> None:
        """Make every later id sort after ``id_`` (used when resuming a stored WAL)."""
        self._last_ns = max(self._last_ns, id_time_ns(id_))

    def __call__(self) -> str:
        return self.stamp()[0]

    def stamp(self) -> tuple[str, str]:
        """A new id and the wire-form time it was minted at, from one clock reading."""
        ns = self._clock()
        if ns <= self._last_ns:
            ns = self._last_ns + 1
        self._last_ns = ns
        return f"{ns:016x}{self._suffix}", iso_from_ns(ns)
