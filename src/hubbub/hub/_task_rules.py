"""What a delegation may ask for, which agent gets it, and how a reply reads as an outcome.

Pure helpers for :mod:`hubbub.hub.delegation`: argument checks that raise
:class:`UsageError` naming the bad value before anything is written, the
ranking of candidate workers, and the question / reply envelope shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ..errors import NotFoundError, UsageError
from ..model.delegation import TaskState
from ..model.envelope import Envelope, Priority
from ..storage.base import AgentRecord
from .registry import rank_key

__all__ = [
    "MAX_RETRIES",
    "MAX_TTL",
    "check_capability",
    "check_input",
    "check_key",
    "check_limit",
    "check_priority",
    "check_retries",
    "check_state",
    "check_timeout",
    "check_ttl",
    "envelope_priority",
    "input_text",
    "no_worker",
    "outcome_of",
    "rank_workers",
]

MAX_TTL = 366 * 86400.0
"""A task lives at most a year."""
MAX_RETRIES = 10
_MAX_KEY = 200
_MAX_CAPABILITY = 128
_STATES: tuple[str, ...] = (
    "PENDING",
    "ASSIGNED",
    "IN_PROGRESS",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
)
_encode = msgspec.json.Encoder().encode


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def check_capability(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_CAPABILITY:
        raise UsageError(
            f"capability must be a non-empty string of at most {_MAX_CAPABILITY} characters, got {value!r}",
            reason="bad_capability",
        )
    return value.strip().lower()


def check_ttl(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or not 0 < value <= MAX_TTL:
        raise UsageError(
            f"ttl must be a number of seconds above 0 and at most {MAX_TTL:.0f} (a year), got {value!r}",
            reason="bad_ttl",
        )
    return float(value)


def check_priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"priority must be an integer (0 = normal), got {value!r}", reason="bad_priority")
    return value


def check_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise UsageError(
            f"max_retries must be an integer from 0 to {MAX_RETRIES}, got {value!r}", reason="bad_max_retries"
        )
    return value


def check_key(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value or len(value) > _MAX_KEY):
        raise UsageError(
            f"idempotency_key must be a non-empty string of at most {_MAX_KEY} characters, got {value!r}",
            reason="bad_idempotency_key",
        )
    return value


def check_input(value: Any) -> None:
    try:
        _encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UsageError(
            f"a task's input must be a JSON value (str, number, bool, None, list, dict): {exc}",
            reason="bad_input",
        ) from exc


def check_state(value: Any) -> TaskState | None:
    if value is not None and value not in _STATES:
        raise UsageError(f"state must be one of {', '.join(_STATES)}, got {value!r}", reason="bad_state")
    return value  # type: ignore[no-any-return]


def check_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"limit must be a positive integer, got {value!r}", reason="bad_limit")
    return value


def check_timeout(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise UsageError(
            f"timeout must be a number of seconds, 0 or more, got {value!r}", reason="bad_timeout"
        )
    return float(value)


def envelope_priority(priority: int) -> Priority:
    """A task's priority as the question envelope carries it."""
    return "urgent" if priority > 0 else "background" if priority < 0 else "normal"


def input_text(value: Any) -> str:
    """The question's text: the input itself when it is a string, else its JSON."""
    return value if isinstance(value, str) else _encode(value).decode()


def outcome_of(reply: Envelope) -> tuple[Any, str | None]:
    """``(result, error)`` of a worker's reply: ``event_data["error"]`` fails the task; else the
    result is ``event_data["result"]`` when present, or the reply's text."""
    data = reply.event_data
    error = data.get("error")
    if error is not None and error != "":
        return None, error if isinstance(error, str) else input_text(error)
    if "result" in data:
        return data["result"], None
    return reply.text, None


def rank_workers(
    candidates: Iterable[AgentRecord],
    capability: str,
    *,
    eligible: Callable[[AgentRecord], bool],
    load: Callable[[str], int],
) -> list[AgentRecord]:
    """Eligible candidates, best first: least loaded, then the better observed record
    (success rate, then median latency), then by name so the order is stable."""
    ranked = []
    for record in candidates:
        if eligible(record):
            _, rate, latency, name = rank_key(record, capability)
            ranked.append(((load(record.passport.agent_id or ""), rate, latency, name), record))
    ranked.sort(key=lambda pair: pair[0])
    return [record for _, record in ranked]


def no_worker(capability: str, claimed: int, why: list[str]) -> NotFoundError:
    """The error when nobody can take a task: says who claims it and why each was passed over."""
    if not claimed:
        return NotFoundError(
            f"no agent claims capability {capability!r}; a worker lists it in its Resume's "
            "claimed_capabilities (Worker.on_task does this for you)",
            reason="no_capable_agent",
        )
    return NotFoundError(
        f"{claimed} agent(s) claim capability {capability!r} but none can take the task now: "
        f"{'; '.join(why[:5])}{' ...' if len(why) > 5 else ''}",
        reason="no_available_agent",
    )
