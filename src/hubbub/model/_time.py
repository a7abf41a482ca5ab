"""Timestamps as ISO-8601 UTC strings with a trailing Z (the wire form)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["from_iso", "iso_from_ns", "iso_now", "to_iso"]

_cached_second = -1
_cached_prefix = ""


def to_iso(ts: float) -> str:
    """A POSIX timestamp as ``2026-01-02T03:04:05.678901Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_now() -> str:
    """The current time in the wire form.

    On the post path: the date-and-seconds prefix is formatted once per
    second (strftime alone was a quarter of a post's cost).
    """
    return iso_from_ns(time.time_ns())


def iso_from_ns(ns: int) -> str:
    """A nanosecond POSIX time in the wire form (microsecond precision)."""
    global _cached_second, _cached_prefix
    second, rest = divmod(ns, 1_000_000_000)
    if second != _cached_second:
        _cached_second, _cached_prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_cached_prefix}.{rest // 1000:06d}Z"


def from_iso(text: str) -> float:
    """The POSIX timestamp of a wire-form time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
