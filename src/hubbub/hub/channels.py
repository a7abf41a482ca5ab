"""Every channel the hub knows (records in channel_record.py, send checks in send_checks.py) and
the post path.

``post`` is the hot path: look up the channel (dict), check the sender and
audience (set lookups), ask the adapter on the cached state, stamp, append to
the store (the store fixes the order at once), fold, apply lifecycle effects,
then await durability and hand the envelope to delivery. Nothing here scans a
WAL or lists agents or channels. Steps up to the append run with no ``await``
between them, so concurrent posts to one channel are serialised by the event
loop itself.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..errors import AccessDeniedError, HubbubError, NotFoundError
from ..model.channel import ChannelMetadata, ChannelState
from ..model.envelope import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_INVITE_REJECT,
    EV_CHANNEL_OPENED,
    EV_PACKET,
    EV_TEXT,
    Envelope,
    is_bypass_event,
    is_control_event,
)
from ..model.ids import MonotonicIds
from ..storage.base import AgentRecord, Store
from .channel_record import Accepted, ChannelRecord, Followups
from .delivery import recipients_of
from .dispatch import Dispatcher
from .governance import Governance
from .listeners import Listeners
from .registry import Registry
from .send_checks import check_send, ended_elsewhere, refuse_outsiders_and_ended
from .snapshots import SNAPSHOT_EVERY, forget, write_snapshot

__all__ = ["HUB_SENDER", "KEEP_CLOSED", "Channels"]

_MOST_PASSED = 64
KEEP_CLOSED = 10_000
"""Closed channels a hub keeps in memory: the most recently closed. An older one leaves memory
once every participant acked all of it; asked for again, it is read from the store."""

HUB_SENDER = "hub"
"""``sender_id`` of envelopes the hub itself writes (opened, closed, expired)."""

_TEXTS = frozenset({EV_TEXT, EV_PACKET})


async def _ready(envelope_id: str) -> str:
    return envelope_id


class Channels:
    """Every channel the hub knows, and the post path into them."""

    def __init__(
        self,
        store: Store,
        ids: MonotonicIds,
        registry: Registry,
        governance: Governance,
        dispatcher: Dispatcher,
        listeners: Listeners,
    ) -> None:
        self._store = store
        self._ids = ids
        self._registry = registry
        self._governance = governance
        self._dispatcher = dispatcher
        self._listeners = listeners
        self._records: dict[str, ChannelRecord] = {}
        self._by_agent: dict[str, set[str]] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        """Terminal channels still in memory, the longest closed first."""
        self._on_commit: dict[asyncio.Future[None], list[tuple[Accepted, asyncio.Future[str]]]] = {}
        """Posts without lifecycle effects waiting for their commit, per commit, in post order."""
        self.keep_closed = KEEP_CLOSED
        self.crowded: Callable[[], None] | None = None
        """Called when a close settles with more than :attr:`keep_closed` closed channels in
        memory (the hub then evicts some, see :meth:`evict_closed`)."""
        self.watch: Callable[[ChannelRecord, Envelope], None] | None = None
        """Called with every accepted envelope before anything awaits (the expectations engine)."""
        self.ended: Callable[[ChannelRecord], None] | None = None
        """Called once a channel turns terminal, however it ended (lifecycle disarms its deadlines)."""
        self.snapshot_every = SNAPSHOT_EVERY
        """Snapshot a channel's state after this many envelopes (its next substantive one)."""

    # lookup

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: ChannelRecord) -> None:
        """Track a channel (new, or loaded at start-up)."""
        self._records[record.id] = record
        for agent_id in record.members:
            self._by_agent.setdefault(agent_id, set()).add(record.id)
        if record.metadata.is_terminal():
            self._closed[record.id] = None

    async def fetch(self, channel_id: str) -> ChannelMetadata:
        """A channel's metadata, from memory or, for a closed channel no longer kept, the store."""
        record = self._records.get(channel_id)
        if record is not None:
            return record.metadata
        metadata = await self._store.get_channel(channel_id)
        if metadata is None:
            self.get(channel_id)  # raises NotFoundError naming it
        assert metadata is not None
        return metadata

    def acked_to_the_end(self, record: ChannelRecord) -> None:
        """A participant acked a closed channel to its end: if closed channels crowd memory, look
        for some to leave now (else it would wait for the next close, however quiet the hub)."""
        if record.ended:
            self._look_for_leavers()

    def _look_for_leavers(self) -> None:
        if len(self._closed) > self.keep_closed and self.crowded is not None:
            self.crowded()

    def evict_closed(self, may_leave: Callable[[ChannelRecord], bool]) -> list[ChannelRecord]:
        """Let the longest-closed channels beyond :attr:`keep_closed` leave memory, those
        ``may_leave`` allows (the others are looked at again later); the ones that left."""
        closed, left, passed = self._closed, [], 0
        # Each call looks at a bounded number of channels still needed (acks due), so a close
        # never rescans them all; they come round again on later calls.
        while len(closed) > self.keep_closed and passed < min(len(closed), _MOST_PASSED):
            channel_id = next(iter(closed))
            del closed[channel_id]
            record = self._records.get(channel_id)
            if record is None:
                continue
            if not (record.ended and may_leave(record)):
                closed[channel_id] = None  # still needed: to the back of the line
                passed += 1
                continue
            del self._records[channel_id]
            for agent_id in record.members:
                mine = self._by_agent.get(agent_id)
                if mine is not None:
                    mine.discard(channel_id)
                    if not mine:
                        del self._by_agent[agent_id]
            left.append(record)
        return left

    def get(self, channel_id: str) -> ChannelRecord:
        """A channel by id; :class:`NotFoundError` naming it if unknown."""
        record = self._records.get(channel_id)
        if record is None:
            raise NotFoundError(
                f"no channel {channel_id!r} on this hub; open one with AgentClient.open()",
                channel_id=channel_id,
                reason="unknown_channel",
            )
        return record

    def find(self, channel_id: str) -> ChannelRecord | None:
        """A channel by id, or None."""
        return self._records.get(channel_id)

    def all(self) -> list[ChannelRecord]:
        """Every channel (for listings, not for the hot path)."""
        return list(self._records.values())

    def of_agent(self, agent_id: str) -> list[ChannelRecord]:
        """Channels ``agent_id`` takes part in."""
        return [self._records[c] for c in self._by_agent.get(agent_id, ())]

    def open_count(self, agent_id: str) -> int:
        """How many non-terminal channels ``agent_id`` is in."""
        return sum(1 for c in self._by_agent.get(agent_id, ()) if not self._records[c].metadata.is_terminal())

    # post path

    def post(self, envelope: Envelope, sender_id: str) -> Awaitable[str]:
        """Validate, stamp, append, fold and deliver ``envelope`` from ``sender_id``.

        The checks, the append and the fold happen now (a refusal raises here); await the
        result for the envelope id, once the envelope is durable and delivered. A retry with
        the same ``idempotency_key`` returns the first id and writes nothing.
        """
        record = self._records.get(envelope.channel_id)
        if record is None:
            return self._post_to_stored(envelope, sender_id)
        if envelope.sender_id != sender_id:
            envelope = msgspec.structs.replace(envelope, sender_id=sender_id)
        if envelope.idempotency_key is not None:
            return self._post_once(record, envelope, sender_id, envelope.idempotency_key)
        accepted = self.accept(record, envelope, sender_id)
        durable = accepted[2]
        if accepted[7] is None:  # no lifecycle effects (followups): no coroutine, no task
            if durable is None:  # durable already (a memory store): deliver now
                self._hand_over(accepted)
                return _ready(accepted[1].envelope_id)  # a coroutine: cheaper than a done future
            if isinstance(durable, asyncio.Future):  # a callback on the commit delivers it
                posted: asyncio.Future[str] = durable.get_loop().create_future()
                waiting = self._on_commit.get(durable)
                if waiting is None:  # one callback per commit, however many posts it holds
                    waiting = self._on_commit[durable] = []
                    durable.add_done_callback(self._committed)
                waiting.append((accepted, posted))
                return posted
        return self.complete(accepted)

    async def _post_to_stored(self, envelope: Envelope, sender_id: str) -> str:
        """A post to a channel not in memory: unknown, or closed and read from the store."""
        metadata = await self.fetch(envelope.channel_id)  # NotFoundError if unknown
        key = envelope.idempotency_key
        if key is not None:
            earlier = await self._store.find_by_idempotency_key(metadata.channel_id, sender_id, key)
            if earlier is not None:
                return earlier
        try:
            refuse_outsiders_and_ended(metadata, frozenset(metadata.participant_ids()), envelope, sender_id)
            raise ended_elsewhere(metadata, sender_id)
        except HubbubError as exc:
            self._rejected(envelope, sender_id, exc)
            raise

    def _committed(self, durable: asyncio.Future[None]) -> None:
        for accepted, posted in self._on_commit.pop(durable):
            self._delivered(accepted, posted, durable)

    def _delivered(
        self, accepted: Accepted, posted: asyncio.Future[str], durable: asyncio.Future[None]
    ) -> None:
        """:meth:`complete` for an envelope without lifecycle effects, called once its commit is done."""
        record, stamped = accepted[0], accepted[1]
        error = durable.exception()
        if error is None:
            try:
                self._hand_over(accepted)
            except Exception as exc:  # a bug in delivery: the poster hears of it, as if it awaited
                error = exc
        else:
            record.inflight.discard(stamped.envelope_id)
        if posted.done():  # its awaiter was cancelled
            return
        if error is None:
            posted.set_result(stamped.envelope_id)
        else:
            posted.set_exception(error)

    async def _post_once(self, record: ChannelRecord, envelope: Envelope, sender_id: str, key: str) -> str:
        earlier = record.idempotency.get((sender_id, key))
        if earlier is None:
            earlier = await self._store.find_by_idempotency_key(record.id, sender_id, key)
        if earlier is not None:
            return earlier
        accepted = self.accept(record, envelope, sender_id)
        record.idempotency[(sender_id, key)] = accepted[1].envelope_id
        return await self.complete(accepted)

    def accept(self, record: ChannelRecord, envelope: Envelope, sender_id: str) -> Accepted:
        """Check, stamp, append and fold ``envelope`` now, with no await (having written nothing
        if it is refused: the error is raised); follow with :meth:`complete`."""
        bypass = is_bypass_event(envelope.event_type)
        sender = self._registry.find(sender_id)
        try:
            check_send(record, envelope, sender_id)
            recipients = self._recipients(record, envelope, sender_id)
            skip = None
            if not bypass and sender is not None:
                skip = self._governance.check_send(sender, envelope, record.metadata, recipients) or None
        except HubbubError as exc:
            self._rejected(envelope, sender_id, exc)
            raise
        stamped, durable = self._commit(record, envelope)
        # In flight before its effects: a closing snapshot taken by _apply must see it as pending.
        record.inflight.add(stamped.envelope_id)
        try:
            followups = self._apply(record, stamped)
        except BaseException:
            record.inflight.discard(stamped.envelope_id)
            raise
        if followups is not None:
            self.update(record)
        return record, stamped, durable, sender, recipients, bypass, skip, followups

    async def complete(self, accepted: Accepted) -> str:
        """Once the :meth:`accept` ed envelope is durable: deliver it and settle its effects;
        returns its id."""
        record, stamped, durable, _, _, _, _, followups = accepted
        if durable is not None:
            try:
                await durable
            except BaseException:
                record.inflight.discard(stamped.envelope_id)
                raise
        self._hand_over(accepted)
        if followups is not None:
            await self.settle(record, followups, None)  # (its metadata change is deferred)
        return stamped.envelope_id

    def _hand_over(self, accepted: Accepted) -> None:
        """Deliver an accepted envelope that is durable, and tell the listeners."""
        record, stamped, _, sender, recipients, bypass, skip, _ = accepted
        try:
            self._dispatcher.deliver(stamped, sender, recipients, substantive=not bypass, skip=skip)
        finally:
            record.inflight.discard(stamped.envelope_id)
        if self._listeners.wants("on_envelope_posted"):
            self._listeners.emit("on_envelope_posted", stamped)

    def _recipients(self, record: ChannelRecord, envelope: Envelope, sender_id: str) -> list[AgentRecord]:
        """The registered recipients of ``envelope``; for a broadcast, cached per sender."""
        find = self._registry.find
        if envelope.audience is not None:
            return [r for r in map(find, recipients_of(envelope, record.participants)) if r is not None]
        cached = record.recipients.get(sender_id)
        version = self._registry.version
        if cached is None or cached[0] != version:
            found = [r for r in map(find, recipients_of(envelope, record.participants)) if r is not None]
            cached = record.recipients[sender_id] = (version, found)
        return cached[1]

    def _rejected(self, envelope: Envelope, sender_id: str, error: HubbubError) -> None:
        if self._listeners.wants("on_envelope_rejected"):
            self._listeners.emit("on_envelope_rejected", envelope, sender_id, error)
        if isinstance(error, AccessDeniedError):
            self._governance.audit(
                "send_denied",
                actor=sender_id,
                agent_id=error.agent_id or sender_id,
                channel_id=envelope.channel_id,
                reason=error.reason,
                data={"error": str(error), "event_type": envelope.event_type},
            )

    def _commit(self, record: ChannelRecord, envelope: Envelope) -> tuple[Envelope, Awaitable[None] | None]:
        """Stamp and append, with no await: the store fixes the order now."""
        envelope_id, created_at = self._ids.stamp()
        stamped = msgspec.structs.replace(envelope, envelope_id=envelope_id, created_at=created_at)
        durable = self._store.append(stamped)
        record.state = record.adapter.fold(record.state, stamped)
        if stamped.event_type in _TEXTS:
            record.texts += 1
        if self.watch is not None:
            self.watch(record, stamped)
        if record.observer is not None:
            record.observer(record, stamped)
        record.unsnapped += 1
        if record.unsnapped >= self.snapshot_every and not is_control_event(stamped.event_type):
            self.snapshot(record, stamped.envelope_id)
        return stamped, durable

    def snapshot(self, record: ChannelRecord, envelope_id: str) -> None:
        """Snapshot the channel as of its last envelope, ``envelope_id``; the store orders it after it."""
        write_snapshot(self._store, self._governance.inbox, record, envelope_id)

    def commit_hub_event(
        self,
        record: ChannelRecord,
        event_type: str,
        data: dict[str, Any],
        *,
        sender_id: str = HUB_SENDER,
        audience: list[str] | None = None,
    ) -> tuple[Envelope, Awaitable[None] | None]:
        """Write an envelope the hub itself originates (invites, opened, closed)."""
        envelope = Envelope(
            channel_id=record.id,
            sender_id=sender_id,
            event_type=event_type,
            event_data=data,
            audience=audience,
        )
        return self._commit(record, envelope)

    def _apply(self, record: ChannelRecord, envelope: Envelope) -> Followups | None:
        """Lifecycle effects of an accepted envelope, decided before anything awaits.

        None: the channel's metadata did not change. A list (maybe empty): it
        did; the list holds hub envelopes to deliver once durable.
        """
        meta = record.metadata
        event_type = envelope.event_type
        sender = envelope.sender_id
        if event_type == EV_CHANNEL_INVITE_ACK:
            meta.pending_acks = [a for a in meta.pending_acks if a != sender]
            if not meta.pending_acks and meta.state is ChannelState.PENDING:
                return self.activate(record)
            return []
        if event_type == EV_CHANNEL_INVITE_REJECT:
            meta.rejected_by = [*meta.rejected_by, sender]
            meta.pending_acks = [a for a in meta.pending_acks if a != sender]
            return self.terminate(record, ChannelState.CLOSED, "invite_rejected")
        if is_control_event(event_type):
            return None
        result = record.adapter.on_accepted(meta, record.state, envelope)
        if result.next_state is not None and result.next_state.is_terminal:
            return self.terminate(record, result.next_state, result.close_reason or "closed_by_adapter")
        return None

    def activate(self, record: ChannelRecord) -> Followups:
        """Every invitee acked: the channel becomes ACTIVE; returns the opened envelope to settle.

        The creator's :attr:`ChannelRecord.first` envelope is accepted right after it (so
        one commit holds the last ack, opened and the first text) and delivered when
        :meth:`settle` has delivered opened; if it is refused, the channel closes
        (``first_message_refused``) and the refusal waits in ``first_refused``.
        """
        record.metadata.state = ChannelState.ACTIVE
        self.announce("opened", record)
        participants = record.metadata.participant_ids()
        followups = [self.commit_hub_event(record, EV_CHANNEL_OPENED, {"participants": participants})]
        first, record.first = record.first, None
        if first is not None:
            try:
                record.first_accepted = self.accept(record, first, first.sender_id)
            except HubbubError as exc:
                record.first_refused = exc
                followups += self.terminate(record, ChannelState.CLOSED, "first_message_refused")
        return followups

    def terminate(self, record: ChannelRecord, state: ChannelState, reason: str) -> Followups:
        """Move a channel to CLOSED or EXPIRED now (``closed_at``: the closing envelope's time)."""
        meta = record.metadata
        if meta.is_terminal():
            return []
        meta.state = state
        meta.close_reason = reason
        event = EV_CHANNEL_EXPIRED if state is ChannelState.EXPIRED else EV_CHANNEL_CLOSED
        closing = self.commit_hub_event(record, event, {"reason": reason, "state": state.value})
        meta.closed_at = closing[0].created_at
        record.closing_id = closing[0].envelope_id
        self.snapshot(record, closing[0].envelope_id)
        self.announce(state.value, record)
        if self.ended is not None:
            self.ended(record)
        self._closed[record.id] = None
        return [closing]

    def announce(self, kind: str, record: ChannelRecord) -> None:
        """Tell listeners and the audit log a channel was created, opened, closed or expired."""
        meta = record.metadata
        if self._listeners.wants("on_channel_event"):
            self._listeners.emit("on_channel_event", kind, meta)
        if kind != "opened":
            self._governance.audit(
                f"channel_{kind}",
                actor=meta.creator_id,
                channel_id=meta.channel_id,
                reason=meta.close_reason,
                data={"type": meta.manifest.type, "participants": meta.participant_ids()},
            )

    def place(self, record: ChannelRecord) -> Awaitable[None] | None:
        """Write a new channel's metadata, in order with the envelopes placed before; the result
        goes to :meth:`settle`, which delivers nothing of the channel before it is durable."""
        return self._store.place_channel(record.metadata)

    def update(self, record: ChannelRecord) -> None:
        """Write a change of the channel's lifecycle, deferred (``Store.defer_channel``): the
        envelope that caused it is in the WAL, committed first, and a restart re-derives the
        change from it (``hub/recovery.py``), so nothing waits for this write."""
        forget(self._store.defer_channel(record.metadata))

    async def settle(
        self,
        record: ChannelRecord,
        followups: Followups,
        placed: Awaitable[None] | None,
    ) -> None:
        """Once the changed metadata (``placed`` by :meth:`place`) is durable, deliver the hub
        envelopes once durable and wake a waiting creator."""
        if placed is not None:
            await placed
        for envelope, durable in followups:
            if durable is not None:
                await durable
            self._dispatcher.dispatch(envelope, record.participants)
        waiter = record.activated
        meta = record.metadata
        if waiter is not None and not waiter.done() and meta.state is not ChannelState.PENDING:
            waiter.set_result(meta.state)
        first, record.first_accepted = record.first_accepted, None
        if first is not None:
            await self.complete(first)
        if meta.is_terminal() and not record.ended:
            record.ended = True  # its close is durable and delivered
            self._look_for_leavers()
