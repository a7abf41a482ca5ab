"""Channel snapshots: a channel's lifecycle record and folded adapter state as of one envelope.

The hub writes one through :meth:`Store.put_kv` every :data:`SNAPSHOT_EVERY`
envelopes of a channel and when the channel closes, right after the envelope
it covers and through the same ordered writer, so a snapshot is never durable
without every envelope it summarises. A restart loads it and folds only the
WAL after it (see ``hub/recovery.py``). Only adapters with a ``state_type``
have their state snapshotted; a terminal snapshot needs none (nothing can be
sent to a closed channel, so its state is never read again).

Snapshots are taken only where the lifecycle record is exact for the covered
envelope: after a substantive envelope (before the hub acts on it) or after a
closing one, never between an invite answer and the lifecycle change it causes.

A snapshot also bounds what a restart reads to rebuild inbox counts: per
participant, the oldest envelope up to the snapshot that may still be pending
for it (``floors``: its oldest unacked one, or one still on its way to delivery).
Without that, one participant that only ever sends (and so never acks in that
channel) would make every restart read the channel's whole WAL.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import msgspec

from ..adapters.base import ChannelAdapter
from ..model.channel import ChannelMetadata
from ..storage.base import Store

if TYPE_CHECKING:
    from .channel_record import ChannelRecord
    from .governance import Inbox

__all__ = ["SNAPSHOT_EVERY", "SNAPSHOT_PREFIX", "Snapshot", "decode_snapshot", "forget", "write_snapshot"]

log = logging.getLogger("hubbub.hub")

SNAPSHOT_EVERY = 1000
"""Envelopes per channel between two snapshots (``Hub(snapshot_every=...)`` changes it)."""
SNAPSHOT_PREFIX = "snap/"
"""Key prefix of snapshots in the store's keyed state: ``snap/<channel_id>``."""


class Snapshot(msgspec.Struct, kw_only=True, frozen=True):
    """What a restart needs of a channel up to and including ``envelope_id``."""

    envelope_id: str
    texts: int
    metadata: ChannelMetadata
    adapter: str
    version: int
    state: bytes | None = None
    """The adapter state, msgpack-encoded with the adapter's ``state_type``; None if it has none."""
    floors: dict[str, str] = msgspec.field(default_factory=dict)
    """Per participant, the oldest envelope before ``envelope_id`` it may still have pending.
    Absent: nothing before ``envelope_id`` (which itself may be)."""


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Snapshot).decode


def write_snapshot(store: Store, inbox: Inbox, record: ChannelRecord, envelope_id: str) -> None:
    """Queue the channel's snapshot as of ``envelope_id``, its last envelope (not awaited: the
    store orders it after that envelope). Channels whose adapter has no ``state_type`` get one
    only once closed."""
    metadata, adapter = record.metadata, record.adapter
    stateful = getattr(adapter, "state_type", None) is not None
    if not stateful and not metadata.is_terminal():
        return
    inflight = min(record.inflight) if record.inflight else None
    floors = {}
    for agent_id in record.participants:
        oldest = inbox.oldest(agent_id, record.id)
        floor = oldest if inflight is None or (oldest is not None and oldest < inflight) else inflight
        if floor is not None and floor < envelope_id:
            floors[agent_id] = floor
    snapshot = Snapshot(
        envelope_id=envelope_id,
        texts=record.texts,
        metadata=metadata,
        adapter=metadata.manifest.type,
        version=metadata.manifest.version,
        state=_encode(record.state) if stateful else None,
        floors=floors,
    )
    # Deferred: a snapshot only saves a restart some refolding, and it commits together with the
    # (deferred) cursors of the acks its floors reflect, never before them.
    forget(store.defer_kv(SNAPSHOT_PREFIX + record.id, _encode(snapshot)))
    record.unsnapped = 0


def decode_snapshot(data: bytes, adapter: ChannelAdapter, channel_id: str) -> tuple[Snapshot, Any] | None:
    """The snapshot and its decoded state (None when terminal and stateless), or None if unusable.

    Unusable (the hub then refolds from the start, which is always right): it does
    not decode, belongs to another channel or adapter, or holds a state that the
    adapter's current ``state_type`` cannot read, or none while the channel is open.
    """
    try:
        snap = _decode(data)
    except msgspec.DecodeError as exc:
        log.warning("snapshot of channel %s does not decode (%s); refolding its WAL", channel_id, exc)
        return None
    manifest = adapter.manifest
    if (
        snap.metadata.channel_id != channel_id
        or snap.adapter != manifest.type
        or snap.version != manifest.version
    ):
        return None
    if snap.metadata.is_terminal() and snap.state is None:
        return snap, None
    state_type = getattr(adapter, "state_type", None)
    if state_type is None or snap.state is None:
        return None
    try:
        return snap, msgspec.msgpack.decode(snap.state, type=state_type)
    except (msgspec.DecodeError, TypeError) as exc:
        log.warning("snapshot state of channel %s does not decode (%s); refolding its WAL", channel_id, exc)
        return None


def forget(result: Awaitable[None] | None) -> None:
    """Let a write the caller does not await complete on its own (its order is fixed already).

    A failed write stops the store, so the next awaited write reports the failure;
    this only keeps asyncio from logging the unretrieved exception a second time.
    """
    if inspect.iscoroutine(result):
        result = asyncio.ensure_future(result)
    add_done_callback = getattr(result, "add_done_callback", None)
    if add_done_callback is not None:
        add_done_callback(_consume)


def _consume(future: Any) -> None:
    if not future.cancelled():
        future.exception()
