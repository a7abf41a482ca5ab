"""Resuming delegated tasks after a restart on the same store.

Runs after the channels are restored (``hub/recovery.py``). Every stored
record (``dtask/<task_id>``) is loaded as it was written; each unfinished
task is picked up again from its channel, whose WAL says how far it got:

* the worker's reply is in the WAL: the task finishes from it (the crash came
  between the reply and the task's own record);
* the question is there but no reply: IN_PROGRESS, waiting for the reply;
* the channel is still pending or active without the question: the attempt
  runs on (waits for the ack, then asks);
* the channel closed without a reply: the task moves on to the next worker
  (or fails, as it would have live); so does a task whose channel closed and
  was retired (it left memory) while the task was being handed on.

TTLs are re-armed from ``deadline_at``; a task past it times out at once. A
worker is not presumed gone because it has not reconnected yet: only its TTL
bounds how long the task waits for it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import msgspec

from ..errors import NotFoundError
from ..model._time import from_iso
from ..model.delegation import DelegatedTask
from ..model.envelope import EV_TEXT
from ..model.ids import id_time_ns
from ._attempts import ASSIGNED_STATES, TRIED_PREFIX, Attempt
from ._task_records import DTASK_PREFIX, decode_task
from .snapshots import forget

if TYPE_CHECKING:
    from .delegation import Delegations

__all__ = ["restore"]

log = logging.getLogger("hubbub.hub")


async def restore(delegations: Delegations) -> None:
    """Load every task record; resume the unfinished ones."""
    store = delegations.hub.store
    for key, data in (await store.scan_kv(DTASK_PREFIX)).items():
        try:
            delegations.records.add(decode_task(data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("task record %s is unreadable and stays as it is: %s", key, exc)
    for key, data in (await store.scan_kv(TRIED_PREFIX)).items():
        task = delegations.records.tasks.get(key[len(TRIED_PREFIX) :])
        try:
            workers = msgspec.json.decode(data, type=list[str])
        except (msgspec.DecodeError, msgspec.ValidationError):
            workers = None
        if task is None or task.finished or workers is None:
            forget(store.delete_kv(key))
        else:
            delegations.attempts.remember(task.task_id, workers)
    for task in [t for t in delegations.records.tasks.values() if not t.finished]:
        try:
            await _resume(delegations, task)
        except Exception:
            log.exception("task %s could not be resumed", task.task_id)


async def _resume(delegations: Delegations, task: DelegatedTask) -> None:
    hub, records, attempts = delegations.hub, delegations.records, delegations.attempts
    tid = task.task_id
    try:
        record = hub.channels.get(task.channel_id or "")
    except NotFoundError:
        try:
            await hub.fetch_channel(task.channel_id or "")
        except NotFoundError:
            records.move(tid, "FAILED", error="its channel was lost when the hub restarted")
            return
        # Closed, acked by everyone and retired while the task was being handed on (its record
        # names the old channel until the next one opens): hand it on again.
        if await _rearmed(delegations, task):
            await attempts.next(tid, "its channel had closed when the hub restarted")
        return
    worker_id = next((p for p in record.participants if p != task.requester_id), "")
    attempt = Attempt(tid, worker_id, record)
    wal = await hub.store.read_wal(record.id)
    texts = [e for e in wal if e.event_type == EV_TEXT]
    question = next((e for e in texts if e.sender_id == task.requester_id), None)
    reply = next((e for e in texts if e.sender_id == worker_id), None)
    attempts.adopt(attempt)
    if question is not None:
        asked = id_time_ns(question.envelope_id) / 1e9
        attempt.asked_at = time.monotonic() - max(0.0, time.time() - asked)
    if reply is not None:
        attempts.finish(attempt, reply)
        return
    if not await _rearmed(delegations, task):
        return
    if record.metadata.is_terminal():
        attempts.end(attempt)
        why = attempts.why_closed(attempt, record.metadata.close_reason)
        await attempts.retry(attempt, why, assigned=task.state in ASSIGNED_STATES, close=False)
    elif question is None:
        records.spawn(attempts.run(attempt))
    else:
        attempts.advance(attempt, "IN_PROGRESS")


async def _rearmed(delegations: Delegations, task: DelegatedTask) -> bool:
    """Re-arm the task's TTL; False if it passed while the hub was down (the task timed out)."""
    if from_iso(task.deadline_at) <= time.time():
        await delegations.expire(task.task_id)
        return False
    delegations.arm(task)
    return True
