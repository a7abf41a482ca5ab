"""Starting a hub from its store, so that it resumes exactly where it stopped (or was killed).

What a restart restores, and from where:

* Agents and ack cursors: as stored.
* A channel's lifecycle (state, pending acks, rejections, close reason and
  time): re-derived from the WAL's control events, starting from its last
  snapshot or from the record as created. The stored record is written after
  the envelope that changed it, so a crash between the two leaves it behind the
  WAL; the derived record replaces it. A lifecycle step cut off by the crash
  (every invitee acked but no ``opened`` yet, a reject or an adapter's
  auto-close without its ``closed``) is completed now.
* Adapter state: the last snapshot (``hub/snapshots.py``) folded on with the
  WAL after it; the whole WAL for adapters without ``state_type``. A channel
  that is closed or expired is not folded at all (nothing can be sent to it)
  when its closing snapshot is there; snapshots are deferred writes, so a
  crash may lose it, and then the channel is folded like an open one.
* Inbox counts: per channel and registered participant, the substantive
  envelopes addressed to it after its cursor, minus those marked dropped
  (marks persist as ``drop/<agent>/<channel>/<envelope>``).
* Expectations: violations already decided (``fired/<channel>/<key>``) never
  fire again; the watch resumes from the WAL's last text and ``opened`` time.
* Open mirrored tasks and their TTLs (``task/<agent>/<task>``, see ``hub/tasks.py``).
* Delegated tasks, their attempts and TTLs (``dtask/<task>``, see ``hub/_task_restore.py``).
* Channel TTLs and invite ack deadlines: from the channel record.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import HubbubError
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
from ..model.ids import id_time_ns
from .channel_record import ChannelRecord
from .delivery import recipients_of
from .snapshots import SNAPSHOT_PREFIX, Snapshot, decode_snapshot, forget
from .tasks import TASK_PREFIX

if TYPE_CHECKING:
    from .core import Hub

__all__ = ["DROP_PREFIX", "FIRED_PREFIX", "Recovery"]

log = logging.getLogger("hubbub.hub")

DROP_PREFIX = "drop/"
FIRED_PREFIX = "fired/"
_PAGE = 1000
_TEXTS = frozenset({EV_TEXT, EV_PACKET})
_encode = msgspec.json.Encoder().encode
_Bound = tuple[str | None, str | None]
"""A participant's cursor (counts start after it) and floor (counts start at it), None = no bound."""


class Recovery:
    """Loads a hub's state at start and persists, as they happen, the few facts a restart needs."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._cursors: dict[tuple[str, str], str] = {}
        hub.governance.inbox.on_drop = self._persist_drop
        hub.expectations.on_fired = self._persist_fired

    # persisting, in order with the WAL, never awaited on the post path

    def _persist_drop(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        self._put(f"{DROP_PREFIX}{agent_id}/{channel_id}/{envelope_id}")

    def _persist_fired(self, channel_id: str, key: tuple[Any, ...]) -> None:
        self._put(f"{FIRED_PREFIX}{channel_id}/{_encode(list(key)).decode()}")

    def _put(self, key: str) -> None:
        try:
            forget(self.hub.store.put_kv(key, b""))
        except HubbubError as exc:  # the store failed: the next post reports it
            log.warning("could not persist %s: %s", key, exc)

    # start-up

    async def run(self) -> None:
        """Load everything; on return the hub serves exactly what it served before it stopped."""
        hub, store = self.hub, self.hub.store
        for agent in await store.load_agents():
            hub.registry.add(agent)
        self._cursors = await store.load_cursors()
        hub.delivery.load_cursors(self._cursors)
        drops = await self._load_drops()
        snapshots = await store.scan_kv(SNAPSHOT_PREFIX)
        fired = await self._load_fired()
        for metadata in await store.load_channels():
            channel_id = metadata.channel_id
            snapshot = snapshots.get(SNAPSHOT_PREFIX + channel_id)
            await self._restore_channel(metadata, snapshot, fired.pop(channel_id, {}))
        for key, (agent_id, channel_id, envelope_id) in drops.items():
            if hub.channels.find(channel_id) is None:  # retired (everyone acked it) or gone
                hub.governance.inbox.dropped.discard((agent_id, envelope_id))
                forget(store.delete_kv(key))
        for keys in fired.values():  # channels the store no longer has
            for key in keys.values():
                forget(store.delete_kv(key))
        for key, data in (await store.scan_kv(TASK_PREFIX)).items():
            if not hub.tasks.restore(data):
                forget(store.delete_kv(key))
        await hub.delegations.restore()
        inbox = hub.governance.inbox
        for agent_id in list(inbox.pending):
            record = hub.registry.find(agent_id)
            if record is not None:  # the crossing was reported before the restart
                inbox.crossed_high_water(agent_id, record.rule.limits.inbox)

    async def _load_drops(self) -> dict[str, tuple[str, str, str]]:
        """Dropped deliveries still to skip; the kept ones by key: (agent, channel, envelope)."""
        store, dropped, find = self.hub.store, self.hub.governance.inbox.dropped, self.hub.registry.find
        kept: dict[str, tuple[str, str, str]] = {}
        for key in await store.scan_kv(DROP_PREFIX):
            parts = key[len(DROP_PREFIX) :].split("/")
            cursor = self._cursors.get((parts[0], parts[1])) if len(parts) == 3 else None
            if len(parts) != 3 or (cursor is not None and parts[2] <= cursor) or find(parts[0]) is None:
                forget(store.delete_kv(key))  # acked since, or its agent is gone: nothing will ask
            else:
                dropped.add((parts[0], parts[2]))
                kept[key] = (parts[0], parts[1], parts[2])
        return kept

    async def _load_fired(self) -> dict[str, dict[tuple[Any, ...], str]]:
        fired: dict[str, dict[tuple[Any, ...], str]] = {}
        for key in await self.hub.store.scan_kv(FIRED_PREFIX):
            channel_id, _, encoded = key[len(FIRED_PREFIX) :].partition("/")
            try:
                fired.setdefault(channel_id, {})[tuple(msgspec.json.decode(encoded))] = key
            except (msgspec.DecodeError, TypeError):
                forget(self.hub.store.delete_kv(key))
        return fired

    async def _restore_channel(
        self, stored: ChannelMetadata, snapshot: bytes | None, fired: dict[tuple[Any, ...], str]
    ) -> None:
        hub, store = self.hub, self.hub.store
        adapter = hub.adapters.get(stored.manifest.type, stored.manifest.version)
        channel_id = stored.channel_id
        loaded = decode_snapshot(snapshot, adapter, channel_id) if snapshot is not None else None
        closing = loaded if loaded is not None and loaded[0].metadata.is_terminal() else None
        if stored.is_terminal() and closing is not None:
            # Not folded: nothing can be sent to it. Its closing snapshot has the final state.
            at_close, final = closing
            record = ChannelRecord(stored, adapter, adapter.initial_state(stored) if final is None else final)
            record.texts = at_close.texts
            record.closing_id = at_close.envelope_id  # a closing snapshot is as of its close
            hub.channels.add(record)
            await self._count_closed(record, at_close)
            for key in fired.values():
                forget(store.delete_kv(key))
            return
        # Open, or closed with its closing snapshot lost (snapshots are deferred writes): fold on.
        snap: Snapshot | None = None
        if loaded is not None:
            snap, state = loaded
            meta, since, texts = snap.metadata, snap.envelope_id, snap.texts
            if state is None:
                state = adapter.initial_state(meta)
        else:
            meta, since, texts = _as_created(stored), None, 0
            state = adapter.initial_state(meta)
        bounds = self._bounds(meta, snap)
        start = await self._read_start(channel_id, [*_lows(bounds), (since, False)])
        folded, last, last_text, opened_at = 0, None, None, None
        participants = meta.participant_ids()
        while batch := await store.read_wal(channel_id, since=start, limit=_PAGE):
            for envelope in batch:
                if since is None or envelope.envelope_id > since:
                    state = adapter.fold(state, envelope)
                    folded += 1
                    if envelope.event_type in _TEXTS:
                        texts += 1
                        last_text = envelope
                    elif envelope.event_type == EV_CHANNEL_OPENED:
                        opened_at = id_time_ns(envelope.envelope_id) / 1e9
                    _derive(meta, envelope)
                self._count(envelope, participants, bounds)
            last = batch[-1]
            start = last.envelope_id
            if len(batch) < _PAGE:
                break
        last_id = last.envelope_id if last is not None and folded else since
        record = ChannelRecord(meta, adapter, state)
        record.texts = texts
        hub.channels.add(record)
        record.unsnapped = folded
        if last_id is not None:
            hub._ids.advance_past(last_id)
            if folded >= hub.channels.snapshot_every:  # the next restart need not fold these again
                hub.channels.snapshot(record, last_id)
        if meta != stored:
            await store.put_channel(meta)
        if meta.is_terminal():
            if last is not None and last.event_type in (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED):
                record.closing_id = last.envelope_id
                hub.channels.snapshot(record, last.envelope_id)  # the next restart need not fold it
            elif snap is not None and snap.metadata.is_terminal():
                record.closing_id = snap.envelope_id  # closed at its snapshot; only the row was lost
            for key in fired.values():
                forget(store.delete_kv(key))
            return
        if last_id is not None:
            tail = last if last is not None and folded else await store.get_envelope(channel_id, last_id)
            await self._complete(record, tail)
        hub.lifecycle.schedule(record)
        hub.expectations.start(record)
        if hub.expectations.is_watching(channel_id):
            if meta.state is ChannelState.ACTIVE:
                if last_text is None and since is not None:
                    last_text = await self._last_text(channel_id, since)
                if opened_at is None:
                    opened_at = await self._opened_at(record)
            await hub.expectations.resume(record, opened_at=opened_at, last_text=last_text, fired=set(fired))

    def _bounds(self, meta: ChannelMetadata, snap: Snapshot | None) -> dict[str, _Bound]:
        """Per registered participant: its cursor, and the snapshot's floor of what it may have pending."""
        find, channel_id = self.hub.registry.find, meta.channel_id
        return {
            p: (
                self._cursors.get((p, channel_id)),
                None if snap is None else snap.floors.get(p, snap.envelope_id),
            )
            for p in meta.participant_ids()
            if find(p) is not None
        }

    async def _read_start(self, channel_id: str, lows: list[tuple[str | None, bool]]) -> str | None:
        """The ``since`` that reads every envelope above the lowest bound (id, inclusive?)."""
        if not lows or any(low is None for low, _ in lows):
            return None
        low, inclusive = min(lows, key=lambda bound: (bound[0], not bound[1]))
        assert low is not None
        if not inclusive:
            return low
        before = await self.hub.store.read_wal_tail(channel_id, 2, until=low)
        return before[0].envelope_id if len(before) == 2 else None

    def _count(self, envelope: Envelope, participants: list[str], bounds: dict[str, _Bound]) -> None:
        """Count ``envelope`` in the inbox of each recipient that has not acked it (as delivery did)."""
        if is_bypass_event(envelope.event_type):
            return
        envelope_id = envelope.envelope_id
        inbox = self.hub.governance.inbox
        for agent_id in recipients_of(envelope, participants):
            bound = bounds.get(agent_id)
            if bound is None:
                continue
            cursor, floor = bound
            if (
                (cursor is None or cursor < envelope_id)
                and (floor is None or floor <= envelope_id)
                and (agent_id, envelope_id) not in inbox.dropped
            ):
                inbox.add(agent_id, envelope.channel_id, envelope_id)

    async def _count_closed(self, record: ChannelRecord, closing: Snapshot | None) -> None:
        """Inbox counts of a closed channel: only participants that may have some pending need a read."""
        store, channel_id = self.hub.store, record.id
        bounds = self._bounds(record.metadata, closing)
        if closing is not None:  # past its floor, only the closing envelope: never counted
            # An agent that acked the closing envelope has nothing of the channel pending.
            done = record.closing_id or ""
            bounds = {a: b for a, b in bounds.items() if a in closing.floors and (b[0] or "") < done}
        elif bounds:
            tail = await store.read_wal_tail(channel_id, 1)
            last_id = tail[0].envelope_id if tail else ""
            bounds = {a: b for a, b in bounds.items() if b[0] is None or b[0] < last_id}
        if not bounds:
            return
        start = await self._read_start(channel_id, _lows(bounds))
        while batch := await store.read_wal(channel_id, since=start, limit=_PAGE):
            for envelope in batch:
                self._count(envelope, record.participants, bounds)
            start = batch[-1].envelope_id
            if len(batch) < _PAGE:
                break

    async def _complete(self, record: ChannelRecord, last: Envelope | None) -> None:
        """Finish a lifecycle step the crash cut off between an envelope and its consequence."""
        channels, meta = self.hub.channels, record.metadata
        followups = None
        if meta.state is ChannelState.PENDING:
            if meta.rejected_by:
                followups = channels.terminate(record, ChannelState.CLOSED, "invite_rejected")
            elif not meta.pending_acks:
                followups = channels.activate(record)
        elif meta.state is ChannelState.ACTIVE and last is not None and not is_control_event(last.event_type):
            result = record.adapter.on_accepted(meta, record.state, last)
            if result.next_state is not None and result.next_state.is_terminal:
                reason = result.close_reason or "closed_by_adapter"
                followups = channels.terminate(record, result.next_state, reason)
        if followups:
            log.info("channel %s: completing %s after a restart", record.id, meta.state.value)
            channels.update(record)
            await channels.settle(record, followups, None)

    async def _last_text(self, channel_id: str, until: str) -> Envelope | None:
        """The last text or packet at or before ``until``, read backwards a page at a time."""
        store = self.hub.store
        bound: str | None = until
        while bound is not None:
            page = await store.read_wal_tail(channel_id, _PAGE, until=bound)
            earlier = page if bound == until else page[:-1]  # ``until`` is inclusive
            for envelope in reversed(earlier):
                if envelope.event_type in _TEXTS:
                    return envelope
            bound = page[0].envelope_id if len(page) == _PAGE else None
        return None

    async def _opened_at(self, record: ChannelRecord) -> float | None:
        """When the channel opened: its ``opened`` envelope follows the invites and their answers."""
        head = await self.hub.store.read_wal(record.id, limit=4 * len(record.participants) + 8)
        for envelope in head:
            if envelope.event_type == EV_CHANNEL_OPENED:
                return id_time_ns(envelope.envelope_id) / 1e9
        return None


def _lows(bounds: dict[str, _Bound]) -> list[tuple[str | None, bool]]:
    """Where each participant's count must start reading: past its cursor, or at its floor if later."""
    return [
        (floor, True) if floor is not None and (cursor is None or cursor < floor) else (cursor, False)
        for cursor, floor in bounds.values()
    ]


def _as_created(stored: ChannelMetadata) -> ChannelMetadata:
    """The record as the hub created it: PENDING, every invitee yet to ack."""
    invitees = [p.agent_id for p in stored.participants if p.agent_id != stored.creator_id]
    return msgspec.structs.replace(
        stored,
        state=ChannelState.PENDING,
        closed_at=None,
        close_reason="",
        pending_acks=invitees if stored.required_acks != 0 else [],  # broadcasts invite nobody
        rejected_by=[],
    )


def _derive(meta: ChannelMetadata, envelope: Envelope) -> None:
    """Apply one envelope's lifecycle effect, as the live hub did when it accepted it."""
    event_type = envelope.event_type
    if event_type == EV_CHANNEL_INVITE_ACK:
        meta.pending_acks = [a for a in meta.pending_acks if a != envelope.sender_id]
    elif event_type == EV_CHANNEL_INVITE_REJECT:
        meta.rejected_by = [*meta.rejected_by, envelope.sender_id]
        meta.pending_acks = [a for a in meta.pending_acks if a != envelope.sender_id]
    elif event_type == EV_CHANNEL_OPENED:
        meta.state = ChannelState.ACTIVE
    elif event_type in (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED):
        meta.end_with(envelope)
