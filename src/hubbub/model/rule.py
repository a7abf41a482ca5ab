"""Per-agent rules: who it talks to, which channels it joins, how much it may do.

Defaults are permissive. :func:`validate_rule` refuses a malformed rule with a
message that names the field, so a bad rule never reaches the hub.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from ..errors import UsageError

__all__ = [
    "AccessBlock",
    "ChannelTypeAccess",
    "MAX_DURATION",
    "InboxBlock",
    "LimitsBlock",
    "RateBlock",
    "Rule",
    "parse_duration",
    "validate_rule",
]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: str | float) -> float:
    """Seconds in ``"30s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"250ms"`` or a bare number.

    ``""`` is 0. Raises :class:`UsageError` for a negative or unreadable value.
    """
    if isinstance(value, bool):
        raise UsageError(f"duration must be a number or a string like '30s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise UsageError(f"duration must not be negative, got {value!r}")
        return float(value)
    if not value:
        return 0.0
    match = _DURATION.match(value)
    if match is None:
        raise UsageError(
            f"cannot read duration {value!r}: write a number with an optional unit "
            "ms, s, m, h or d, such as '30s' or '2h'"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


class ChannelTypeAccess(msgspec.Struct, kw_only=True):
    """Channel types (globs) an agent may open (``initiate``) or join (``accept``)."""

    initiate: list[str] = msgspec.field(default_factory=lambda: ["*"])
    accept: list[str] = msgspec.field(default_factory=lambda: ["*"])


class AccessBlock(msgspec.Struct, kw_only=True):
    """Globs over agent names this agent accepts from and sends to."""

    inbound_from: list[str] = msgspec.field(default_factory=lambda: ["*"])
    outbound_to: list[str] = msgspec.field(default_factory=lambda: ["*"])
    channel_types: ChannelTypeAccess = msgspec.field(default_factory=ChannelTypeAccess)


class RateBlock(msgspec.Struct, kw_only=True):
    """Token bucket on sends: ``per_minute`` sustained, ``burst`` at once (0 = off)."""

    per_minute: int = 0
    burst: int = 0


class InboxBlock(msgspec.Struct, kw_only=True):
    """At most ``max_pending`` unacked envelopes wait for this agent."""

    max_pending: int = 1000
    overflow: Literal["reject", "drop_oldest", "drop_newest"] = "reject"
    high_water: int | None = None


class LimitsBlock(msgspec.Struct, kw_only=True):
    """Caps (0 = off) and default TTLs (duration strings)."""

    max_concurrent_channels: int = 0
    max_concurrent_tasks: int = 0
    channel_ttl_default: str = "2h"
    task_ttl_default: str = "15m"
    rate: RateBlock = msgspec.field(default_factory=RateBlock)
    delegation_depth: int = 5
    inbox: InboxBlock = msgspec.field(default_factory=InboxBlock)


class Rule(msgspec.Struct, kw_only=True):
    """Access and limits for one agent, enforced by the hub."""

    version: int = 1
    access: AccessBlock = msgspec.field(default_factory=AccessBlock)
    limits: LimitsBlock = msgspec.field(default_factory=LimitsBlock)


def _check_globs(field: str, patterns: list[str]) -> None:
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise UsageError(f"rule field {field} must be a list of non-empty glob strings, got {patterns!r}")
    for pattern in patterns:
        if pattern.count("[") != pattern.count("]"):
            raise UsageError(f"rule field {field} has an unbalanced glob {pattern!r}")


def _check_non_negative(field: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise UsageError(f"rule field {field} must be an integer, got {value!r}")
    if value is not None and value < 0:
        raise UsageError(f"rule field {field} must be 0 or more, got {value}")


MAX_DURATION = 100 * 366 * 86400.0
"""The longest TTL a rule or a request may set (seconds: a century)."""


def validate_rule(rule: Rule) -> Rule:
    """Return ``rule`` if every field is usable, else raise :class:`UsageError` naming the field."""
    access, limits = rule.access, rule.limits
    _check_globs("access.inbound_from", access.inbound_from)
    _check_globs("access.outbound_to", access.outbound_to)
    _check_globs("access.channel_types.initiate", access.channel_types.initiate)
    _check_globs("access.channel_types.accept", access.channel_types.accept)
    _check_non_negative("limits.max_concurrent_channels", limits.max_concurrent_channels)
    _check_non_negative("limits.max_concurrent_tasks", limits.max_concurrent_tasks)
    _check_non_negative("limits.delegation_depth", limits.delegation_depth)
    _check_non_negative("limits.rate.per_minute", limits.rate.per_minute)
    _check_non_negative("limits.rate.burst", limits.rate.burst)
    _check_non_negative("limits.inbox.high_water", limits.inbox.high_water)
    _check_non_negative("limits.inbox.max_pending", limits.inbox.max_pending)
    if limits.inbox.overflow not in ("reject", "drop_oldest", "drop_newest"):
        raise UsageError(
            "rule field limits.inbox.overflow must be 'reject', 'drop_oldest' or 'drop_newest', "
            f"got {limits.inbox.overflow!r}"
        )
    if limits.inbox.max_pending < 1:
        raise UsageError(
            f"rule field limits.inbox.max_pending must be 1 or more, got {limits.inbox.max_pending}"
        )
    for name in ("channel_ttl_default", "task_ttl_default"):
        try:
            seconds = parse_duration(getattr(limits, name))
        except UsageError as exc:
            raise UsageError(f"rule field limits.{name}: {exc}") from exc
        if not seconds <= MAX_DURATION:  # a later deadline is no date at all
            raise UsageError(
                f"rule field limits.{name} must be at most a century, got {getattr(limits, name)!r}"
            )
    return rule
