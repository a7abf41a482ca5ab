"""Delegated tasks: the record of one piece of work an agent asked the hub to have done.

A task moves through a small state machine, checked by :func:`allowed`::

    PENDING ──► ASSIGNED ──► IN_PROGRESS ──► COMPLETED
       │  ▲        │   │          │  │
       │  └────────┘   │          │  └──► FAILED | CANCELLED | TIMEOUT
       │  (worker gone: back to PENDING for another agent)
       └──► FAILED | CANCELLED | TIMEOUT

``PENDING``: an agent was invited (its consulting channel is open, the invite
not yet acked) or is being looked for. ``ASSIGNED``: the worker acked.
``IN_PROGRESS``: the question (the task's input) is on its way to the worker.
The four terminal states never change again. No I/O here.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = [
    "TERMINAL_STATES",
    "TRANSITIONS",
    "DelegatedTask",
    "TaskState",
    "allowed",
    "is_terminal",
]

TaskState = Literal["PENDING", "ASSIGNED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]

TERMINAL_STATES: Final[frozenset[str]] = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
"""States a task never leaves."""

_ENDINGS = frozenset({"FAILED", "CANCELLED", "TIMEOUT"})
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "PENDING": frozenset({"ASSIGNED"}) | _ENDINGS,
    "ASSIGNED": frozenset({"IN_PROGRESS", "PENDING"}) | _ENDINGS,
    "IN_PROGRESS": frozenset({"COMPLETED", "PENDING"}) | _ENDINGS,
    "COMPLETED": frozenset(),
    "FAILED": frozenset(),
    "CANCELLED": frozenset(),
    "TIMEOUT": frozenset(),
}
"""Every state a task may move to from each state (back to PENDING = handed to another agent)."""


def allowed(from_state: str, to_state: str) -> bool:
    """Whether a task in ``from_state`` may move to ``to_state``."""
    return to_state in TRANSITIONS.get(from_state, frozenset())


def is_terminal(state: str) -> bool:
    """COMPLETED, FAILED, CANCELLED or TIMEOUT."""
    return state in TERMINAL_STATES


class DelegatedTask(msgspec.Struct, kw_only=True, frozen=True):
    """One delegated task as the hub keeps it (and returns it from every task op).

    ``task_id`` is hub-stamped. ``worker_id`` is the agent doing the work (None while
    PENDING). ``input`` and ``result`` are JSON values. ``error`` says why a task
    FAILED, was CANCELLED or hit its TIMEOUT. ``ttl`` is seconds from ``created_at``
    to ``deadline_at``. ``attempts`` counts the agents invited so far; after the
    first, at most ``max_retries`` more are tried when a worker goes away.
    ``channel_id`` is the consulting channel of the current (or last) attempt, whose
    WAL holds the question and the reply. Times are ISO-8601 UTC.
    """

    task_id: str
    capability: str
    requester_id: str
    worker_id: str | None
    state: TaskState
    input: Any
    result: Any = None
    error: str | None = None
    priority: int = 0
    ttl: float
    max_retries: int = 2
    attempts: int = 0
    idempotency_key: str | None = None
    channel_id: str | None = None
    created_at: str
    updated_at: str
    deadline_at: str

    @property
    def id(self) -> str:
        """The task id."""
        return self.task_id

    @property
    def finished(self) -> bool:
        """In a terminal state."""
        return self.state in TERMINAL_STATES
