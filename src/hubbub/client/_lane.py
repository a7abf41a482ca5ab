"""One channel's queue of deliveries for an agent, and which of them it already holds or did.

After a reconnect the hub replays everything past the agent's ack cursor,
which includes envelopes still queued here and envelopes processed but not
yet acked (acks are batched, and an ack can be lost with the connection). A
lane drops a copy of an envelope it still has queued, and marks a copy of
one it already processed so it is acked without running the handlers again.
A nacked envelope is neither, so its redelivery runs again as it should.

What it processed is remembered until an ack covers it (:meth:`Lane.acked_to`):
anything at or below the acked id the hub will never send again, so however long
the link was down, however much was processed meanwhile, no copy runs twice.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..model.envelope import Envelope

__all__ = ["Lane"]


class Lane:
    """A FIFO of deliveries for one channel, cheaper than asyncio.Queue on the hot path."""

    __slots__ = ("acked", "done", "ended", "high", "items", "queued", "waiter")

    def __init__(self) -> None:
        self.items: deque[Envelope] = deque()
        self.queued: set[str] = set()
        self.done: set[str] = set()
        """Processed, not yet covered by a successful ack."""
        self.acked = ""
        """The highest envelope id an ack the hub took covers."""
        self.high: Envelope | None = None
        """The processed envelope with the highest id: what the next ack acks."""
        self.ended = False
        """The channel's closing envelope was processed."""
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
        envelope_id = envelope.envelope_id
        return envelope_id <= self.acked or envelope_id in self.done

    def mark_done(self, envelope: Envelope) -> None:
        self.done.add(envelope.envelope_id)
        if self.high is None or envelope.envelope_id > self.high.envelope_id:
            self.high = envelope

    @property
    def owes_ack(self) -> bool:
        """Something processed is not covered by an ack the hub took yet."""
        return self.high is not None and self.high.envelope_id > self.acked

    def acked_to(self, envelope_id: str) -> None:
        """The hub took an ack of ``envelope_id`` (cumulative): forget what it covers."""
        if envelope_id > self.acked:
            self.acked = envelope_id
            self.done = {done for done in self.done if done > envelope_id}

    async def wait(self) -> None:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
