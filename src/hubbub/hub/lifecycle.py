"""Opening, closing and expiring channels.

Open: validate the participants and the adapter's terms, write the channel
PENDING, invite every invitee, wait for all of them to ack (→ ACTIVE). A
reject or an ack timeout closes the channel and the creator gets a clear
error. TTLs and ack timeouts are deadlines on the loop's timer heap.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..adapters._common import check_view_knobs
from ..adapters.registry import AdapterRegistry
from ..errors import AccessDeniedError, HubTimeoutError, UsageError
from ..model._time import from_iso, iso_now, to_iso
from ..model.channel import ChannelMetadata, ChannelState, Participant, ParticipantRole
from ..model.envelope import EV_CHANNEL_INVITE, EV_TEXT, Envelope
from ..model.ids import make_id
from ..model.rule import parse_duration
from ..storage.base import AgentRecord
from .channel_record import ChannelRecord, Observer
from .channels import Channels
from .deadlines import Deadlines
from .governance import Governance

if TYPE_CHECKING:
    from .expectations import Expectations
from .registry import Registry

__all__ = ["Lifecycle"]


class Lifecycle:
    """Creates channels and ends them (close, reject, ack timeout, TTL)."""

    def __init__(
        self,
        registry: Registry,
        channels: Channels,
        adapters: AdapterRegistry,
        deadlines: Deadlines,
        governance: Governance,
        *,
        invite_ack_timeout: float,
    ) -> None:
        self._governance = governance
        self.expectations: Expectations | None = None
        self._registry = registry
        self._channels = channels
        self._adapters = adapters
        self._deadlines = deadlines
        self.invite_ack_timeout = invite_ack_timeout
        channels.ended = self._disarm

    async def create(
        self,
        creator: str,
        type_: str,
        participants: list[str],
        *,
        version: int = 1,
        knobs: dict[str, Any] | None = None,
        ttl: str | float | None = None,
        labels: dict[str, str] | None = None,
        intent: str | None = None,
        parent_channel_id: str | None = None,
        first: str | None = None,
    ) -> ChannelMetadata:
        """Open a channel and return its metadata once every invitee has acked.

        ``first``: a text the creator sends as the channel activates, committed with the last
        ack and delivered right after opened; if the channel refuses it, it closes
        (``first_message_refused``) and the refusal is raised here.
        """
        record = await self.open(
            creator,
            type_,
            participants,
            version=version,
            knobs=knobs,
            ttl=ttl,
            labels=labels,
            intent=intent,
            parent_channel_id=parent_channel_id,
            first=first,
        )
        return await self.await_activation(record)

    async def open(
        self,
        creator: str,
        type_: str,
        participants: list[str],
        *,
        version: int = 1,
        knobs: dict[str, Any] | None = None,
        ttl: str | float | None = None,
        labels: dict[str, str] | None = None,
        intent: str | None = None,
        parent_channel_id: str | None = None,
        observer: Observer | None = None,
        first: str | None = None,
    ) -> ChannelRecord:
        """Validate, write the channel PENDING and send the invites; returns before any ack.

        Raises (having written nothing) when a participant, the adapter's terms or a rule
        refuse the channel. ``observer`` is set on the record before any envelope is
        committed (see :attr:`ChannelRecord.observer`). Follow with :meth:`await_activation`.
        """
        creator_rec = self._registry.get(creator)
        creator_id = creator_rec.passport.agent_id
        assert creator_id is not None
        invitees: list[str] = []
        invitee_records: list[AgentRecord] = []
        for name_or_id in participants:
            invitee = self._registry.get(name_or_id)
            agent_id = invitee.passport.agent_id
            assert agent_id is not None
            if agent_id == creator_id:
                raise UsageError(
                    f"{creator_rec.passport.name} cannot invite itself to a {type_} channel; "
                    "list only the other participants as target"
                )
            if agent_id not in invitees:
                invitees.append(agent_id)
                invitee_records.append(invitee)
        adapter = self._adapters.get(type_, version)
        self._governance.check_open(creator_rec, type_, invitee_records)
        ttl_seconds = parse_duration(ttl if ttl is not None else creator_rec.rule.limits.channel_ttl_default)
        now = time.time()
        stamp = iso_now()
        roles = ParticipantRole.RESPONDENT if len(invitees) == 1 else ParticipantRole.PARTICIPANT
        members = [Participant(agent_id=creator_id, role=ParticipantRole.INITIATOR, order=0, joined_at=stamp)]
        members += [
            Participant(agent_id=a, role=roles, order=i + 1, joined_at=stamp) for i, a in enumerate(invitees)
        ]
        all_labels = dict(labels or {})
        if intent:
            all_labels["intent"] = intent
        metadata = ChannelMetadata(
            channel_id=make_id(),
            manifest=adapter.manifest,
            creator_id=creator_id,
            participants=members,
            state=ChannelState.PENDING,
            created_at=stamp,
            expires_at=to_iso(now + ttl_seconds) if ttl_seconds > 0 else None,
            parent_channel_id=parent_channel_id,
            knobs=dict(knobs or {}),
            labels=all_labels,
            required_acks=len(invitees),
            pending_acks=list(invitees),
        )
        adapter.validate_create(metadata)
        check_view_knobs(metadata)  # every channel type takes them; the hub reads them at each turn
        record = ChannelRecord(metadata, adapter, adapter.initial_state(metadata))
        record.observer = observer
        if first is not None:
            text = {"text": first}
            record.first = Envelope(
                channel_id=metadata.channel_id, sender_id=creator_id, event_type=EV_TEXT, event_data=text
            )
        if self.expectations is not None:
            self.expectations.resolve(record)
        record.activated = asyncio.get_running_loop().create_future()
        self._channels.add(record)
        if self.expectations is not None:
            self.expectations.start(record)
        self._channels.announce("created", record)
        placed = self._channels.place(record)  # before the invites: no commit holds them without it
        invite = {
            "channel_type": type_,
            "creator_id": creator_id,
            "creator_name": creator_rec.passport.name,
            "participants": metadata.participant_ids(),
            "knobs": metadata.knobs,
            "labels": metadata.labels,
        }
        followups = [
            self._channels.commit_hub_event(
                record, EV_CHANNEL_INVITE, invite, sender_id=creator_id, audience=[a]
            )
            for a in invitees
        ]
        self.schedule(record)
        await self._channels.settle(record, followups, placed)
        return record

    async def await_activation(self, record: ChannelRecord) -> ChannelMetadata:
        """The channel's metadata once every invitee acked; raises if it closed first.

        :class:`AccessDeniedError` (``invite_rejected``), :class:`HubTimeoutError`
        (``invite_timeout``) or :class:`AccessDeniedError` naming the close reason.
        """
        if record.activated is None:  # a channel restored from the store: nobody waited for it yet
            record.activated = asyncio.get_running_loop().create_future()
            if record.metadata.state is not ChannelState.PENDING:
                record.activated.set_result(record.metadata.state)
        try:
            state = await record.activated  # as it was when it stopped pending (it may close since)
        finally:
            record.activated = None
            self._deadlines.cancel(("ack", record.id))
        metadata = record.metadata
        if state is ChannelState.ACTIVE:
            return metadata
        if record.first_refused is not None:
            raise record.first_refused
        names = [self._registry.name_of(a) for a in metadata.rejected_by]
        if metadata.close_reason == "invite_rejected":
            raise AccessDeniedError(
                f"{', '.join(names)} rejected the invite to {metadata.manifest.type} channel "
                f"{metadata.channel_id}; the channel is closed",
                channel_id=metadata.channel_id,
                agent_id=metadata.rejected_by[0] if metadata.rejected_by else None,
                reason="invite_rejected",
            )
        if metadata.close_reason == "invite_timeout":
            waiting = [self._registry.name_of(a) for a in metadata.pending_acks]
            raise HubTimeoutError(
                f"{', '.join(waiting)} did not ack the invite to channel {metadata.channel_id} within "
                f"{self.invite_ack_timeout:g}s (are they connected?); the channel is closed",
                channel_id=metadata.channel_id,
                reason="invite_timeout",
            )
        raise AccessDeniedError(
            f"channel {metadata.channel_id} closed before it opened: {metadata.close_reason}",
            channel_id=metadata.channel_id,
            reason=metadata.close_reason,
        )

    def schedule(self, record: ChannelRecord) -> None:
        """Arm the channel's TTL and, while pending, its invite ack timeout."""
        meta = record.metadata
        if meta.is_terminal():
            return
        if meta.expires_at is not None:
            self._deadlines.at(("ttl", record.id), from_iso(meta.expires_at), lambda: self.expire(record.id))
        if meta.state is ChannelState.PENDING:
            when = from_iso(meta.created_at) + self.invite_ack_timeout
            self._deadlines.at(("ack", record.id), when, lambda: self._ack_timeout(record.id))

    async def close(
        self, channel_id: str, reason: str = "closed", *, state: ChannelState = ChannelState.CLOSED
    ) -> ChannelMetadata:
        """Close (or expire) a channel; closing a closed channel changes nothing."""
        record = self._channels.find(channel_id)
        if record is None:  # unknown (NotFoundError), or closed and no longer in memory
            return await self._channels.fetch(channel_id)
        followups = self._channels.terminate(record, state, reason)
        if followups:
            self._channels.update(record)
            await self._channels.settle(record, followups, None)
        return record.metadata

    def _disarm(self, record: ChannelRecord) -> None:
        """The channel ended (closed here, by its adapter, or rejected): its TTL and invite
        timeout have nothing left to do, and an armed one would hold memory until it fired."""
        self._deadlines.cancel(("ttl", record.id))
        self._deadlines.cancel(("ack", record.id))

    async def expire(self, channel_id: str) -> None:
        """TTL reached: the channel becomes EXPIRED."""
        await self.close(channel_id, "ttl_expired", state=ChannelState.EXPIRED)

    async def _ack_timeout(self, channel_id: str) -> None:
        record = self._channels.find(channel_id)
        if record is not None and record.metadata.state is ChannelState.PENDING:
            await self.close(channel_id, "invite_timeout")
