"""Reconnect delays: exponential backoff with full jitter, as a pure state machine.

``Backoff(0.1, 5.0)`` yields delays drawn uniformly from ``[0, 0.1]``, then
``[0, 0.2]``, ``[0, 0.4]`` ... capped at ``[0, 5.0]``: spreading the retries
of many clients over the whole window keeps them from reconnecting to a
restarted hub all in the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays before successive reconnect attempts; :meth:`reset` after a success.

    ``jitter`` returns a number in ``[0, 1]`` that scales each window (tests
    pass ``lambda: 1.0`` to get the windows themselves).
    """

    def __init__(self, initial: float, maximum: float, jitter: Callable[[], float] = random.random) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got initial={initial} maximum={maximum}")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self.attempt = 0
        """Attempts since the last :meth:`reset` (1 after the first :meth:`next`)."""

    def window(self) -> float:
        """The upper bound of the next delay."""
        # min() on the exponent first: 2**attempt overflows a float after ~1000 attempts.
        return min(self.maximum, self.initial * 2.0 ** min(self.attempt, 64))

    def next(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        delay = self.window() * self.jitter()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
