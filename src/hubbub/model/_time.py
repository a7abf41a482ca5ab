"""Timestamps as ISO-8601 UTC strings with a trailing Z (the wire form)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_iso", "iso_now", "to_iso"]


def to_iso(ts: float) -> str:
    """A POSIX timestamp as ``2026-01-02T03:04:05.678901Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_now() -> str:
    """The current time in the wire form."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> float:
    """The POSIX timestamp of a wire-form time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
