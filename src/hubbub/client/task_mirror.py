"""``TaskMirror``: tell the hub about the sub-tasks an agent runs, so it can build a track record.

Every agent client has one (``agent_client.tasks``). Inside a turn, reach it
through :func:`hubbub.agents.current_agent`::

    async def summarize(turn: Turn) -> str:
        async with current_agent().tasks.track("summarize") as task:
            return await my_model(turn.prompt)

The block reports ``started`` when it is entered, ``succeeded`` with the
duration the mirror measured when it ends, and ``failed`` with the error text
when it raises (the exception still propagates). The hub folds each result
into the agent's ``Resume.observed`` per capability tag, and discovery ranks
agents that claim the same capability by that record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..errors import HubbubError, UsageError
from ..model.ids import make_id
from ..model.task import TaskEvent
from ._convert import as_type

if TYPE_CHECKING:
    from .agent_client import AgentClient

__all__ = ["TaskMirror", "TrackedTask"]

log = logging.getLogger("hubbub.client")


class TrackedTask:
    """The task a :meth:`TaskMirror.track` block runs.

    ``outcome``, ``duration_ms`` and ``error`` are filled when the block ends.
    Call :meth:`fail` to report the task failed without raising out of the block.
    """

    def __init__(self, task_id: str, name: str, capabilities: list[str]) -> None:
        self.id = task_id
        self.name = name
        self.capabilities = capabilities
        self.outcome: Literal["succeeded", "failed"] | None = None
        self.duration_ms: int | None = None
        self.error: str | None = None
        self._failure: str | None = None

    def fail(self, error: str) -> None:
        """Report this task as failed with ``error`` when the block ends normally."""
        self._failure = error or "failed"

    def __repr__(self) -> str:
        return f"TrackedTask({self.name!r}, {self.id}, {self.outcome or 'running'})"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Track:
    __slots__ = ("_mirror", "_start", "_task")

    def __init__(self, mirror: TaskMirror, task: TrackedTask) -> None:
        self._mirror = mirror
        self._task = task
        self._start = 0.0

    async def __aenter__(self) -> TrackedTask:
        await self._mirror.started(self._task.id, self._task.capabilities)
        self._start = time.monotonic()
        return self._task

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = self._task
        task.duration_ms = round((time.monotonic() - self._start) * 1000)
        if exc is None and task._failure is None:
            task.outcome = "succeeded"
            await self._mirror.succeeded(task.id, duration_ms=task.duration_ms)
            return
        task.outcome = "failed"
        task.error = error = _describe(exc) if exc is not None else task._failure or "failed"
        if exc is None:
            await self._mirror.failed(task.id, error, duration_ms=task.duration_ms)
            return
        try:
            await self._mirror.failed(task.id, error, duration_ms=task.duration_ms)
        except HubbubError as report_error:
            # The block's own exception matters more than the lost report.
            log.warning("could not report task %s as failed: %s", task.id, report_error)


class TaskMirror:
    """Forward one agent's sub-task lifecycle to the hub.

    Each call is one request to the hub and raises what the hub raises:
    :class:`~hubbub.AccessDeniedError` (reason ``max_concurrent_tasks``) when
    ``started`` would exceed the agent's rule, :class:`~hubbub.NotFoundError`
    for a result of a task never started, :class:`~hubbub.UsageError` for a
    second result or an id already open.
    """

    def __init__(self, client: AgentClient) -> None:
        self._client = client
        self._started: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"TaskMirror({self._client.name!r}, open={len(self._started)})"

    def track(
        self, name: str, *, capabilities: Sequence[str] | None = None, task_id: str | None = None
    ) -> _Track:
        """An async context manager that mirrors one task; see the module docstring.

        ``capabilities`` default to ``[name]``; ``task_id`` to a fresh unique id.
        """
        if not isinstance(name, str) or not name:
            raise UsageError(f"track() needs a task name, got {name!r}")
        tags = [name] if capabilities is None else list(capabilities)
        return _Track(self, TrackedTask(task_id or f"{name}-{make_id()}", name, tags))

    async def started(self, task_id: str, capabilities: Sequence[str] = ()) -> TaskEvent:
        """Open ``task_id``, tagged with the capabilities it exercises."""
        event = await self._send(task_id, "started", capabilities=list(capabilities))
        self._started[task_id] = time.monotonic()
        return event

    async def succeeded(self, task_id: str, duration_ms: float | None = None) -> TaskEvent:
        """Finish ``task_id`` as a success. Without ``duration_ms`` the mirror's own
        measurement since :meth:`started` is sent (or the hub's, if this mirror did not start it)."""
        return await self._send(task_id, "succeeded", duration_ms=self._duration(task_id, duration_ms))

    async def failed(self, task_id: str, error: str, duration_ms: float | None = None) -> TaskEvent:
        """Finish ``task_id`` as a failure with ``error`` (a short human-readable text)."""
        return await self._send(
            task_id, "failed", duration_ms=self._duration(task_id, duration_ms), error=str(error)
        )

    def _duration(self, task_id: str, given: float | None) -> float | None:
        started = self._started.pop(task_id, None)
        if given is not None or started is None:
            return given
        return round((time.monotonic() - started) * 1000)

    async def _send(self, task_id: str, kind: str, **fields: Any) -> TaskEvent:
        params = {"agent_id": self._client.agent_id, "task_id": task_id, "kind": kind, **fields}
        result = await self._client.hub_client.request("task_event", params)
        return as_type(TaskEvent, result)  # type: ignore[no-any-return]
