"""Getting envelopes to recipients: endpoints, per-(agent, channel) ack cursors, replay.

A recipient sees an envelope once it is durable. Each delivery goes to the
endpoint (connection) the recipient is bound to; the endpoint's ``deliver`` is
non-blocking (it owns a bounded outbox), so a slow recipient never stalls a
sender. The recipient acks per envelope; an ack advances its cursor for that
channel, and a replay sends everything past the cursor again.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ..model.envelope import Envelope

__all__ = ["Delivery", "Endpoint", "recipients_of"]

log = logging.getLogger("hubbub.hub")


class Endpoint(Protocol):
    """The hub's side of one connection; ``deliver`` must not block or raise.

    An endpoint with a bounded outbox may also offer ``async writable()``, which
    returns once it has room again; replays of long backlogs pace themselves on it.
    """

    endpoint_id: str

    def deliver(self, envelope: Envelope, recipient_id: str) -> None:
        """Queue ``envelope`` for ``recipient_id`` on this connection."""
        ...


def recipients_of(envelope: Envelope, participants: list[str]) -> list[str]:
    """Participants the envelope goes to: its audience (or everyone), never its sender."""
    sender = envelope.sender_id
    if envelope.audience is None:
        return [p for p in participants if p != sender]
    return [p for p in envelope.audience if p != sender]


class Delivery:
    """Bindings of agents to endpoints, and ack cursors."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self._cursors: dict[tuple[str, str], str] = {}

    def load_cursors(self, cursors: dict[tuple[str, str], str]) -> None:
        """Start from stored cursors."""
        self._cursors.update(cursors)

    def bind(self, agent_id: str, endpoint: Endpoint) -> None:
        """Send ``agent_id``'s deliveries to ``endpoint`` from now on."""
        self.endpoints[agent_id] = endpoint

    def unbind(self, agent_id: str, endpoint: Endpoint | None = None) -> None:
        """Stop delivering to ``agent_id`` (only if still bound to ``endpoint``, when given)."""
        if endpoint is None or self.endpoints.get(agent_id) is endpoint:
            self.endpoints.pop(agent_id, None)

    def endpoint_of(self, agent_id: str) -> Endpoint | None:
        """Where ``agent_id`` is connected, or None."""
        return self.endpoints.get(agent_id)

    def is_connected(self, agent_id: str) -> bool:
        """Whether ``agent_id`` has an endpoint."""
        return agent_id in self.endpoints

    def cursor(self, agent_id: str, channel_id: str) -> str | None:
        """The last envelope ``agent_id`` acked in ``channel_id``."""
        return self._cursors.get((agent_id, channel_id))

    def forget(self, agent_id: str, channel_id: str) -> None:
        """Drop a cursor kept in memory (the channel left memory, and the store retires it)."""
        self._cursors.pop((agent_id, channel_id), None)

    def ack(self, agent_id: str, channel_id: str, envelope_id: str) -> bool:
        """Advance the cursor to ``envelope_id`` if it is newer; True if it moved."""
        key = (agent_id, channel_id)
        current = self._cursors.get(key)
        if current is not None and current >= envelope_id:
            return False
        self._cursors[key] = envelope_id
        return True
