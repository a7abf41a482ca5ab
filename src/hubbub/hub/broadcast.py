"""Broadcast: one text to every connected agent (or every connected one with a capability).

A broadcast is a ``broadcast`` channel (``adapters/broadcast.py``) the hub
opens already active, with no invite handshake: participants are the sender
and the recipients, the WAL holds the opened record (addressed to the sender
alone, so nobody receives it), the text, and the close (``broadcast_sent``).
Recipients get the text and the close as deliveries and ack them like any
other; an agent that reconnects later replays them. "Connected" means bound to
an endpoint right now. Agents the rules keep apart from the sender (its
``outbound_to``, their ``inbound_from`` or ``channel_types.accept``, a custom
arbiter) and agents whose inbox is full with ``overflow="reject"`` are left
out rather than failing the whole broadcast; the count says how many got it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..adapters.broadcast import BROADCAST
from ..errors import HubbubError, UsageError
from ..model._time import iso_now, to_iso
from ..model.channel import ChannelMetadata, ChannelState, Participant, ParticipantRole
from ..model.envelope import EV_CHANNEL_OPENED, EV_TEXT, Envelope
from ..model.ids import make_id
from ..storage.base import AgentRecord
from .channel_record import ChannelRecord
from .snapshots import forget

if TYPE_CHECKING:
    from .core import Hub

__all__ = ["BROADCAST_TTL", "Broadcasts"]

BROADCAST_TTL = 60.0
"""A broadcast channel closes right after its text; should a crash come between, it expires."""
_MAX_TEXT = 1_000_000


class Broadcasts:
    """Sends broadcasts through the hub's channels."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def send(self, sender_id: str, text: str, *, capability: str | None = None) -> int:
        """Post ``text`` to every connected agent (claiming ``capability``, when given) but the
        sender; returns how many recipients it went to (0: nothing was written)."""
        hub = self.hub
        sender = hub.registry.get(sender_id)
        sid = sender.passport.agent_id or sender_id
        if not isinstance(text, str) or not text or len(text) > _MAX_TEXT:
            raise UsageError(
                f"a broadcast needs a non-empty text of at most {_MAX_TEXT} characters, got {text!r:.80}",
                reason="bad_text",
            )
        if capability is not None and (not isinstance(capability, str) or not capability.strip()):
            raise UsageError(f"capability must be a non-empty string or None, got {capability!r}")
        hub.governance.check_open(sender, BROADCAST, [])
        recipients = self._recipients(sender, capability)
        if not recipients:
            return 0
        record = await self._open(sid, recipients)
        envelope = Envelope(
            channel_id=record.id, sender_id=sid, event_type=EV_TEXT, event_data={"text": text}
        )
        try:
            await hub.channels.post(envelope, sid)
        except HubbubError:
            await hub.lifecycle.close(record.id, "broadcast_refused")
            raise
        return len(recipients)

    def _recipients(self, sender: AgentRecord, capability: str | None) -> list[AgentRecord]:
        hub = self.hub
        sid = sender.passport.agent_id
        connected = hub.delivery.endpoints
        if capability is not None:
            pool = [r for r in hub.registry.holders(capability) if r.passport.agent_id in connected]
        else:
            pool = [r for r in map(hub.registry.find, list(connected)) if r is not None]
        pending = hub.governance.inbox.pending
        chosen = []
        for record in pool:
            agent_id = record.passport.agent_id or ""
            inbox = record.rule.limits.inbox
            if agent_id == sid:
                continue
            if inbox.overflow == "reject" and pending.get(agent_id, 0) >= inbox.max_pending:
                continue
            if hub.governance.open_denial(sender, BROADCAST, [record]) is not None:
                continue
            chosen.append(record)
        return chosen

    async def _open(self, sender_id: str, recipients: list[AgentRecord]) -> ChannelRecord:
        """The channel, active from the start, with its opened record in the WAL (for restarts)."""
        hub = self.hub
        adapter = hub.adapters.get(BROADCAST)
        stamp = iso_now()
        members = [Participant(agent_id=sender_id, role=ParticipantRole.INITIATOR, order=0, joined_at=stamp)]
        members += [
            Participant(
                agent_id=r.passport.agent_id or "",
                role=ParticipantRole.PARTICIPANT,
                order=i + 1,
                joined_at=stamp,
            )
            for i, r in enumerate(recipients)
        ]
        metadata = ChannelMetadata(
            channel_id=make_id(),
            manifest=adapter.manifest,
            creator_id=sender_id,
            participants=members,
            state=ChannelState.ACTIVE,
            created_at=stamp,
            expires_at=to_iso(time.time() + BROADCAST_TTL),
            required_acks=0,
        )
        record = ChannelRecord(metadata, adapter, adapter.initial_state(metadata))
        hub.channels.add(record)
        hub.expectations.start(record)
        hub.channels.announce("created", record)
        placed = hub.channels.place(record)  # before its first envelope, as every channel
        _opened, durable = hub.channels.commit_hub_event(
            record, EV_CHANNEL_OPENED, {"participants": record.participants}, audience=[sender_id]
        )
        forget(durable)
        hub.lifecycle.schedule(record)
        if placed is not None:
            await placed
        return record
