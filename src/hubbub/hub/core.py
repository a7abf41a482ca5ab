"""The hub: one object that owns the registry, the channels and delivery.

Use it embedded (``async with Hub() as hub``) and reach it from clients
through a link (``HubClient(LocalLink(hub))``). Every public method here is
also a control-plane op a remote client can call (see ``hub/session.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from ..adapters.base import AgentReply, ChannelAdapter
from ..adapters.registry import AdapterRegistry
from ..auth import AuthRegistry
from ..errors import ChannelRuleError, NotFoundError, UsageError
from ..model._time import to_iso
from ..model.channel import ChannelMetadata, ChannelState, Expectation
from ..model.checkpoint import MAX_CHECKPOINT_BYTES
from ..model.envelope import EV_TEXT, Envelope
from ..model.ids import MonotonicIds, make_id
from ..model.turn import PendingTurn, TurnContext
from ..storage.base import Store
from ..storage.memory import MemoryStore
from ..storage.retention import CompactionReport, RetentionPolicy
from .arbiter import HubArbiter
from .audit import AuditLog
from .broadcast import Broadcasts
from .channel_record import ChannelRecord
from .channels import KEEP_CLOSED, Channels
from .checkpoints import Checkpoints
from .deadlines import Deadlines
from .delegation import Delegations
from .delegation_api import DelegationApi
from .delivery import Delivery, Endpoint
from .dispatch import Dispatcher
from .expectations import Expectations, ViolationHandler
from .governance import Governance
from .identity_api import IdentityApi
from .lifecycle import Lifecycle
from .listeners import HubListener, Listeners
from .recovery import Recovery
from .redelivery import MAX_DELIVERY_ATTEMPTS, NACK_BACKOFF, Redelivery
from .registry import Registry
from .retention import compact
from .snapshots import SNAPSHOT_EVERY, SNAPSHOT_PREFIX, forget
from .tasks import TaskBook
from .turns import Turns

__all__ = ["Hub"]


class Hub(IdentityApi, DelegationApi):
    """An agent hub. ``store`` defaults to a :class:`MemoryStore`.

    ``invite_ack_timeout`` (seconds) bounds how long an open waits for invitees.
    ``snapshot_every`` is how many envelopes of a channel pass between two
    snapshots of its state, which bound what a restart refolds.
    A nacked delivery comes back after ``nack_backoff`` (initial, max seconds; doubling)
    until ``max_delivery_attempts`` nacks dead-letter it (see ``hub/redelivery.py``).
    ``checkpoint_max_bytes`` is the largest task checkpoint it keeps (see ``hub/checkpoints.py``).
    ``keep_closed`` is how many closed channels stay in memory (the most recently closed); an
    older one leaves once every participant acked all of it, so memory does not grow with the
    number of channels ever closed. Reads of it go to the store (:meth:`fetch_channel`,
    :meth:`read_wal`, the wire ops); :meth:`get_channel`, :meth:`list_channels` and
    :meth:`status` see the channels in memory.
    Call :meth:`start` (or use ``async with``) before anything else.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        invite_ack_timeout: float = 30.0,
        auth: AuthRegistry | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
        nack_backoff: tuple[float, float] = NACK_BACKOFF,
        max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS,
        checkpoint_max_bytes: int = MAX_CHECKPOINT_BYTES,
        keep_closed: int = KEEP_CLOSED,
    ) -> None:
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise UsageError(f"snapshot_every must be an int of 1 or more, got {snapshot_every!r}")
        if isinstance(keep_closed, bool) or not isinstance(keep_closed, int) or keep_closed < 0:
            raise UsageError(f"keep_closed must be an int of 0 or more, got {keep_closed!r}")
        self.store: Store = store if store is not None else MemoryStore()
        self.auth = auth if auth is not None else AuthRegistry()
        self.hub_id = make_id()
        self.adapters = AdapterRegistry()
        self.registry = Registry()
        self.delivery = Delivery()
        self._ids = MonotonicIds()
        self._deadlines = Deadlines()
        self.listeners = Listeners()
        self.audit = AuditLog(self.store)
        self.governance = Governance(self.listeners, self._open_channels, self.audit.write)
        self.registry.on_change.append(self.governance.rules_changed)
        self.dispatcher = Dispatcher(self.registry, self.governance, self.delivery, self.listeners)
        self.channels = Channels(
            self.store, self._ids, self.registry, self.governance, self.dispatcher, self.listeners
        )
        self.channels.snapshot_every = snapshot_every
        self.channels.keep_closed = keep_closed
        self.channels.crowded = self._evict_closed
        self.lifecycle = Lifecycle(
            self.registry,
            self.channels,
            self.adapters,
            self._deadlines,
            self.governance,
            invite_ack_timeout=invite_ack_timeout,
        )
        self.expectations = Expectations(
            self.channels, self._deadlines, self.governance, self.listeners, self.lifecycle.close
        )
        self.lifecycle.expectations = self.expectations
        self.turns = Turns(self.store, self.channels, self.registry)
        self.channels.watch = self.expectations.watch
        self.tasks = TaskBook(
            self.registry, self.store, self.listeners, self._deadlines, audit=self.governance.audit
        )
        self.redelivery = Redelivery(
            self.store,
            self.delivery,
            self.dispatcher,
            self._deadlines,
            self.governance,
            self.listeners,
            backoff=nack_backoff,
            max_attempts=max_delivery_attempts,
        )
        self.delegations = Delegations(self)
        self.listeners.add(self.delegations)
        self.broadcasts = Broadcasts(self)
        self.checkpoints = Checkpoints(self, max_bytes=checkpoint_max_bytes)
        self._recovery = Recovery(self)
        self._started = False
        self._started_at = 0.0

    # lifecycle of the hub itself

    async def start(self) -> Hub:
        """Load what the store holds and resume: channels, inboxes, expectations, tasks, deadlines.

        Register custom adapters before this; see ``hub/recovery.py`` for what is restored how.
        """
        if self._started:
            return self
        await self._recovery.run()
        self._evict_closed()
        self._started = True
        self._started_at = time.time()
        return self

    async def aclose(self) -> None:
        """Stop deadlines, let listeners drain, and close the store."""
        self._started = False
        await self._deadlines.aclose()
        await self.delegations.aclose()
        await self.listeners.aclose()
        await self.store.aclose()

    async def __aenter__(self) -> Hub:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _open_channels(self, agent_id: str) -> int:
        return self.channels.open_count(agent_id)

    async def compact(self, policy: RetentionPolicy, *, dry_run: bool = False) -> CompactionReport:
        """Drop closed channels' WALs and audit records ``policy`` no longer retains, keeping
        what this hub still needs (see :mod:`hubbub.hub.retention`); envelopes of a compacted
        channel no longer count in any inbox. ``hubbub serve`` calls it
        periodically when told to retain less than everything. What it dropped is audited
        (``store_compacted``, with the report's counts)."""
        report = await compact(self.store, policy, hub=self, dry_run=dry_run)
        if not dry_run:
            for channel_id in report.channel_ids:  # their unacked envelopes can never be acked now
                self.governance.inbox.forget_channel(channel_id)
                self._acked_compacted(channel_id)
            self._evict_closed()
        if not dry_run and (report.envelopes or report.audit_records):
            self.governance.audit(
                "store_compacted",
                data={
                    "channels": report.channels,
                    "envelopes": report.envelopes,
                    "audit_records": report.audit_records,
                },
            )
        return report

    def _acked_compacted(self, channel_id: str) -> None:
        """Every cursor on a compacted channel at its end (the store moved them too, see
        :meth:`Store.compact`): nothing of it can be acked any more, so it may leave memory."""
        record = self.channels.find(channel_id)
        end = record.closing_id if record is not None else None
        if record is None or end is None:
            return
        for agent_id in record.participants:
            if self.delivery.ack(agent_id, channel_id, end):
                # Again after the compaction: an older ack placed meanwhile must not win.
                self.store.place_cursor(agent_id, channel_id, end)

    def register_arbiter(self, arbiter: HubArbiter) -> None:
        """Consult ``arbiter`` before register, open, send and dispatch, after the rule-based one."""
        self.governance.add_arbiter(arbiter)

    def set_expectations(self, channel_type: str, expectations: list[Expectation]) -> None:
        """Replace the expectations of every new channel of ``channel_type`` (knobs can still override)."""
        self.expectations.set_for_type(channel_type, expectations)

    def register_violation_handler(self, name: str, handler: ViolationHandler) -> None:
        """Add an ``on_violation`` handler usable by expectations: ``async handler(violation)``."""
        self.expectations.register_handler(name, handler)

    def register_listener(self, listener: HubListener) -> None:
        """Observe the hub (see :class:`HubListener`); hooks run later, never on the post path."""
        self.listeners.add(listener)

    def register_adapter(self, adapter: ChannelAdapter, *, replace: bool = False) -> None:
        """Add a channel type (see :class:`~hubbub.adapters.ChannelAdapter`)."""
        self.adapters.register(adapter, replace=replace)

    # channels

    async def create_channel(
        self,
        creator_id: str,
        type: str,
        participants: list[str],
        *,
        version: int = 1,
        knobs: dict[str, Any] | None = None,
        ttl: str | float | None = None,
        labels: dict[str, str] | None = None,
        intent: str | None = None,
        first: str | None = None,
    ) -> ChannelMetadata:
        """Open a channel; returns once every invitee acked (see :class:`Lifecycle`).

        ``first``: a text the creator sends as the channel becomes active, before this
        returns (one client round trip fewer than opening, then sending; it commits with the
        last invitee's ack). If the channel refuses it, the channel is closed (reason
        ``first_message_refused``) and the refusal is raised.
        """
        return await self.lifecycle.create(
            creator_id,
            type,
            participants,
            version=version,
            knobs=knobs,
            ttl=ttl,
            labels=labels,
            intent=intent,
            first=first,
        )

    async def close_channel(self, channel_id: str, reason: str = "closed") -> ChannelMetadata:
        """Close a channel; participants get ``EV_CHANNEL_CLOSED``."""
        return await self.lifecycle.close(channel_id, reason or "closed")

    def get_channel(self, channel_id: str) -> ChannelMetadata:
        """A channel in memory (every open one, the most recent closed ones); else
        :class:`NotFoundError`. :meth:`fetch_channel` also finds closed channels that left memory."""
        record = self.channels.find(channel_id)
        if record is None:
            raise NotFoundError(
                f"no channel {channel_id!r} in this hub's memory: unknown, or closed long ago "
                "(await hub.fetch_channel() reads those from the store)",
                channel_id=channel_id,
                reason="unknown_channel",
            )
        return record.metadata

    def _evict_closed(self) -> None:
        """Closed channels beyond ``keep_closed`` leave memory once nobody needs them there."""
        for record in self.channels.evict_closed(self._may_leave):
            for agent_id in record.participants:
                self.delivery.forget(agent_id, record.id)
            # Retired in the store too: a restart loads it no more, nor its cursors or snapshot.
            keys = [SNAPSHOT_PREFIX + record.id]
            forget(self.store.retire_channel(record.id, record.participants, keys))

    def _may_leave(self, record: ChannelRecord) -> bool:
        """Nothing of the channel is in flight, unacked, or due for replay to anyone."""
        closing = record.closing_id
        if closing is None or record.inflight or record.first_accepted is not None:
            return False
        oldest, cursor, registered = self.governance.inbox.oldest, self.delivery.cursor, self.registry.find
        return all(
            registered(agent_id) is None  # unregistered: nothing will ever be replayed to it
            or (oldest(agent_id, record.id) is None and (cursor(agent_id, record.id) or "") >= closing)
            for agent_id in record.participants
        )

    async def fetch_channel(self, channel_id: str) -> ChannelMetadata:
        """A channel's metadata, from memory or (a closed channel no longer kept) the store."""
        return await self.channels.fetch(channel_id)

    def list_channels(
        self, *, agent_id: str | None = None, state: ChannelState | str | None = None, limit: int = 50
    ) -> list[ChannelMetadata]:
        """Channels, newest first, optionally only ``agent_id``'s or in ``state``."""
        records = self.channels.of_agent(agent_id) if agent_id else self.channels.all()
        metas = [r.metadata for r in records if state is None or r.metadata.state == state]
        metas.sort(key=lambda m: m.created_at, reverse=True)
        return metas[:limit]

    # envelopes

    def post_envelope(self, envelope: Envelope, *, sender_id: str | None = None) -> Awaitable[str]:
        """Post ``envelope`` as ``sender_id`` (default: its own ``sender_id``).

        After this returns the envelope is durable; deliveries happen as soon
        as it is. Raises a :class:`HubbubError` naming the channel, the agent
        and the rule when the send is refused.
        """
        # Not a coroutine itself: one less frame on the hot path.
        sender = sender_id if sender_id is not None else envelope.sender_id
        if not sender:
            raise UsageError("post_envelope needs a sender: set envelope.sender_id or pass sender_id=")
        return self.channels.post(envelope, sender)

    async def read_wal(
        self, channel_id: str, *, since: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[Envelope]:
        """Envelopes after ``since`` up to ``until``, oldest first, at most ``limit``."""
        await self.channels.fetch(channel_id)
        return await self.store.read_wal(channel_id, since=since or None, until=until, limit=limit)

    def can_send(self, channel_id: str, sender_id: str, event_type: str = EV_TEXT) -> bool:
        """Whether ``sender_id`` could send ``event_type`` to the channel right now (False for a
        channel not in memory: unknown, or closed long ago)."""
        record = self.channels.find(channel_id)
        if record is None:  # unknown, or closed long ago
            return False
        meta = record.metadata
        if sender_id not in record.members or meta.state is not ChannelState.ACTIVE:
            return False
        probe = Envelope(channel_id=channel_id, sender_id=sender_id, event_type=event_type)
        try:
            record.adapter.validate_send(meta, record.state, probe)
        except ChannelRuleError:
            return False
        return True

    async def find_envelope_by_causation(
        self, channel_id: str, sender_id: str, causation_id: str
    ) -> Envelope | None:
        """The envelope ``sender_id`` posted in reply to ``causation_id``, if any."""
        await self.channels.fetch(channel_id)
        return await self.store.find_by_causation(channel_id, sender_id, causation_id)

    def pending_turns_for(self, agent_id: str) -> list[PendingTurn]:
        """Turns the protocol expects from ``agent_id`` in its active channels."""
        return self.turns.pending_for(agent_id)

    def turn_context_now(self, envelope: Envelope, agent_id: str) -> TurnContext | None:
        """:meth:`turn_context` for a just-committed ``envelope``, if the hub can answer from
        memory (None: ask :meth:`turn_context`)."""
        return self.turns.context_now(envelope.channel_id, agent_id, envelope)

    async def turn_context(self, channel_id: str, agent_id: str, envelope_id: str) -> TurnContext:
        """Whether ``envelope_id`` puts the turn on ``agent_id``, and what it sees if so."""
        return await self.turns.context(channel_id, agent_id, envelope_id)

    async def post_reply(
        self, channel_id: str, agent_id: str, causation_id: str, reply: AgentReply
    ) -> str | None:
        """Post an agent's turn result in reply to ``causation_id`` (idempotent per agent and cause)."""
        return await self.turns.post_reply(channel_id, agent_id, causation_id, reply)

    # delivery

    def bind(self, agent_id: str, endpoint: Endpoint) -> None:
        """Deliver ``agent_id``'s envelopes to ``endpoint``."""
        record = self.registry.get(agent_id)
        self.delivery.bind(agent_id, endpoint)
        self._agent_event("connected", record.passport)

    def unbind(self, agent_id: str, endpoint: Endpoint | None = None) -> None:
        """Stop delivering to ``agent_id`` (only if still bound to ``endpoint``, when given)."""
        was = self.delivery.endpoint_of(agent_id)
        self.delivery.unbind(agent_id, endpoint)
        record = self.registry.find(agent_id)
        if was is not None and self.delivery.endpoint_of(agent_id) is None and record is not None:
            self._agent_event("disconnected", record.passport)

    async def ack(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        """``agent_id`` processed ``envelope_id``: advance its cursor for the channel."""
        self.acked(agent_id, channel_id, envelope_id)

    def acked(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        """:meth:`ack`, at once (the cursor is written with the next commit)."""
        channel = self.channels.find(channel_id)
        if channel is None:
            return  # it left memory once every cursor had passed its end: this ack is old news
        self.redelivery.acked(agent_id, channel_id, envelope_id)
        if self.delivery.ack(agent_id, channel_id, envelope_id):
            record = self.registry.find(agent_id)
            if record is not None:
                self.governance.on_ack(agent_id, channel_id, envelope_id, record.rule.limits.inbox)
            # Not awaited: the cursor may wait to commit with the next envelope (a crash before
            # then means a redelivery, which at-least-once allows).
            self.store.place_cursor(agent_id, channel_id, envelope_id)
            if channel.closing_id is not None and envelope_id >= channel.closing_id:
                self.channels.acked_to_the_end(channel)  # it may leave memory now

    def nack(self, agent_id: str, channel_id: str, envelope_id: str, reason: str = "") -> None:
        """``agent_id`` could not process ``envelope_id`` (its turn failed): it is redelivered with
        backoff, and dead-lettered after ``max_delivery_attempts`` nacks."""
        self.governance.audit(
            "turn_failed",
            agent_id=agent_id,
            channel_id=channel_id,
            reason=reason,
            data={"envelope_id": envelope_id},
        )
        if self.listeners.wants("on_turn_failed"):
            self.listeners.emit("on_turn_failed", channel_id, agent_id, envelope_id, reason)
        if self.channels.find(channel_id) is not None:  # else it left memory, everyone past its end
            self.redelivery.nack(agent_id, channel_id, envelope_id, reason)

    def register_sweeper(self, name: str, interval: float, sweep: Callable[[], Awaitable[None]]) -> None:
        """Run ``await sweep()`` every ``interval`` seconds until the hub closes (a failure is logged)."""
        if interval <= 0:
            raise UsageError(f"sweeper {name!r} needs an interval above 0 seconds, got {interval}")

        async def run() -> None:
            try:
                await sweep()
            finally:
                if self._started:
                    self._deadlines.at(("sweeper", name), time.time() + interval, run)

        self._deadlines.at(("sweeper", name), time.time() + interval, run)

    async def replay(self, agent_id: str, *, since: str | None = None) -> int:
        """Deliver again everything ``agent_id`` has not acked (past ``since`` too), per channel in order.

        New envelopes for it wait meanwhile (see :class:`~hubbub.hub.delivery.Holding`) and
        follow their channel's backlog, so nothing reaches it out of order. Paces itself on the
        endpoint's ``writable()`` (when it has one) so a long backlog never overflows a
        connection's outbox.
        """
        holding = self.delivery.hold(agent_id)
        if holding is None:
            return 0
        endpoint = holding.endpoint
        writable = getattr(endpoint, "writable", None)
        chunk = max(1, int(getattr(endpoint, "outbox_size", 2000)) // 4)
        sent = 0
        try:
            for record in self.channels.of_agent(agent_id):
                cursor = self.delivery.cursor(agent_id, record.id)
                start = max(filter(None, (cursor, since)), default=None)
                last = cursor  # what it has surely seen (not ``since``: new envelopes may be below it)
                while batch := await self.store.read_wal(record.id, since=start, limit=500):
                    for envelope in batch:
                        if self.dispatcher.replayable(envelope, agent_id):
                            endpoint.deliver(envelope, agent_id)
                            sent += 1
                            if writable is not None and sent % chunk == 0:
                                await writable()
                    last = batch[-1].envelope_id
                    if len(batch) < 500:
                        break
                    start = last
                    await asyncio.sleep(0)
                sent += holding.catch_up(record.id, last)
        finally:
            sent += self.delivery.release(holding)
        return sent

    def status(self) -> dict[str, Any]:
        """Counters for operators: agents (and how many are connected), channels and tasks by state."""
        channels = Counter(record.metadata.state.value for record in self.channels.all())
        tasks = Counter(task.state for task in self.delegations.records.tasks.values())
        return {
            "hub_id": self.hub_id,
            "started_at": to_iso(self._started_at) if self._started_at else None,
            "agents": len(self.registry),
            "connected": len(self.delivery.endpoints),
            "channels": len(self.channels),
            "channels_by_state": dict(channels),
            "tasks": sum(tasks.values()),
            "tasks_by_state": dict(tasks),
            "adapters": self.adapters.types(),
        }
