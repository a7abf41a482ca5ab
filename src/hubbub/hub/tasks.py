"""Mirrored tasks: open sub-tasks per agent, and the track record folded from their outcomes.

An agent reports ``started``, then ``succeeded`` or ``failed``, for each
sub-task it runs (see :class:`~hubbub.client.TaskMirror`). The book enforces
``rule.limits.max_concurrent_tasks`` on ``started``, refuses events that do
not follow from the task's state, and expires a task still open at
``rule.limits.task_ttl_default`` (a deadline on the timer heap, no scans).

Each finished task updates the agent's ``Resume.observed[tag]`` for every
capability tag: ``n`` and ``completed`` / ``failed`` / ``expired`` count
outcomes, and ``p50_latency_ms`` is the nearest-rank median (the lower middle
value) of the durations of the last :data:`LATENCY_WINDOW` *successful* tasks
with that tag. Failures do not enter the latency: a task that fails at once or
times out says nothing about how fast the agent does the work. The latency
windows live in memory; after a restart the stored ``p50_latency_ms`` stands
until the next success with that tag starts a new window.

``observed`` belongs to the hub: only task outcomes change it (``Hub.set_resume``
keeps it; ``Hub.register`` starts every agent without one).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from statistics import median_low
from typing import Any

import msgspec

from ..errors import AccessDeniedError, NotFoundError, UsageError
from ..model._time import iso_now
from ..model.identity import ObservedStat
from ..model.rule import parse_duration
from ..model.task import TASK_EVENT_KINDS, TaskEvent, TaskEventKind
from ..storage.base import Store
from .deadlines import Deadlines
from .listeners import Listeners
from .registry import Registry
from .snapshots import forget

__all__ = ["LATENCY_WINDOW", "MAX_TAGS", "TASK_PREFIX", "OpenTask", "TaskBook"]

LATENCY_WINDOW = 100
"""Successful durations per (agent, capability) the p50 is taken over."""
MAX_TAGS = 16
"""Capability tags one task may carry."""
_MAX_TAG_LEN = 128
_MAX_TASK_ID_LEN = 200
_MAX_ERROR_LEN = 2000
_FINISHED_MEMORY = 1000
"""Finished task ids remembered per agent, so a late or repeated result gets a precise error."""


class OpenTask(msgspec.Struct, kw_only=True, frozen=True):
    """An open mirrored task as the store keeps it (``task/<agent_id>/<task_id>``), so a restart
    resumes it and its TTL."""

    agent_id: str
    task_id: str
    capabilities: list[str]
    started_at: float
    """POSIX time of ``started``."""
    ttl: float = 0.0
    """Seconds from ``started_at`` to expiry; 0 = none."""


TASK_PREFIX = "task/"
_encode_task = msgspec.msgpack.Encoder().encode
_decode_task = msgspec.msgpack.Decoder(OpenTask).decode


class _OpenTask:
    __slots__ = ("capabilities", "started")

    def __init__(self, capabilities: list[str], started: float | None = None) -> None:
        self.capabilities = capabilities
        self.started = time.monotonic() if started is None else started


def _tags(capabilities: Sequence[str] | None) -> list[str]:
    if capabilities is None:
        return []
    if isinstance(capabilities, str) or not all(isinstance(c, str) for c in capabilities):
        raise UsageError(f"task capabilities must be a list of strings, got {capabilities!r}")
    tags: list[str] = []
    for raw in capabilities:
        tag = raw.strip().lower()
        if not tag or len(tag) > _MAX_TAG_LEN:
            raise UsageError(f"task capability tags must be 1 to {_MAX_TAG_LEN} characters, got {raw!r}")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise UsageError(f"a task may carry at most {MAX_TAGS} capability tags, got {len(tags)}")
    return tags


def _key(agent_id: str, task_id: str) -> str:
    return f"{TASK_PREFIX}{agent_id}/{task_id}"


def _duration(value: float | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        raise UsageError(f"duration_ms must be a number of milliseconds, 0 or more, got {value!r}")
    return round(value)


class TaskBook:
    """Open tasks per agent, the transitions they may take, and the track record they feed."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        listeners: Listeners,
        deadlines: Deadlines,
        audit: Callable[..., None] | None = None,
    ) -> None:
        self._registry = registry
        self._store = store
        self._listeners = listeners
        self._deadlines = deadlines
        self._audit: Callable[..., Any] = audit or (lambda kind, **fields: None)
        self._open: dict[str, dict[str, _OpenTask]] = {}
        self._finished: dict[str, OrderedDict[str, str]] = {}
        self._latencies: dict[str, dict[str, deque[int]]] = {}

    def open_tasks(self, agent_id: str) -> list[str]:
        """Ids of ``agent_id``'s open tasks, oldest first."""
        return list(self._open.get(agent_id, ()))

    def __len__(self) -> int:
        return sum(len(tasks) for tasks in self._open.values())

    async def record(
        self,
        agent_id: str,
        task_id: str,
        kind: str,
        *,
        capabilities: Sequence[str] | None = None,
        duration_ms: float | None = None,
        error: str | None = None,
    ) -> TaskEvent:
        """Apply one event from ``agent_id`` and return it as accepted.

        ``started`` opens the task (:class:`AccessDeniedError` with reason
        ``max_concurrent_tasks`` over the cap; :class:`UsageError` if the id
        is already open). ``succeeded`` / ``failed`` finish it and update the
        track record (:class:`NotFoundError` for a task never started,
        :class:`UsageError` for one already finished).
        """
        record = self._registry.get(agent_id)
        agent_id = record.passport.agent_id or agent_id
        if not isinstance(task_id, str) or not task_id or len(task_id) > _MAX_TASK_ID_LEN:
            raise UsageError(
                f"task_id must be a string of 1 to {_MAX_TASK_ID_LEN} characters, got {task_id!r}"
            )
        if kind not in TASK_EVENT_KINDS or kind == "expired":
            raise UsageError(
                f"task event kind must be 'started', 'succeeded' or 'failed', got {kind!r} "
                "('expired' is decided by the hub)"
            )
        tags = _tags(capabilities)
        duration = _duration(duration_ms)
        if error is not None and not isinstance(error, str):
            raise UsageError(f"task error must be a string, got {error!r}")
        if kind == "started":
            event, durable = self._start(agent_id, task_id, tags)
            if durable is not None:
                await durable
            return event
        if kind == "succeeded":
            return await self._finish(agent_id, task_id, "succeeded", tags, duration, None)
        text = (error or "failed without an error message")[:_MAX_ERROR_LEN]
        return await self._finish(agent_id, task_id, "failed", tags, duration, text)

    def _start(
        self, agent_id: str, task_id: str, tags: list[str]
    ) -> tuple[TaskEvent, Awaitable[None] | None]:
        name = self._registry.name_of(agent_id)
        tasks = self._open.setdefault(agent_id, {})
        if task_id in tasks:
            raise UsageError(
                f"{name} already has an open task {task_id!r}; finish it first or use a new task id",
                agent_id=agent_id,
                reason="task_id_in_use",
            )
        rule = self._registry.get(agent_id).rule
        cap = rule.limits.max_concurrent_tasks
        if cap and len(tasks) >= cap:
            self._audit(
                "task_denied",
                actor=agent_id,
                agent_id=agent_id,
                reason="max_concurrent_tasks",
                data={"task_id": task_id, "open": len(tasks), "max_concurrent_tasks": cap},
            )
            raise AccessDeniedError(
                f"{name} already runs {len(tasks)} tasks, the most its rule allows "
                f"(limits.max_concurrent_tasks={cap}); finish one before starting {task_id!r}",
                agent_id=agent_id,
                reason="max_concurrent_tasks",
            )
        finished = self._finished.get(agent_id)
        if finished is not None:
            finished.pop(task_id, None)
        tasks[task_id] = _OpenTask(tags)
        ttl = parse_duration(rule.limits.task_ttl_default)
        now = time.time()
        self._arm(agent_id, task_id, now, ttl)
        stored = OpenTask(agent_id=agent_id, task_id=task_id, capabilities=tags, started_at=now, ttl=ttl)
        durable = self._store.put_kv(_key(agent_id, task_id), _encode_task(stored))
        event = TaskEvent(agent_id=agent_id, task_id=task_id, kind="started", capabilities=tags, at=iso_now())
        self._listeners.emit("on_task_event", event)
        return event, durable

    def _arm(self, agent_id: str, task_id: str, started_at: float, ttl: float) -> None:
        if ttl > 0:
            self._deadlines.at(
                ("task", agent_id, task_id), started_at + ttl, lambda: self._expire(agent_id, task_id, ttl)
            )

    def restore(self, data: bytes) -> bool:
        """Reopen a task stored by a previous run and re-arm its TTL; False if it is stale (its agent is
        gone or the record does not decode): the caller deletes it."""
        try:
            task = _decode_task(data)
        except msgspec.DecodeError:
            return False
        if self._registry.find(task.agent_id) is None:
            return False
        started = time.monotonic() - max(0.0, time.time() - task.started_at)
        self._open.setdefault(task.agent_id, {})[task.task_id] = _OpenTask(task.capabilities, started)
        self._arm(task.agent_id, task.task_id, task.started_at, task.ttl)
        return True

    async def _finish(
        self,
        agent_id: str,
        task_id: str,
        kind: TaskEventKind,
        tags: list[str],
        duration: int | None,
        error: str | None,
    ) -> TaskEvent:
        tasks = self._open.get(agent_id, {})
        task = tasks.pop(task_id, None)
        if task is None:
            name = self._registry.name_of(agent_id)
            finished = self._finished.get(agent_id)
            earlier = finished.get(task_id) if finished is not None else None
            if earlier is not None:
                raise UsageError(
                    f"task {task_id!r} of {name} already {earlier}; a task reports one result",
                    agent_id=agent_id,
                    reason="task_already_finished",
                )
            raise NotFoundError(
                f"{name} has no open task {task_id!r}; report 'started' before its result",
                agent_id=agent_id,
                reason="unknown_task",
            )
        self._deadlines.cancel(("task", agent_id, task_id))
        durable = self._store.delete_kv(_key(agent_id, task_id))
        if duration is None:
            duration = round((time.monotonic() - task.started) * 1000)
        all_tags = task.capabilities + [t for t in tags if t not in task.capabilities]
        event = await self._close(agent_id, task_id, kind, all_tags, duration, error)
        if durable is not None:
            await durable
        return event

    async def _expire(self, agent_id: str, task_id: str, ttl: float) -> None:
        task = self._open.get(agent_id, {}).pop(task_id, None)
        if task is None or self._registry.find(agent_id) is None:
            return
        forget(self._store.delete_kv(_key(agent_id, task_id)))
        duration = round((time.monotonic() - task.started) * 1000)
        error = f"still open after its TTL of {ttl:g}s (limits.task_ttl_default)"
        await self._close(agent_id, task_id, "expired", task.capabilities, duration, error)

    async def _close(
        self,
        agent_id: str,
        task_id: str,
        kind: TaskEventKind,
        tags: list[str],
        duration: int,
        error: str | None,
    ) -> TaskEvent:
        finished = self._finished.setdefault(agent_id, OrderedDict())
        finished[task_id] = kind
        if len(finished) > _FINISHED_MEMORY:
            finished.popitem(last=False)
        event = TaskEvent(
            agent_id=agent_id,
            task_id=task_id,
            kind=kind,
            capabilities=tags,
            duration_ms=duration,
            error=error,
            at=iso_now(),
        )
        if tags:
            await self._fold(event)
        self._listeners.emit("on_task_event", event)
        self._audit(
            "task_terminated",
            actor=agent_id,
            agent_id=agent_id,
            reason=kind,
            data={"task_id": task_id, "capabilities": tags, "duration_ms": duration, "error": error},
        )
        return event

    async def observe(
        self,
        agent_id: str,
        task_id: str,
        kind: TaskEventKind,
        capability: str,
        duration_ms: int | None,
        error: str | None = None,
    ) -> TaskEvent | None:
        """Count the outcome of a task the hub itself ran through ``agent_id`` (a delegated task)
        in its ``Resume.observed``, exactly as a mirrored task's is; listeners get ``on_task_event``.
        None when the agent is gone."""
        if self._registry.find(agent_id) is None:
            return None
        event = TaskEvent(
            agent_id=agent_id,
            task_id=task_id,
            kind=kind,
            capabilities=_tags([capability]),
            duration_ms=duration_ms,
            error=error[:_MAX_ERROR_LEN] if error is not None else None,
            at=iso_now(),
        )
        await self._fold(event)
        self._listeners.emit("on_task_event", event)
        return event

    async def _fold(self, event: TaskEvent) -> None:
        record = self._registry.get(event.agent_id)
        observed = dict(record.resume.observed)
        for tag in event.capabilities:
            stat = observed.get(tag) or ObservedStat()
            latency = stat.p50_latency_ms
            if event.kind == "succeeded" and event.duration_ms is not None:
                windows = self._latencies.setdefault(event.agent_id, {})
                window = windows.setdefault(tag, deque(maxlen=LATENCY_WINDOW))
                window.append(event.duration_ms)
                latency = median_low(window)
            observed[tag] = ObservedStat(
                n=stat.n + 1,
                completed=stat.completed + (event.kind == "succeeded"),
                failed=stat.failed + (event.kind == "failed"),
                expired=stat.expired + (event.kind == "expired"),
                p50_latency_ms=latency,
            )
        resume = msgspec.structs.replace(record.resume, observed=observed, last_updated=event.at)
        updated = msgspec.structs.replace(record, resume=resume)
        # Registry first, with no await since the read: a concurrent fold or
        # set_resume then starts from this record, not a stale one.
        self._registry.add(updated)
        await self._store.put_agent(updated)

    def forget(self, agent_id: str) -> None:
        """Drop everything about ``agent_id`` (it was unregistered)."""
        for task_id in self._open.pop(agent_id, {}):
            self._deadlines.cancel(("task", agent_id, task_id))
            forget(self._store.delete_kv(_key(agent_id, task_id)))
        self._finished.pop(agent_id, None)
        self._latencies.pop(agent_id, None)
