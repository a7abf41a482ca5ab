"""The reconnect backoff as a pure state machine: no loop, no clock."""

from __future__ import annotations

import pytest

from hubbub.transport._backoff import Backoff


def test_windows_double_up_to_the_cap() -> None:
    backoff = Backoff(0.1, 5.0, jitter=lambda: 1.0)
    assert [backoff.next() for _ in range(9)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert backoff.attempt == 9


def test_full_jitter_scales_the_whole_window() -> None:
    draws = iter([0.0, 0.5, 0.25])
    backoff = Backoff(1.0, 10.0, jitter=lambda: next(draws))
    assert [backoff.next() for _ in range(3)] == [0.0, 1.0, 1.0]


def test_reset_starts_over_and_many_attempts_do_not_overflow() -> None:
    backoff = Backoff(0.1, 5.0, jitter=lambda: 1.0)
    for _ in range(5000):
        backoff.next()
    assert backoff.next() == 5.0
    backoff.reset()
    assert (backoff.attempt, backoff.next()) == (0, 0.1)


def test_the_default_jitter_stays_inside_the_window() -> None:
    backoff = Backoff(0.1, 5.0)
    delays = [backoff.next() for _ in range(50)]
    assert all(0.0 <= d <= 5.0 for d in delays)
    assert all(d <= 0.1 * 2**i for i, d in enumerate(delays))


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_bad_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="0 < initial <= maximum"):
        Backoff(initial, maximum)
