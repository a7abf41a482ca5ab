"""Listeners observe the hub after the fact; a slow or failing one never blocks a post.

Each listener gets its own bounded queue and its own task. ``emit`` only
appends to the queues of listeners that implement the hook (an O(1) step per
interested listener); the listener's task calls the hook later. A hook that
raises is logged and counted, a full queue drops the event and counts it, and
the poster never waits for either.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["HOOKS", "HubListener", "Listeners"]

log = logging.getLogger("hubbub.hub")

HOOKS = (
    "on_envelope_posted",
    "on_envelope_rejected",
    "on_dispatch_failed",
    "on_channel_event",
    "on_agent_event",
    "on_expectation_fired",
    "on_turn_failed",
    "on_task_event",
    "on_inbox_pressure",
    "on_governance_event",
)


class HubListener:
    """Base class: override the hooks you care about (sync or async); the rest cost nothing.

    * ``on_envelope_posted(envelope)`` — an envelope is durable in its WAL.
    * ``on_envelope_rejected(envelope, sender_id, error)`` — a post was refused.
    * ``on_dispatch_failed(envelope, recipient_id, reason)`` — a delivery was skipped or nacked.
    * ``on_channel_event(kind, metadata)`` — created / opened / closed / expired.
    * ``on_agent_event(kind, passport)`` — registered / unregistered / connected / disconnected.
    * ``on_expectation_fired(violation)`` — an expectation was violated (see expectations).
    * ``on_turn_failed(channel_id, agent_id, envelope_id, error)`` — an agent's turn raised.
    * ``on_task_event(event)`` — a mirrored task started, succeeded or failed.
    * ``on_inbox_pressure(agent_id, pending, max_pending)`` — an inbox crossed its high-water mark.
    * ``on_governance_event(record)`` — an audit-worthy event (an :class:`AuditRecord`).
    """

    max_queue: int = 10_000
    """Events waiting for this listener beyond which new ones are dropped (and counted)."""


class _Slot:
    __slots__ = (
        "busy",
        "dropped",
        "failed",
        "hooks",
        "limit",
        "listener",
        "methods",
        "queue",
        "task",
        "waiter",
    )

    def __init__(self, listener: object) -> None:
        self.listener = listener
        self.hooks = frozenset(h for h in HOOKS if _implements(listener, h))
        self.limit: int = getattr(listener, "max_queue", HubListener.max_queue)
        self.methods: dict[str, Callable[..., Any]] = {h: getattr(listener, h) for h in self.hooks}
        self.queue: deque[tuple[Any, ...]] = deque()
        """Pending calls, each ``(bound hook, *args)``."""
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.failed = 0
        self.busy = False


def _implements(listener: object, hook: str) -> bool:
    method = getattr(type(listener), hook, None)
    return method is not None and method is not getattr(HubListener, hook, None)


class Listeners:
    """The hub's listeners and the fan-out to them."""

    def __init__(self) -> None:
        self._slots: list[_Slot] = []
        self._by_hook: dict[str, list[_Slot]] = {h: [] for h in HOOKS}

    def add(self, listener: object) -> None:
        """Start calling ``listener``'s hooks."""
        slot = _Slot(listener)
        self._slots.append(slot)
        for hook in slot.hooks:
            self._by_hook[hook].append(slot)

    def remove(self, listener: object) -> None:
        for slot in [s for s in self._slots if s.listener is listener]:
            self._slots.remove(slot)
            for hook in slot.hooks:
                self._by_hook[hook].remove(slot)
            if slot.task is not None:
                slot.task.cancel()

    def wants(self, hook: str) -> bool:
        """Whether any listener implements ``hook`` (skip building its arguments otherwise)."""
        return bool(self._by_hook[hook])

    def emit(self, hook: str, *args: Any) -> None:
        """Queue ``hook(*args)`` for every listener that implements it; never blocks."""
        for slot in self._by_hook[hook]:
            queue = slot.queue
            if len(queue) >= slot.limit:
                slot.dropped += 1
                continue
            queue.append((slot.methods[hook], args))
            waiter = slot.waiter
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(None)
            elif slot.task is None:
                slot.task = asyncio.ensure_future(self._drain(slot))

    async def _drain(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while slot.queue:
                # Take the whole backlog at once: emit appends to a fresh deque meanwhile.
                batch, slot.queue = slot.queue, deque()
                slot.busy = True
                for method, args in batch:
                    try:
                        result = method(*args)
                        if result is not None and inspect.isawaitable(result):
                            await result
                    except Exception:
                        slot.failed += 1
                        log.exception("listener %r failed in %s", slot.listener, method.__name__)
                slot.busy = False
            slot.waiter = loop.create_future()
            try:
                await slot.waiter
            finally:
                slot.waiter = None

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued event has been handed to its listener (for tests and shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Polling is fine here: flush runs at shutdown and in tests, never on the post path.
        while any(s.queue or s.busy for s in self._slots) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)

    def stats(self) -> list[dict[str, Any]]:
        """Per listener: queued, dropped and failed counts."""
        return [
            {"listener": repr(s.listener), "queued": len(s.queue), "dropped": s.dropped, "failed": s.failed}
            for s in self._slots
        ]

    async def aclose(self) -> None:
        await self.flush(1.0)
        tasks = [s.task for s in self._slots if s.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
