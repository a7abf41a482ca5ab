"""Task records: the events an agent mirrors about the sub-tasks it runs during a turn."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["TASK_EVENT_KINDS", "TERMINAL_TASK_KINDS", "TaskEvent", "TaskEventKind"]

TaskEventKind = Literal["started", "succeeded", "failed", "expired"]
TASK_EVENT_KINDS: tuple[str, ...] = ("started", "succeeded", "failed", "expired")
TERMINAL_TASK_KINDS: frozenset[str] = frozenset({"succeeded", "failed", "expired"})
"""Kinds that finish a task. ``expired`` is the hub's: a task still open at its TTL."""


class TaskEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One step of one mirrored task, as the hub accepted it.

    ``capabilities`` are the task's tags (lower-cased; a terminal event
    carries the tags given at ``started`` plus any new ones).
    ``duration_ms`` is set on terminal events: the client's measurement when
    it sent one, else the hub's own from the ``started`` event. ``error`` is
    set on ``failed`` and ``expired``. ``at`` is the hub's time of acceptance.
    """

    agent_id: str
    task_id: str
    kind: TaskEventKind
    capabilities: list[str] = msgspec.field(default_factory=list)
    duration_ms: int | None = None
    error: str | None = None
    at: str = ""
