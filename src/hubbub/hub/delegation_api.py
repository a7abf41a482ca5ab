"""The :class:`~hubbub.hub.core.Hub` methods for delegated tasks and broadcast: thin calls into
``hub/delegation.py`` and ``hub/broadcast.py`` (kept here so the facade stays small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..model.delegation import DelegatedTask

if TYPE_CHECKING:
    from .broadcast import Broadcasts
    from .delegation import Delegations

__all__ = ["DelegationApi"]


class DelegationApi:
    """Mixed into :class:`~hubbub.hub.core.Hub`."""

    delegations: Delegations
    broadcasts: Broadcasts

    async def delegate(
        self,
        requester_id: str,
        capability: str,
        input: Any,
        *,
        target: str | None = None,
        ttl: float = 60.0,
        priority: int = 0,
        idempotency_key: str | None = None,
        max_retries: int = 2,
    ) -> DelegatedTask:
        """Have another agent do ``capability`` on ``input``; returns the durable PENDING task.

        No ``target``: the hub picks the least loaded connected agent claiming the
        capability (then the best track record), never the requester. Follow the task
        with :meth:`wait_task`; see ``docs/tasks.md``.
        """
        return await self.delegations.delegate(
            requester_id,
            capability,
            input,
            target=target,
            ttl=ttl,
            priority=priority,
            idempotency_key=idempotency_key,
            max_retries=max_retries,
        )

    def get_task(self, task_id: str) -> DelegatedTask:
        """A delegated task's record; :class:`NotFoundError` (``unknown_task``) if there is none."""
        return self.delegations.get(task_id)

    def list_tasks(
        self,
        *,
        state: str | None = None,
        requester_id: str | None = None,
        worker_id: str | None = None,
        limit: int = 100,
    ) -> list[DelegatedTask]:
        """Delegated tasks, newest first, filtered by state, requester and worker."""
        return self.delegations.select(
            state=state, requester_id=requester_id, worker_id=worker_id, limit=limit
        )

    async def cancel_task(self, task_id: str, *, by: str | None = None) -> DelegatedTask:
        """Cancel an unfinished task (``by``: its requester; None: the hub); a finished one is an error."""
        return await self.delegations.cancel(task_id, by=by)

    async def wait_task(self, task_id: str, timeout: float) -> DelegatedTask:
        """The task once finished (and durable), or as it stands after ``timeout`` seconds."""
        return await self.delegations.wait(task_id, timeout)

    async def broadcast(self, sender_id: str, text: str, *, capability: str | None = None) -> int:
        """Send ``text`` to every connected agent (with ``capability``, if given); returns how many."""
        return await self.broadcasts.send(sender_id, text, capability=capability)
