"""Reading op params off the wire: each helper returns a typed value or raises ProtocolError naming it.

Params arrive as plain JSON values from any client, so nothing may be assumed
about their types; a wrong one is the caller's mistake, reported as such, never
a failure inside the hub.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ..errors import ProtocolError, UsageError
from ..model.rule import MAX_DURATION, parse_duration

__all__ = ["as_type", "count", "opt_dict", "opt_str", "req_str", "str_list", "ttl"]

T = TypeVar("T")


def as_type(cls: type[T], value: Any, what: str) -> T:
    if isinstance(value, cls):
        return value
    try:
        return msgspec.convert(value, cls)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"{what} is not a valid {cls.__name__}: {exc}") from exc


def req_str(params: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = params.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"param {key!r} must be a non-empty string, got {value!r}")
    return value


def opt_str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"param {key!r} must be a string or null, got {value!r}")
    return value


def opt_bool(params: dict[str, Any], key: str) -> bool:
    """A true/false param; absent or null mean false."""
    value = params.get(key)
    if value is not None and not isinstance(value, bool):
        raise ProtocolError(f"param {key!r} must be true or false, got {value!r}")
    return bool(value)


def count(params: dict[str, Any], key: str, default: int) -> int:
    """A non-negative integer param; absent, null or 0 mean ``default`` (ag2 sends ``limit=0``)."""
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(f"param {key!r} must be a non-negative integer, got {value!r}")
    return value or default


def opt_dict(params: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError(f"param {key!r} must be an object or null, got {value!r}")
    return value


def str_list(params: dict[str, Any], key: str) -> list[str]:
    value = params.get(key)
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ProtocolError(f"param {key!r} must be a list of strings, got {value!r}")
    return value


_MAX_TTL = MAX_DURATION


def ttl(value: Any) -> str | float | None:
    """A channel TTL: a duration string or seconds, below a century (later dates do not exist)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ProtocolError(
            f"param 'ttl' must be a duration like '30s' or a number of seconds, got {value!r}"
        )
    try:
        seconds = parse_duration(value)
    except UsageError as exc:
        raise ProtocolError(f"param 'ttl': {exc}") from exc
    if not seconds <= _MAX_TTL:
        raise ProtocolError(f"param 'ttl' must be below {_MAX_TTL:.0f} seconds, got {value!r}")
    return value
