"""One channel's queue of deliveries for an agent, and which of them it already holds or did.

After a reconnect the hub replays everything past the agent's ack cursor,
which includes envelopes still queued here and envelopes processed but not
yet acked (acks are batched, and an ack can be lost with the connection). A
lane drops a copy of an envelope it still has queued, and marks a copy of
one it already processed so it is acked without running the handlers again.
A nacked envelope is neither, so its redelivery runs again as it should.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque

from ..model.envelope import Envelope

__all__ = ["Lane"]

DONE_MEMORY = 1024
"""Processed envelope ids a lane remembers: far more than can be unacked at once (acks
go out every 64 envelopes and whenever the lane runs dry)."""


class Lane:
    """A FIFO of deliveries for one channel, cheaper than asyncio.Queue on the hot path."""

    __slots__ = ("done", "items", "queued", "waiter")

    def __init__(self) -> None:
        self.items: deque[Envelope] = deque()
        self.queued: set[str] = set()
        self.done: OrderedDict[str, None] = OrderedDict()
        self.waiter: asyncio.Future[None] | None = None

    def push(self, envelope: Envelope) -> None:
        """Queue a delivery, unless the same envelope is already waiting in this lane."""
        if envelope.envelope_id in self.queued:
            return
        self.queued.add(envelope.envelope_id)
        self.items.append(envelope)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pop(self) -> Envelope:
        envelope = self.items.popleft()
        self.queued.discard(envelope.envelope_id)
        return envelope

    def seen(self, envelope: Envelope) -> bool:
        """Was this envelope processed already (so this is a replayed copy)?"""
        return envelope.envelope_id in self.done

    def mark_done(self, envelope: Envelope) -> None:
        self.done[envelope.envelope_id] = None
        if len(self.done) > DONE_MEMORY:
            self.done.popitem(last=False)

    async def wait(self) -> None:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
