"""The delegated task records of one hub: lookups, checked transitions, durable writes, waiters.

Every transition goes through :meth:`TaskRecords.move`, which checks it with
:func:`~hubbub.model.delegation.allowed` and places the new record in the
store right away (``dtask/<task_id>``, ordered with the WAL like every keyed
write). A terminal record wakes its waiters only once it is durable, and is
audited (``task_finished``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec

from ..errors import NotFoundError, UsageError
from ..model._time import iso_now
from ..model.delegation import DelegatedTask, TaskState, allowed
from ..storage.base import Store
from . import _task_rules as rules
from .snapshots import forget

__all__ = ["DTASK_PREFIX", "TaskRecords", "decode_task"]

log = logging.getLogger("hubbub.hub")

DTASK_PREFIX = "dtask/"
"""Key prefix of task records in the store's keyed state: ``dtask/<task_id>``."""

_encode = msgspec.json.Encoder().encode
decode_task = msgspec.json.Decoder(DelegatedTask).decode


class TaskRecords:
    """Task records by id (creation order), by idempotency key, and who waits for which."""

    def __init__(
        self,
        store: Store,
        audit: Callable[..., None],
        on_finished: Callable[[str], None],
    ) -> None:
        self._store = store
        self._audit = audit
        self._on_finished = on_finished
        self.tasks: dict[str, DelegatedTask] = {}
        self.by_key: dict[tuple[str, str], str] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._settling: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()

    def __getitem__(self, task_id: str) -> DelegatedTask:
        return self.tasks[task_id]

    def get(self, task_id: str) -> DelegatedTask:
        """A task by id; :class:`NotFoundError` (reason ``unknown_task``) if there is none."""
        task = self.tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            raise NotFoundError(
                f"no delegated task {task_id!r} on this hub; list them with task_list", reason="unknown_task"
            )
        return task

    def add(self, task: DelegatedTask) -> None:
        """Track a new or restored task (restored ones arrive in id order, i.e. creation order)."""
        self.tasks[task.task_id] = task
        if task.idempotency_key is not None:
            self.by_key[(task.requester_id, task.idempotency_key)] = task.task_id

    def discard(self, task: DelegatedTask) -> None:
        """Forget a task that was never written (its first attempt was refused)."""
        self.tasks.pop(task.task_id, None)
        if task.idempotency_key is not None:
            self.by_key.pop((task.requester_id, task.idempotency_key), None)

    def select(
        self,
        *,
        state: str | None = None,
        requester_id: str | None = None,
        worker_id: str | None = None,
        limit: int = 100,
    ) -> list[DelegatedTask]:
        """Tasks matching every filter given, newest first, at most ``limit``."""
        wanted = rules.check_state(state)
        limit = rules.check_limit(limit)
        found: list[DelegatedTask] = []
        for task in reversed(self.tasks.values()):
            if (
                (wanted is None or task.state == wanted)
                and (requester_id is None or task.requester_id == requester_id)
                and (worker_id is None or task.worker_id == worker_id)
            ):
                found.append(task)
                if len(found) >= limit:
                    break
        return found

    async def wait(self, task_id: str, timeout: float) -> DelegatedTask:
        """The task once it is finished and durable, or as it stands after ``timeout`` seconds."""
        timeout = rules.check_timeout(timeout)
        task = self.get(task_id)
        if (task.finished and task_id not in self._settling) or timeout == 0:
            return task
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(task_id, [])
        waiters.append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            if future in waiters:
                waiters.remove(future)
        return self.tasks[task_id]

    def check_unfinished(self, task: DelegatedTask, what: str) -> None:
        """:class:`UsageError` (reason ``task_finished``) unless ``task`` can still be ``what``."""
        if task.finished:
            raise UsageError(
                f"task {task.task_id} is already {task.state}; a finished task cannot be {what}",
                reason="task_finished",
            )

    def move(self, task_id: str, state: TaskState, **changes: Any) -> DelegatedTask:
        """Apply one transition (checked by :func:`allowed`) and place its record in the store."""
        task = self.tasks[task_id]
        if not allowed(task.state, state):
            raise UsageError(
                f"task {task_id} cannot go from {task.state} to {state}", reason="invalid_transition"
            )
        updated = msgspec.structs.replace(task, state=state, updated_at=iso_now(), **changes)
        durable = self.write(updated)
        if updated.finished:
            self._on_finished(task_id)
            self._settling.add(task_id)
            self.spawn(self._settle(updated, durable))
        else:
            forget(durable)
        return updated

    def write(self, task: DelegatedTask) -> Awaitable[None] | None:
        """Keep ``task`` as the current record and place it in the store; await the result to
        know it is durable."""
        self.tasks[task.task_id] = task
        return self._store.put_kv(DTASK_PREFIX + task.task_id, _encode(task))

    async def _settle(self, task: DelegatedTask, durable: Awaitable[None] | None) -> None:
        try:
            if durable is not None:
                await durable
        finally:
            self._settling.discard(task.task_id)
            for future in self._waiters.pop(task.task_id, []):
                if not future.done():
                    future.set_result(None)
        self.audit("task_finished", task, reason=task.state)

    def audit(self, kind: str, task: DelegatedTask, *, actor: str | None = None, reason: str = "") -> None:
        self._audit(
            kind,
            actor=actor or task.requester_id,
            agent_id=task.worker_id or task.requester_id,
            channel_id=task.channel_id,
            reason=reason,
            data={
                "task_id": task.task_id,
                "capability": task.capability,
                "state": task.state,
                "attempts": task.attempts,
                "error": task.error,
            },
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a step of some task in the background (logged if it fails, cancelled by aclose)."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a delegated task step failed", exc_info=task.exception())

    async def aclose(self) -> None:
        """Cancel every background step (the hub is closing; the records stay in the store)."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
