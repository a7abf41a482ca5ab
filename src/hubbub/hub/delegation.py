"""Delegated tasks: the hub finds a worker, runs the exchange as a consulting channel, keeps the record.

One attempt = one ``consulting`` channel the hub opens on the requester's
behalf (see ``_attempts``): the worker's invite ack makes the task ASSIGNED,
the input posted as the requester's question makes it IN_PROGRESS, and the
worker's reply finishes it (COMPLETED with ``event_data["result"]`` or the
reply's text; FAILED with ``event_data["error"]``). So any agent that answers
a consulting question can be a worker, and every exchange is in a WAL.

A worker that goes away before replying (unregistered, or disconnected and
not back within :attr:`Delegations.reassign_grace`), rejects the invite, never
acks it or closes the channel hands the task back (PENDING) to the next
capable agent, until ``max_retries`` more agents were tried; then it FAILED.
The grace keeps a reconnecting link or a restarting hub (which closes its
connections before it stops) from moving work that is about to come back.
A worker whose turn fails (a nack) fails the task. The TTL is a deadline on
the timer heap; at it the task is TIMEOUT and its channel closed
(``task_timeout``), which tells the requester; cancel closes it too
(``task_cancelled``). A reply posted after that is refused by the closed
channel and audited (``task_result_refused``): nothing is overwritten.
Outcomes feed the worker's ``Resume.observed`` through the task book. A hub
restarted on the same store resumes every unfinished task (``_task_restore``).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from ..errors import AccessDeniedError, HubbubError
from ..model._time import from_iso, to_iso
from ..model.delegation import DelegatedTask
from ..model.envelope import EV_TEXT, Envelope
from ..model.ids import make_id
from ..storage.base import AgentRecord
from . import _task_rules as rules
from ._attempts import ASSIGNED_STATES, Attempt, Attempts
from ._task_records import TaskRecords
from ._task_restore import restore
from .listeners import HubListener

if TYPE_CHECKING:
    from ..model.identity import Passport
    from .core import Hub

__all__ = ["Delegations"]


class Delegations(HubListener):
    """Every delegated task of one hub: create, cancel, wait, and follow what happens outside the
    task's channel (a worker leaving, a turn failing, a late result refused)."""

    max_queue = 1_000_000
    """Disconnects and turn failures must not be dropped under a burst (see :class:`HubListener`)."""
    reassign_grace = 5.0
    """Seconds a disconnected worker has to come back (a reconnecting link, a restarting hub)
    before its tasks move on to another agent."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.records = TaskRecords(hub.store, hub.governance.audit, self._finished)
        self.attempts = Attempts(hub, self.records)
        self._closed = False

    # reads

    def get(self, task_id: str) -> DelegatedTask:
        return self.records.get(task_id)

    def select(
        self,
        *,
        state: str | None = None,
        requester_id: str | None = None,
        worker_id: str | None = None,
        limit: int = 100,
    ) -> list[DelegatedTask]:
        return self.records.select(state=state, requester_id=requester_id, worker_id=worker_id, limit=limit)

    async def wait(self, task_id: str, timeout: float) -> DelegatedTask:
        return await self.records.wait(task_id, timeout)

    # delegate and cancel

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
        """Create a task and invite its first worker; returns the durable PENDING record.

        Every check runs before anything is written. A repeated ``idempotency_key``
        from the same requester returns the first task and changes nothing.
        """
        requester = self.hub.registry.get(requester_id)
        rid = requester.passport.agent_id or requester_id
        capability = rules.check_capability(capability)
        ttl = rules.check_ttl(ttl)
        priority = rules.check_priority(priority)
        max_retries = rules.check_retries(max_retries)
        key = rules.check_key(idempotency_key)
        rules.check_input(input)
        if key is not None and (earlier := self.records.by_key.get((rid, key))) is not None:
            return self.records[earlier]
        if target is not None:
            workers = [self.attempts.target(requester, capability, target)]
        else:
            workers = self.attempts.candidates(requester, capability, set(), raise_if_none=True)
        now = time.time()
        task = DelegatedTask(
            task_id=make_id(),
            capability=capability,
            requester_id=rid,
            worker_id=None,
            state="PENDING",
            input=input,
            priority=priority,
            ttl=ttl,
            max_retries=max_retries,
            idempotency_key=key,
            created_at=to_iso(now),
            updated_at=to_iso(now),
            deadline_at=to_iso(now + ttl),
        )
        self.records.add(task)
        try:
            durable = await self._first_attempt(task, workers, pinned=target is not None)
        except BaseException:
            self.records.discard(task)
            raise
        current = self.records[task.task_id]
        if not current.finished:  # it may have been cancelled while the invite went out
            self.arm(current)
        if durable is not None:
            await durable
        self.records.audit("task_delegated", current, actor=rid)
        return self.records[task.task_id]

    async def _first_attempt(self, task: DelegatedTask, workers: list[AgentRecord], *, pinned: bool) -> Any:
        last: HubbubError | None = None
        for worker in workers:
            try:
                return await self.attempts.open(task, worker)
            except AccessDeniedError as exc:  # an arbiter refused this one; another may do
                if pinned:
                    raise
                last = exc
        assert last is not None
        raise last

    async def cancel(self, task_id: str, *, by: str | None = None) -> DelegatedTask:
        """Cancel an unfinished task; ``by`` (who asks) must be its requester (None: the hub itself)."""
        task = self.records.get(task_id)
        actor = None
        if by is not None:
            actor = self.hub.registry.get(by).passport.agent_id
            if actor != task.requester_id:
                registry = self.hub.registry
                raise AccessDeniedError(
                    f"only the requester {registry.name_of(task.requester_id)} may cancel task {task_id}, "
                    f"not {registry.name_of(actor or by)}",
                    agent_id=actor,
                    reason="not_requester",
                )
        self.records.check_unfinished(task, "cancelled")
        attempt = self.attempts.live.get(task_id)
        if attempt is not None:
            self.attempts.end(attempt)
        who = self.hub.registry.name_of(actor) if actor else "the hub"
        done = self.records.move(task_id, "CANCELLED", error=f"cancelled by {who}")
        if attempt is not None:
            await self.attempts.close(attempt.channel_id, "task_cancelled")
        return done

    # the TTL

    def arm(self, task: DelegatedTask) -> None:
        """Schedule the task's TTL at ``deadline_at`` (a restart re-arms it the same way)."""
        self.hub._deadlines.at(
            ("dtask", task.task_id), from_iso(task.deadline_at), lambda: self.expire(task.task_id)
        )

    async def expire(self, task_id: str) -> None:
        """The TTL passed with no result: TIMEOUT, and the channel closes (``task_timeout``)."""
        task = self.records.tasks.get(task_id)
        if task is None or task.finished:
            return
        attempt = self.attempts.live.get(task_id)
        if attempt is not None:
            self.attempts.end(attempt)
        done = self.records.move(task_id, "TIMEOUT", error=f"no result within its ttl of {task.ttl:g}s")
        if attempt is not None:
            if task.state in ASSIGNED_STATES:
                self.attempts.fold(attempt, task, "expired", None, done.error)
            await self.attempts.close(attempt.channel_id, "task_timeout")

    def _finished(self, task_id: str) -> None:
        self.hub._deadlines.cancel(("dtask", task_id))
        self.attempts.forget(task_id)

    # start and stop

    async def restore(self) -> None:
        """Load every task record and resume the unfinished ones (see ``_task_restore``)."""
        await restore(self)

    async def aclose(self) -> None:
        """The hub is closing: from now on nothing moves (disconnects included); records stay."""
        self._closed = True
        await self.records.aclose()

    # listener hooks: what happens outside a task's channel

    async def on_agent_event(self, kind: str, passport: Passport) -> None:
        if self._closed or kind not in ("disconnected", "unregistered") or passport.agent_id is None:
            return
        for attempt in self.attempts.of_worker(passport.agent_id):
            if kind == "unregistered":
                await self._gone(attempt, f"worker {passport.name} unregistered before it replied")
            else:
                why = f"worker {passport.name} disconnected before it replied"
                self.hub._deadlines.at(
                    ("dtask-gone", attempt.channel_id),
                    time.time() + self.reassign_grace,
                    functools.partial(self._gone, attempt, why),
                )

    async def _gone(self, attempt: Attempt, why: str) -> None:
        """The worker left; unless it is back (connected, still registered), move the task on."""
        worker = attempt.worker_id
        if self._closed or (self.hub.delivery.is_connected(worker) and self.hub.registry.find(worker)):
            return
        assigned = self.records[attempt.task_id].state in ASSIGNED_STATES
        if self.attempts.end(attempt):
            await self.attempts.retry(attempt, why, assigned=assigned)

    async def on_turn_failed(self, channel_id: str, agent_id: str, envelope_id: str, error: str) -> None:
        attempt = self.attempts.by_channel.get(channel_id)
        if attempt is None or attempt.worker_id != agent_id or not self.attempts.end(attempt):
            return
        task = self.attempts.advance(attempt, "IN_PROGRESS")
        why = f"{self.hub.registry.name_of(agent_id)}'s turn failed: {error or 'no reason given'}"
        self.records.move(task.task_id, "FAILED", error=why)
        self.attempts.fold(attempt, task, "failed", None, why)
        await self.attempts.close(channel_id, "task_failed")

    async def on_envelope_rejected(self, envelope: Envelope, sender_id: str, error: HubbubError) -> None:
        task = self.records.tasks.get(envelope.task_id or "")
        if task is None or envelope.event_type != EV_TEXT or sender_id == task.requester_id:
            return
        self.hub.governance.audit(
            "task_result_refused",
            actor=sender_id,
            agent_id=sender_id,
            channel_id=envelope.channel_id,
            reason=error.reason or error.code,
            data={"task_id": task.task_id, "state": task.state, "error": str(error)[:500]},
        )
