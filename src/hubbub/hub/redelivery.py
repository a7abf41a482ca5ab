"""Nacked deliveries come back: redelivery with exponential backoff, then a dead letter.

A ``nack`` receipt schedules the same envelope to the same recipient again, on
whatever endpoint it is bound to when the deadline fires, after
``initial * 2**(n-1)`` seconds (capped) for its ``n``-th nack. The
``max_attempts``-th nack stops it: the envelope is dead-lettered (an audit
record of kind ``dead_letter``, ``on_dispatch_failed`` for listeners) and is
never replayed to that recipient again. An ack of that envelope, or of a later
one in the channel (acks are cumulative), cancels what is pending. Attempt
counts live in memory only: a restarted hub starts counting afresh, and its
replay on re-attach delivers the envelope again anyway.
"""

from __future__ import annotations

import time

from ..errors import UsageError
from ..storage.base import Store
from .deadlines import Deadlines
from .delivery import Delivery
from .dispatch import Dispatcher
from .governance import Governance
from .listeners import Listeners

__all__ = ["NACK_BACKOFF", "MAX_DELIVERY_ATTEMPTS", "Redelivery"]

NACK_BACKOFF = (0.5, 30.0)
"""Seconds before the first redelivery, and the most any later one waits."""
MAX_DELIVERY_ATTEMPTS = 5
"""Nacks of one envelope by one recipient before it is dead-lettered."""


class Redelivery:
    """Attempt counters per (agent, envelope) and their redelivery deadlines."""

    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        dispatcher: Dispatcher,
        deadlines: Deadlines,
        governance: Governance,
        listeners: Listeners,
        *,
        backoff: tuple[float, float] = NACK_BACKOFF,
        max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    ) -> None:
        initial, cap = backoff
        if not 0 < initial <= cap:
            raise UsageError(f"nack_backoff must be (initial, max) with 0 < initial <= max, got {backoff!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise UsageError(f"max_delivery_attempts must be an int of 1 or more, got {max_attempts!r}")
        self._store = store
        self._delivery = delivery
        self._dispatcher = dispatcher
        self._deadlines = deadlines
        self._governance = governance
        self._listeners = listeners
        self.initial, self.cap = float(initial), float(cap)
        self.max_attempts = max_attempts
        self.attempts: dict[tuple[str, str], int] = {}
        """Nacks so far per (agent_id, envelope_id), until an ack or the dead letter."""
        self._nacked: dict[tuple[str, str], set[str]] = {}
        """(agent_id, channel_id) → envelope ids with a counter, so an ack finds them."""

    def __len__(self) -> int:
        return len(self.attempts)

    def scheduled(self, agent_id: str, envelope_id: str) -> bool:
        """Whether a redelivery of ``envelope_id`` to ``agent_id`` is still to come."""
        return _deadline(agent_id, envelope_id) in self._deadlines

    def delay(self, attempt: int) -> float:
        """Seconds before redelivery after the ``attempt``-th nack."""
        return min(self.cap, self.initial * 2.0 ** min(attempt - 1, 64))

    def nack(self, agent_id: str, channel_id: str, envelope_id: str, reason: str) -> None:
        """Count a nack; schedule the redelivery, or dead-letter the envelope at the limit."""
        key = (agent_id, envelope_id)
        attempt = self.attempts.get(key, 0) + 1
        if attempt >= self.max_attempts:
            self._forget(agent_id, channel_id, envelope_id)
            self._dead_letter(agent_id, channel_id, envelope_id, reason, attempt)
            return
        self.attempts[key] = attempt
        self._nacked.setdefault((agent_id, channel_id), set()).add(envelope_id)

        async def redeliver() -> None:
            await self._redeliver(agent_id, channel_id, envelope_id)

        self._deadlines.at(_deadline(*key), time.time() + self.delay(attempt), redeliver)

    def acked(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        """``agent_id`` acked up to ``envelope_id`` in ``channel_id``: nothing up to it comes back."""
        nacked = self._nacked.get((agent_id, channel_id))
        if not nacked:
            return
        for done in [e for e in nacked if e <= envelope_id]:
            self._forget(agent_id, channel_id, done)

    def _forget(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        self.attempts.pop((agent_id, envelope_id), None)
        self._deadlines.cancel(_deadline(agent_id, envelope_id))
        nacked = self._nacked.get((agent_id, channel_id))
        if nacked is not None:
            nacked.discard(envelope_id)
            if not nacked:
                del self._nacked[(agent_id, channel_id)]

    async def _redeliver(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        if (agent_id, envelope_id) not in self.attempts:
            return
        cursor = self._delivery.cursor(agent_id, channel_id)
        if cursor is not None and cursor >= envelope_id:
            self._forget(agent_id, channel_id, envelope_id)
            return
        envelope = await self._store.get_envelope(channel_id, envelope_id)
        if envelope is None or not self._dispatcher.replayable(envelope, agent_id):
            self._forget(agent_id, channel_id, envelope_id)
            return
        # Disconnected now: the counter stays and the replay on re-attach delivers it.
        endpoint = self._delivery.endpoint_of(agent_id)
        if endpoint is not None and (agent_id, envelope_id) in self.attempts:
            holding = self._delivery.holdings.get(agent_id)
            if holding is None or not holding.take(envelope):  # a replay running: in its order
                endpoint.deliver(envelope, agent_id)

    def _dead_letter(
        self, agent_id: str, channel_id: str, envelope_id: str, reason: str, attempts: int
    ) -> None:
        self._governance.inbox.mark_dropped(agent_id, channel_id, envelope_id)
        self._governance.audit(
            "dead_letter",
            agent_id=agent_id,
            channel_id=channel_id,
            reason=reason,
            data={"envelope_id": envelope_id, "attempts": attempts},
        )
        if not self._listeners.wants("on_dispatch_failed"):
            return

        async def emit() -> None:
            envelope = await self._store.get_envelope(channel_id, envelope_id)
            if envelope is not None:
                why = f"dead-lettered after {attempts} nacks: {reason}"
                self._listeners.emit("on_dispatch_failed", envelope, agent_id, why)

        self._deadlines.at(("dead_letter", agent_id, envelope_id), 0.0, emit)


def _deadline(agent_id: str, envelope_id: str) -> tuple[str, str, str]:
    """The key of the redelivery of ``envelope_id`` to ``agent_id`` among the hub's deadlines."""
    return ("redeliver", agent_id, envelope_id)
