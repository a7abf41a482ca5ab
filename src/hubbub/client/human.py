"""``HumanClient``: a person in channels, with the same envelope plumbing as an agent and no agent.

Register one with ``await hub_client.register_human("ada")`` (its passport has
``kind="human"``). A human never takes turns automatically: it reads what
arrives and sends when it wants to. Read either way, or both:

* push: ``human.on_envelope(callback)``, called for every delivery;
* pull: ``await human.next_envelope()`` or ``async for envelope in human.envelopes()``.

Deliveries come in order within each channel (channels run side by side, so
envelopes of two channels may interleave). Each delivery is put in the pull
queue, then handed to the push callbacks, then acked: once acked, the hub will
not deliver it again, so what is queued but not yet pulled when the process
dies is not redelivered (it is still in the channel's WAL: ``channel.read()``).
The pull queue holds at most ``max_queued`` envelopes; when it is full,
deliveries wait unacked until the human pulls (the hub's inbox cap then
applies to senders). Acks are cumulative and go out once a channel's burst of
deliveries is through, so the deliveries queued just before one that waits for
room stay unacked with it (after a crash they come again: at least once). With
``max_queued=0`` there is no pull queue (push only).

With ``auto_ack_invites=False`` an invite is delivered like any envelope and
the human answers it with :meth:`HumanClient.accept` or
:meth:`HumanClient.reject`; an invite left unanswered times out like any other
(the channel closes with ``invite_timeout``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import UsageError
from ..model.channel import ChannelManifest, ChannelMetadata, ChannelState, Participant, ParticipantRole
from ..model.envelope import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_INVITE_REJECT,
    EV_TEXT,
    Envelope,
)
from ..model.identity import Passport
from .agent_client import AgentClient
from .channel import Channel

if TYPE_CHECKING:
    from .hub_client import HubClient

__all__ = ["HumanClient", "human_passport"]

DEFAULT_MAX_QUEUED = 1000


def human_passport(name_or_passport: str | Passport) -> Passport:
    """A passport with ``kind="human"``: from a name, or a passport whose kind is unset or human."""
    if isinstance(name_or_passport, str):
        if not name_or_passport:
            raise UsageError("a human needs a non-empty name")
        return Passport(name=name_or_passport, kind="human")
    if name_or_passport.kind not in (None, "human"):
        raise UsageError(
            f"passport {name_or_passport.name!r} has kind {name_or_passport.kind!r}; "
            "register_human takes a human's passport (kind 'human' or unset)"
        )
    if name_or_passport.kind == "human":
        return name_or_passport
    return msgspec.structs.replace(name_or_passport, kind="human")


class _Inbox:
    """A bounded FIFO whose ``put`` waits for room and whose ``get`` ends when closed."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.items: deque[Envelope] = deque()
        self.closed = False
        self._changed = asyncio.Condition()

    async def put(self, envelope: Envelope) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.closed or len(self.items) < self.maxsize)
            if not self.closed:
                self.items.append(envelope)
                self._changed.notify_all()

    async def get(self) -> Envelope | None:
        """The next envelope, or None once closed and drained."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.closed or bool(self.items))
            if not self.items:
                return None
            envelope = self.items.popleft()
            self._changed.notify_all()
            return envelope

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()


class HumanClient(AgentClient):
    """A person taking part in channels: receive (push or pull), send, open, close, answer invites.

    Create it with :meth:`HubClient.register_human` or :meth:`HubClient.attach_human`.
    ``agent_id`` and ``name`` identify the human; the inherited
    :meth:`~AgentClient.on_envelope`, :meth:`~AgentClient.open` and
    :meth:`~AgentClient.list_channels` work as for an agent.
    """

    def __init__(
        self,
        hub_client: HubClient,
        passport: Passport,
        *,
        auto_ack_invites: bool = True,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        if isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 0:
            raise UsageError(f"max_queued must be 0 (no pull queue) or more, got {max_queued!r}")
        super().__init__(hub_client, None, passport, handle_turns=False, auto_answer_invites=auto_ack_invites)
        self.auto_ack_invites = auto_ack_invites
        self._inbox: _Inbox | None = _Inbox(max_queued) if max_queued else None
        self._known: dict[str, ChannelMetadata] = {}
        self.on_envelope(self._remember)
        if self._inbox is not None:
            self.on_envelope(self._inbox.put)

    def __repr__(self) -> str:
        return f"HumanClient({self.name!r}, {self.agent_id})"

    # receiving

    async def next_envelope(self, timeout: float | None = None) -> Envelope:
        """The next delivery, waiting up to ``timeout`` seconds (None: no limit).

        Raises ``TimeoutError`` when nothing arrives in time, and
        :class:`UsageError` once the client is closed and the queue is empty.
        """
        inbox = self._pull_queue()
        envelope = await asyncio.wait_for(inbox.get(), timeout)
        if envelope is None:
            raise UsageError(f"human {self.name!r} is closed; no more envelopes will arrive")
        return envelope

    async def envelopes(self) -> AsyncIterator[Envelope]:
        """Every delivery, in order, until the client is closed."""
        inbox = self._pull_queue()
        while (envelope := await inbox.get()) is not None:
            yield envelope

    def _pull_queue(self) -> _Inbox:
        if self._inbox is None:
            raise UsageError(
                f"human {self.name!r} was created with max_queued=0 (push only); "
                "use on_envelope, or register it with max_queued above 0 to pull"
            )
        return self._inbox

    @property
    def queued(self) -> int:
        """Deliveries waiting in the pull queue."""
        return len(self._inbox.items) if self._inbox is not None else 0

    async def _remember(self, envelope: Envelope) -> None:
        if envelope.event_type == EV_CHANNEL_INVITE and envelope.channel_id not in self._known:
            self._known[envelope.channel_id] = _from_invite(envelope)
        elif envelope.event_type in (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED):
            self._known.pop(envelope.channel_id, None)

    # invites

    async def accept(self, invite: Envelope) -> Channel:
        """Join the channel ``invite`` invites this human to; returns a handle on it.

        The channel becomes active once every invitee has accepted. Raises
        :class:`~hubbub.ChannelClosedError` if the invite already timed out.
        """
        await self._answer(invite, EV_CHANNEL_INVITE_ACK, {})
        metadata = self._known[invite.channel_id] = await self.hub_client.get_channel(invite.channel_id)
        return Channel(self, metadata)

    async def reject(self, invite: Envelope, reason: str = "declined") -> ChannelMetadata:
        """Refuse ``invite``: the channel closes (``invite_rejected``) and its creator is told why."""
        await self._answer(invite, EV_CHANNEL_INVITE_REJECT, {"reason": reason or "declined"})
        return await self.hub_client.get_channel(invite.channel_id)

    async def _answer(self, invite: Envelope, event_type: str, data: dict[str, Any]) -> None:
        if not isinstance(invite, Envelope) or invite.event_type != EV_CHANNEL_INVITE:
            got = invite.event_type if isinstance(invite, Envelope) else type(invite).__name__
            raise UsageError(
                f"accept() and reject() take an invite envelope ({EV_CHANNEL_INVITE}), got {got}"
            )
        await self.send_envelope(
            Envelope(
                channel_id=invite.channel_id,
                sender_id=self.agent_id,
                event_type=event_type,
                event_data=data,
                causation_id=invite.envelope_id,
            )
        )

    # sending

    async def open(
        self,
        type: str,
        target: str | list[str],
        *,
        knobs: dict[str, Any] | None = None,
        ttl: str | float | None = None,
        labels: dict[str, str] | None = None,
        intent: str | None = None,
        first: str | None = None,
    ) -> Channel:
        """Open a ``type`` channel with ``target`` (names or ids); returns once all invitees acked
        (and ``first``, if given, is sent)."""
        channel = await super().open(
            type, target, knobs=knobs, ttl=ttl, labels=labels, intent=intent, first=first
        )
        self._known[channel.id] = channel.metadata
        return channel

    async def send(
        self,
        channel_id: str,
        text: str | None,
        *,
        audience: list[str] | None = None,
        event_type: str = EV_TEXT,
        event_data: dict[str, Any] | None = None,
        causation_id: str | None = None,
    ) -> str:
        """Post ``text`` (and/or ``event_data``) into a channel; returns the envelope id once durable.

        ``audience`` takes names or ids (None: everyone in the channel).
        """
        return await self.channel(channel_id).send(
            text, event_type=event_type, event_data=event_data, audience=audience, causation_id=causation_id
        )

    async def close_channel(self, channel_id: str, reason: str = "closed") -> ChannelMetadata:
        """Close a channel this human takes part in, for everyone in it."""
        return await self.channel(channel_id).close(reason)

    def channel(self, channel: ChannelMetadata | str) -> Channel:
        """A handle on a channel, by metadata or id.

        From an id alone the handle's ``metadata`` is what this client last saw
        of an open channel (from its invite, ``open`` or ``accept``) or a
        placeholder; ``await handle.info()`` refreshes it.
        """
        if isinstance(channel, ChannelMetadata):
            return Channel(self, channel)
        return Channel(self, self._known.get(channel) or _placeholder(channel))

    async def aclose(self) -> None:
        """Stop receiving; a pending ``next_envelope`` or ``envelopes()`` loop ends once the queue drains."""
        await super().aclose()
        if self._inbox is not None:
            await self._inbox.close()


def _from_invite(invite: Envelope) -> ChannelMetadata:
    data = invite.event_data
    ids = [p for p in data.get("participants") or [] if isinstance(p, str)]
    creator = str(data.get("creator_id") or invite.sender_id)
    return ChannelMetadata(
        channel_id=invite.channel_id,
        manifest=ChannelManifest(type=str(data.get("channel_type") or "unknown")),
        creator_id=creator,
        participants=[
            Participant(
                agent_id=a,
                role=ParticipantRole.INITIATOR if a == creator else ParticipantRole.PARTICIPANT,
                order=i,
            )
            for i, a in enumerate(ids)
        ],
        state=ChannelState.PENDING,
        created_at=invite.created_at,
        knobs=dict(data.get("knobs") or {}),
        labels=dict(data.get("labels") or {}),
    )


def _placeholder(channel_id: str) -> ChannelMetadata:
    return ChannelMetadata(
        channel_id=channel_id,
        manifest=ChannelManifest(type="unknown"),
        creator_id="",
        participants=[],
        state=ChannelState.PENDING,
        created_at="",
    )
