"""Attempts: one worker's go at a delegated task, run as a consulting channel.

:meth:`Attempts.open` opens the channel (requester → worker) with
``task_id`` and ``capability`` in its knobs and labels; :meth:`Attempts.run`
waits for the worker's ack (→ ASSIGNED) and posts the task's input as the
requester's question. The channel's observer sees each envelope as it commits
(before anything awaits): the question makes the task IN_PROGRESS, the
worker's reply finishes it, and a close before the reply ends the attempt, so
:meth:`Attempts.retry` hands the task to the next capable agent (or fails it).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from ..adapters.consulting import CONSULTING
from ..errors import HubbubError, NotFoundError, UsageError
from ..model._time import from_iso, iso_now
from ..model.delegation import DelegatedTask, TaskState
from ..model.envelope import EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED, EV_TEXT, Envelope
from ..model.task import TaskEventKind
from ..storage.base import AgentRecord
from . import _task_rules as rules
from ._task_records import TaskRecords
from .channel_record import ChannelRecord
from .registry import rank_key
from .snapshots import forget

if TYPE_CHECKING:
    from .core import Hub

__all__ = ["ASSIGNED_STATES", "CHANNEL_GRACE", "TRIED_PREFIX", "Attempt", "Attempts"]

log = logging.getLogger("hubbub.hub")

CHANNEL_GRACE = 30.0
"""A task's channel outlives its TTL by this much, so the task's own deadline closes it."""
ASSIGNED_STATES = frozenset({"ASSIGNED", "IN_PROGRESS"})
_Entry = tuple[int, tuple[float, float, str], AgentRecord]
"""A candidate worker: its load, its record's rank, its record."""


class Attempt:
    """One worker's go at a task: its channel, and when the question went out."""

    __slots__ = ("asked_at", "channel_id", "record", "task_id", "worker_id")

    def __init__(self, task_id: str, worker_id: str, record: ChannelRecord) -> None:
        self.task_id = task_id
        self.worker_id = worker_id
        self.record = record
        self.channel_id = record.id
        self.asked_at: float | None = None
        """``time.monotonic()`` when the question was committed (the worker's latency starts)."""


TRIED_PREFIX = "dtried/"
"""Keyed state ``dtried/<task_id>``: the workers an unfinished task has had (a JSON list)."""


class Attempts:
    """The live attempts of every task, the workers they occupy, and the choice of the next one."""

    def __init__(self, hub: Hub, records: TaskRecords) -> None:
        self.hub = hub
        self.records = records
        self.by_channel: dict[str, Attempt] = {}
        self.live: dict[str, Attempt] = {}  # task id -> its attempt in flight
        self._by_worker: dict[str, set[str]] = {}  # worker id -> channel ids of its live attempts
        self._tried: dict[str, set[str]] = {}
        self._ranks: dict[tuple[str, str], tuple[AgentRecord, tuple[float, float, str]]] = {}

    def load(self, agent_id: str) -> int:
        """How many tasks ``agent_id`` is invited to or working on right now."""
        return len(self._by_worker.get(agent_id, ()))

    def of_worker(self, agent_id: str) -> list[Attempt]:
        return [self.by_channel[c] for c in self._by_worker.get(agent_id, ()) if c in self.by_channel]

    def forget(self, task_id: str) -> None:
        """The task finished: nothing to remember about who was tried."""
        if self._tried.pop(task_id, None) is not None:
            forget(self.hub.store.delete_kv(TRIED_PREFIX + task_id))

    def remember(self, task_id: str, workers: list[str]) -> None:
        """The workers a task had tried before the hub restarted (from ``dtried/<task_id>``)."""
        self._tried.setdefault(task_id, set()).update(workers)

    # choosing workers

    def target(self, requester: AgentRecord, capability: str, target: Any) -> AgentRecord:
        """The agent named by ``target``, if it can take the task; else a clear error."""
        if not isinstance(target, str) or not target:
            raise UsageError(f"target must be an agent name or id, got {target!r}", reason="bad_target")
        worker = self.hub.registry.get(target)
        name, agent_id = worker.passport.name, worker.passport.agent_id
        if agent_id == requester.passport.agent_id:
            raise UsageError(
                f"{name} cannot delegate a task to itself; name another agent or leave target out",
                agent_id=agent_id,
                reason="self_delegation",
            )
        if capability not in (c.strip().lower() for c in worker.resume.claimed_capabilities):
            raise UsageError(
                f"{name} does not claim capability {capability!r} (it claims "
                f"{worker.resume.claimed_capabilities}); pick an agent that does, or leave target out",
                agent_id=agent_id,
                reason="target_lacks_capability",
            )
        if not self.hub.delivery.is_connected(agent_id or ""):
            raise NotFoundError(
                f"{name} is registered but not connected, so it cannot take the task now; "
                "connect it, or leave target out to let the hub pick",
                agent_id=agent_id,
                reason="not_connected",
            )
        return worker

    def candidates(
        self, requester: AgentRecord, capability: str, exclude: set[str], *, raise_if_none: bool = False
    ) -> Iterator[AgentRecord]:
        """Agents that could take the task now, best first: claiming ``capability``, connected,
        not the requester, not in ``exclude``, under their ``max_concurrent_tasks``, and allowed by
        the rules to talk to the requester. Best = least loaded, then the better observed record
        (success rate, then median latency), then by name.

        Lazy past the cheap checks: the rules are asked only of the agents actually tried.
        With ``raise_if_none``, :class:`NotFoundError` saying why each claimant was passed over.
        """
        rid = requester.passport.agent_id
        why: list[str] = []
        pool: list[_Entry] = []
        claimed = 0
        connected = self.hub.delivery.endpoints
        for record in self.hub.registry.holders(capability):
            agent_id, name = record.passport.agent_id or "", record.passport.name
            if agent_id == rid:
                continue
            claimed += 1
            cap = record.rule.limits.max_concurrent_tasks
            load = len(self._by_worker.get(agent_id, ()))
            if agent_id in exclude:
                why.append(f"{name} was tried already")
            elif agent_id not in connected:
                why.append(f"{name} is not connected")
            elif cap and load >= cap:
                why.append(f"{name} already runs {cap} tasks (limits.max_concurrent_tasks)")
            else:
                pool.append((load, self._rank(record, capability), record))
        found = self._allowed(requester, pool, why)
        if not raise_if_none:
            return found
        first = next(found, None)
        if first is None:
            raise rules.no_worker(capability, claimed, why)
        return itertools.chain([first], found)

    def _allowed(self, requester: AgentRecord, pool: list[_Entry], why: list[str]) -> Iterator[AgentRecord]:
        """``pool`` best first, skipping those the rules refuse (the rest is sorted only if the best
        one is refused or fails)."""
        if not pool:
            return
        best = min(pool, key=_order)
        if self._admits(requester, best[2], why):
            yield best[2]
        for entry in sorted(pool, key=_order):
            if entry is not best and self._admits(requester, entry[2], why):
                yield entry[2]

    def _admits(self, requester: AgentRecord, worker: AgentRecord, why: list[str]) -> bool:
        deny = self.hub.governance.open_denial(requester, CONSULTING, [worker])
        if deny is not None:
            why.append(f"{worker.passport.name}: {deny.reason}")
        return deny is None

    def _rank(self, record: AgentRecord, capability: str) -> tuple[float, float, str]:
        """The record part of the ranking, remembered until the agent's record changes."""
        key = (record.passport.agent_id or "", capability)
        hit = self._ranks.get(key)
        if hit is not None and hit[0] is record:
            return hit[1]
        _, rate, latency, name = rank_key(record, capability)
        if len(self._ranks) >= 100_000:
            self._ranks.clear()
        self._ranks[key] = (record, (rate, latency, name))
        return rate, latency, name

    # one attempt

    async def open(self, task: DelegatedTask, worker: AgentRecord) -> Awaitable[None] | None:
        """Open ``worker``'s channel and start the attempt; returns the task record's write."""
        tid, worker_id = task.task_id, worker.passport.agent_id or ""
        remaining = max(1.0, from_iso(task.deadline_at) - time.time())
        labels = {"task_id": tid, "capability": task.capability}
        record = await self.hub.lifecycle.open(
            task.requester_id,
            CONSULTING,
            [worker_id],
            knobs={**labels, "expectations": []},  # the task's TTL governs, not reply_within
            ttl=remaining + CHANNEL_GRACE,
            labels=labels,
            intent="delegation",
            observer=self.observe,
        )
        current = self.records.tasks.get(tid)
        if current is None or current.finished:  # cancelled or timed out while the invite went out
            await self.close(record.id, f"task_{current.state.lower() if current else 'gone'}")
            return None
        attempt = Attempt(tid, worker_id, record)
        self.adopt(attempt)
        durable = self.records.write(
            msgspec.structs.replace(
                current, attempts=current.attempts + 1, channel_id=record.id, updated_at=iso_now()
            )
        )
        self.records.spawn(self.run(attempt))
        return durable

    def adopt(self, attempt: Attempt) -> None:
        """Track a live attempt: its channel reports to :meth:`observe` from now on."""
        self.by_channel[attempt.channel_id] = attempt
        self.live[attempt.task_id] = attempt
        self._by_worker.setdefault(attempt.worker_id, set()).add(attempt.channel_id)
        tried = self._tried.setdefault(attempt.task_id, set())
        if attempt.worker_id not in tried:  # kept, so a restart does not hand the task back
            tried.add(attempt.worker_id)
            forget(self.hub.store.put_kv(TRIED_PREFIX + attempt.task_id, msgspec.json.encode(sorted(tried))))
        attempt.record.observer = self.observe

    def end(self, attempt: Attempt) -> bool:
        """Stop tracking ``attempt``; False if it had ended already (so only one caller acts on it)."""
        if self.by_channel.get(attempt.channel_id) is not attempt:
            return False
        del self.by_channel[attempt.channel_id]
        if self.live.get(attempt.task_id) is attempt:
            del self.live[attempt.task_id]
        channels = self._by_worker.get(attempt.worker_id)
        if channels is not None:
            channels.discard(attempt.channel_id)
            if not channels:
                del self._by_worker[attempt.worker_id]
        attempt.record.observer = None
        return True

    def advance(self, attempt: Attempt, to: TaskState) -> DelegatedTask:
        """Bring the task forward to ASSIGNED, or to IN_PROGRESS through ASSIGNED, if it is behind."""
        task = self.records[attempt.task_id]
        if task.state == "PENDING":
            task = self.records.move(task.task_id, "ASSIGNED", worker_id=attempt.worker_id)
        if to == "IN_PROGRESS" and task.state == "ASSIGNED":
            task = self.records.move(task.task_id, "IN_PROGRESS")
        return task

    async def run(self, attempt: Attempt) -> None:
        """Wait for the worker's ack (→ ASSIGNED), then post the input as the question."""
        try:
            await self.hub.lifecycle.await_activation(attempt.record)
        except HubbubError as exc:  # rejected, never acked, or closed meanwhile
            if self.end(attempt):
                await self.retry(attempt, str(exc), assigned=False, close=False)
            return
        if self.by_channel.get(attempt.channel_id) is not attempt:
            return
        task = self.advance(attempt, "ASSIGNED")
        question = Envelope(
            channel_id=attempt.channel_id,
            sender_id=task.requester_id,
            event_type=EV_TEXT,
            event_data={
                "text": rules.input_text(task.input),
                "input": task.input,
                "task_id": task.task_id,
                "capability": task.capability,
            },
            task_id=task.task_id,
            priority=rules.envelope_priority(task.priority),
        )
        try:
            await self.hub.channels.post(question, task.requester_id)
        except HubbubError as exc:
            if self.end(attempt):
                self.records.move(
                    task.task_id, "FAILED", error=f"the hub could not post the task's input: {exc}"
                )
                await self.close(attempt.channel_id, "task_failed")

    def observe(self, record: ChannelRecord, envelope: Envelope) -> None:
        """A task channel's envelope as it commits: the question, the reply, or an early close."""
        attempt = self.by_channel.get(record.id)
        if attempt is None:
            return
        event_type = envelope.event_type
        try:
            if event_type == EV_TEXT:
                if envelope.sender_id == self.records[attempt.task_id].requester_id:
                    attempt.asked_at = time.monotonic()
                    self.advance(attempt, "IN_PROGRESS")
                elif envelope.sender_id == attempt.worker_id:
                    self.finish(attempt, envelope)
            elif event_type in (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED):
                reason = envelope.event_data.get("reason") or "closed"
                assigned = self.records[attempt.task_id].state in ASSIGNED_STATES
                if self.end(attempt):
                    why = self.why_closed(attempt, str(reason))
                    self.records.spawn(self.retry(attempt, why, assigned=assigned, close=False))
        except Exception:  # never break the post path
            log.exception("task %s could not follow envelope %s", attempt.task_id, envelope.envelope_id)

    def why_closed(self, attempt: Attempt, reason: str) -> str:
        """Why an attempt's channel closed before the reply, in words for the task's error."""
        name = self.hub.registry.name_of(attempt.worker_id)
        if reason == "invite_rejected":
            return f"{name} rejected the invite"
        if reason == "invite_timeout":
            return f"{name} did not ack the invite within {self.hub.lifecycle.invite_ack_timeout:g}s"
        return f"its channel {attempt.channel_id} closed ({reason}) before {name} replied"

    def finish(self, attempt: Attempt, reply: Envelope) -> None:
        """The worker replied: COMPLETED with its result, or FAILED with its error."""
        self.end(attempt)
        task = self.advance(attempt, "IN_PROGRESS")
        result, error = rules.outcome_of(reply)
        took = None if attempt.asked_at is None else round((time.monotonic() - attempt.asked_at) * 1000)
        if error is None:
            self.records.move(task.task_id, "COMPLETED", result=result)
            self.fold(attempt, task, "succeeded", took)
        else:
            self.records.move(task.task_id, "FAILED", error=error)
            self.fold(attempt, task, "failed", took, error)

    async def retry(self, attempt: Attempt, why: str, *, assigned: bool, close: bool = True) -> None:
        """``attempt`` ended without a result (already :meth:`end` ed): close its channel and hand
        the task on. A worker that had accepted the task and left counts as a failure for it."""
        task = self.records[attempt.task_id]
        if task.finished:
            return
        if assigned:
            self.fold(attempt, task, "failed", None, why)
        if close:
            await self.close(attempt.channel_id, "worker_gone")
        await self.next(task.task_id, why)

    async def next(self, task_id: str, why: str) -> None:
        """Hand the task to the best capable agent not tried yet, or fail it saying why."""
        task = self.records[task_id]
        if task.finished or task_id in self.live:
            return
        if task.attempts > task.max_retries:
            tried = f"{task.attempts} agent(s) tried, max_retries={task.max_retries}"
            self.records.move(task_id, "FAILED", error=f"{why}; no retries left ({tried})")
            return
        requester = self.hub.registry.find(task.requester_id)
        if requester is None:
            self.records.move(task_id, "FAILED", error=f"{why}; its requester is no longer registered")
            return
        for worker in self.candidates(requester, task.capability, self._tried.get(task_id, set())):
            if task.state != "PENDING":
                task = self.records.move(task_id, "PENDING", worker_id=None)
            try:
                durable = await self.open(task, worker)
            except HubbubError as exc:
                log.info("task %s: opening a channel to %s failed: %s", task_id, worker.passport.name, exc)
                continue
            forget(durable)
            if not self.records[task_id].finished:
                self.records.audit("task_reassigned", self.records[task_id], reason=why[:200])
            return
        if not self.records[task_id].finished:
            unavailable = f"no other agent with capability {task.capability!r} is available"
            self.records.move(task_id, "FAILED", error=f"{why}; {unavailable}")

    async def close(self, channel_id: str, reason: str) -> None:
        """Close a task's channel (its participants get ``ag2.channel.closed`` with ``reason``)."""
        try:
            await self.hub.lifecycle.close(channel_id, reason)
        except HubbubError as exc:
            log.warning("could not close task channel %s: %s", channel_id, exc)

    def fold(
        self,
        attempt: Attempt,
        task: DelegatedTask,
        kind: TaskEventKind,
        took: int | None,
        error: str | None = None,
    ) -> None:
        """Count the attempt's outcome in the worker's ``Resume.observed`` (the task book's fold)."""
        self.records.spawn(
            self.hub.tasks.observe(attempt.worker_id, task.task_id, kind, task.capability, took, error)
        )


def _order(entry: _Entry) -> tuple[int, tuple[float, float, str]]:
    return entry[0], entry[1]
