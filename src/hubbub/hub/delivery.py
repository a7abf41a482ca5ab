"""Getting envelopes to recipients: endpoints, per-(agent, channel) ack cursors, replay.

A recipient sees an envelope once it is durable. Each delivery goes to the
endpoint (connection) the recipient is bound to; the endpoint's ``deliver`` is
non-blocking (it owns a bounded outbox), so a slow recipient never stalls a
sender. The recipient acks per envelope; an ack advances its cursor for that
channel, and a replay sends everything past the cursor again.

Acks are cumulative, so each channel must reach a recipient in order. While an
agent's backlog is replayed (and, when its client asks, from its re-attach until
that replay), new envelopes for it wait in a :class:`Holding`: those of a channel
go out as soon as the replay has sent that channel's backlog, the rest when the
replay ends. A live envelope never overtakes older ones the replay still owes.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ..model.envelope import Envelope

__all__ = ["Delivery", "Endpoint", "Holding", "recipients_of"]

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


class Holding:
    """New envelopes for one agent on one endpoint, kept back while its replay still owes older ones."""

    __slots__ = ("agent_id", "caught_up", "endpoint", "waiting")

    def __init__(self, agent_id: str, endpoint: Endpoint) -> None:
        self.agent_id = agent_id
        self.endpoint = endpoint
        self.waiting: dict[str, list[Envelope]] = {}
        """Per channel, in commit order."""
        self.caught_up: dict[str, str | None] = {}
        """Channels the replay has sent, each with the last envelope id it read there."""

    def take(self, envelope: Envelope) -> bool:
        """Keep ``envelope`` back (or drop it: the replay sent it already); False: deliver it now."""
        channel_id = envelope.channel_id
        if channel_id not in self.caught_up:
            self.waiting.setdefault(channel_id, []).append(envelope)
            return True
        last = self.caught_up[channel_id]
        return last is not None and envelope.envelope_id <= last

    def catch_up(self, channel_id: str, last: str | None) -> int:
        """The replay has sent ``channel_id`` up to ``last``: send what waits beyond it; from now on
        the channel's new envelopes go out at once. Returns how many were sent."""
        self.caught_up[channel_id] = last
        return self._send(self.waiting.pop(channel_id, []), last)

    def release(self) -> int:
        """The replay is over: send everything still waiting."""
        sent = 0
        for channel_id, envelopes in self.waiting.items():
            sent += self._send(envelopes, self.caught_up.get(channel_id))
        self.waiting.clear()
        return sent

    def _send(self, envelopes: list[Envelope], last: str | None) -> int:
        sent = 0
        for envelope in envelopes:
            if last is None or envelope.envelope_id > last:
                self.endpoint.deliver(envelope, self.agent_id)
                sent += 1
        return sent


class Delivery:
    """Bindings of agents to endpoints, ack cursors, and holdings during replays."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.holdings: dict[str, Holding] = {}
        """Agents whose replay is due or running (see :class:`Holding`); each holding is for the
        endpoint its agent is bound to (binding elsewhere, or unbinding, drops it)."""
        self._cursors: dict[tuple[str, str], str] = {}

    def load_cursors(self, cursors: dict[tuple[str, str], str]) -> None:
        """Start from stored cursors."""
        self._cursors.update(cursors)

    def bind(self, agent_id: str, endpoint: Endpoint) -> None:
        """Send ``agent_id``'s deliveries to ``endpoint`` from now on."""
        self.endpoints[agent_id] = endpoint
        holding = self.holdings.get(agent_id)
        if holding is not None and holding.endpoint is not endpoint:
            del self.holdings[agent_id]  # the old connection's: a replay there owes this one nothing

    def unbind(self, agent_id: str, endpoint: Endpoint | None = None) -> None:
        """Stop delivering to ``agent_id`` (only if still bound to ``endpoint``, when given)."""
        if endpoint is None or self.endpoints.get(agent_id) is endpoint:
            self.endpoints.pop(agent_id, None)
            self.holdings.pop(agent_id, None)  # what it held is replayed at the next attach

    def hold(self, agent_id: str) -> Holding | None:
        """Keep ``agent_id``'s new envelopes back until :meth:`release` (None: not connected).

        Holding already (a re-attach asked for it before its replay): the same holding.
        """
        endpoint = self.endpoints.get(agent_id)
        if endpoint is None:
            return None
        holding = self.holdings.get(agent_id)
        if holding is None:
            holding = self.holdings[agent_id] = Holding(agent_id, endpoint)
        return holding

    def release(self, holding: Holding) -> int:
        """End ``holding`` (if still the agent's): what waits goes out; returns how many."""
        if self.holdings.get(holding.agent_id) is not holding:
            return 0  # unbound meanwhile, or bound elsewhere: a later replay owes it all
        del self.holdings[holding.agent_id]
        return holding.release()

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
