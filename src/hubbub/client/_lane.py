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

    __slots__ = ("acked", "done", "ended", "high", "items", "queued", "stale", "waiter")

    def __init__(self, ended: Envelope | None = None) -> None:
        """``ended``: the channel's closing envelope, processed and acked before (a lane made for
        copies of the channel a replay brings after the lane that did it ended)."""
        self.items: deque[Envelope] = deque()
        self.queued: set[str] = set()
        self.done: set[str] = set()
        """Processed, not yet covered by a successful ack."""
        self.acked = ended.envelope_id if ended is not None else ""
        """The highest envelope id an ack the hub took covers."""
        self.high: Envelope | None = ended
        """The processed envelope with the highest id: what the next ack acks."""
        self.ended = ended is not None
        """The channel's closing envelope was processed."""
        self.stale = False
        """The hub sent again something an ack covered: that ack never landed, so ack again."""
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
        envelope_id = envelope.envelope_id
        if envelope_id <= self.acked:  # a copy of what an ack covered: the hub's cursor is behind
            self.stale = True
            return
        self.done.add(envelope_id)
        if self.high is None or envelope_id > self.high.envelope_id:
            self.high = envelope

    @property
    def owes_ack(self) -> bool:
        """Something processed is not covered by an ack the hub took yet."""
        return self.high is not None and (self.stale or self.high.envelope_id > self.acked)

    def acked_to(self, envelope_id: str) -> None:
        """The hub took an ack of ``envelope_id`` (cumulative): forget what it covers."""
        if self.high is not None and envelope_id >= self.high.envelope_id:
            self.stale = False
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
