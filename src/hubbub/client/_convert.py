"""Turning op results into typed records, whatever the link delivered (records or JSON)."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

__all__ = ["as_type"]

T = TypeVar("T")


def as_type(tp: Any, value: Any) -> Any:
    """``value`` as ``tp``: returned as is when it already is one, else converted."""
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    return msgspec.convert(value, tp)
