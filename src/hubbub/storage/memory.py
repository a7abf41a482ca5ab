"""``MemoryStore``: the whole store in dicts and lists, for tests and throwaway hubs.

Each channel's WAL is a list plus a parallel list of ids; envelope ids in one
channel are strictly increasing, so ``since``/``until`` cursors are bisects.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Awaitable, Iterable

import msgspec

from ..errors import StorageError
from ..model._time import iso_now, to_iso
from ..model.audit import AuditQuery, AuditRecord
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope
from .base import AgentRecord, Store, Unknown, channel_page
from .retention import COMPACTED_PREFIX, CompactionReport, RetentionPolicy, choose_closed

__all__ = ["MemoryStore"]


class _Wal:
    __slots__ = ("by_causation", "by_key", "envelopes", "floor", "ids", "index")

    def __init__(self, floor: str | None = None) -> None:
        self.floor = floor  # the last id before a compaction emptied it: ids still strictly increase
        self.envelopes: list[Envelope] = []
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.by_causation: dict[tuple[str, str], int] = {}
        self.by_key: dict[tuple[str, str], str] = {}


class MemoryStore(Store):
    """Everything in memory; lost when the process ends."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentRecord] = {}
        self._channels: dict[str, ChannelMetadata] = {}
        self._wals: dict[str, _Wal] = {}
        self._cursors: dict[tuple[str, str], str] = {}
        self._audit: list[AuditRecord] = []
        self._kv: dict[str, bytes] = {}
        self._retired: set[str] = set()

    async def put_agent(self, record: AgentRecord) -> None:
        assert record.passport.agent_id is not None
        self._agents[record.passport.agent_id] = record

    async def delete_agent(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)

    async def load_agents(self) -> list[AgentRecord]:
        return list(self._agents.values())

    def place_channel(self, metadata: ChannelMetadata) -> Awaitable[None] | None:
        self._channels[metadata.channel_id] = metadata
        return None

    async def load_channels(self) -> list[ChannelMetadata]:
        return [m for m in self._channels.values() if m.channel_id not in self._retired]

    async def scan_channels(self, *, before: str | None = None, limit: int = 100) -> list[ChannelMetadata]:
        return channel_page(self._channels.values(), before, limit)

    def retire_channel(
        self, channel_id: str, agent_ids: Iterable[str], keys: Iterable[str]
    ) -> Awaitable[None] | None:
        self._retired.add(channel_id)
        for agent_id in agent_ids:
            self._cursors.pop((agent_id, channel_id), None)
        for key in keys:
            self._kv.pop(key, None)
        return None

    async def get_channel(self, channel_id: str) -> ChannelMetadata | None:
        return self._channels.get(channel_id)

    def append(self, envelope: Envelope) -> Awaitable[None] | None:
        wal = self._wals.get(envelope.channel_id)
        if wal is None:
            wal = self._wals[envelope.channel_id] = _Wal()
        last = wal.ids[-1] if wal.ids else wal.floor
        if last is not None and envelope.envelope_id <= last:
            raise StorageError(
                f"envelope {envelope.envelope_id!r} cannot follow {last!r} in channel "
                f"{envelope.channel_id}: envelope ids in a channel must strictly increase "
                "(stamp envelopes with the hub's MonotonicIds)",
                channel_id=envelope.channel_id,
                reason="out_of_order",
            )
        position = len(wal.envelopes)
        wal.envelopes.append(envelope)
        wal.ids.append(envelope.envelope_id)
        wal.index[envelope.envelope_id] = position
        if envelope.causation_id is not None:
            wal.by_causation.setdefault((envelope.sender_id, envelope.causation_id), position)
        if envelope.idempotency_key is not None:
            wal.by_key.setdefault((envelope.sender_id, envelope.idempotency_key), envelope.envelope_id)
        return None

    async def read_wal(
        self, channel_id: str, *, since: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[Envelope]:
        wal = self._wals.get(channel_id)
        if wal is None:
            return []
        start = bisect_right(wal.ids, since) if since else 0
        end = bisect_right(wal.ids, until) if until else len(wal.ids)
        if limit is not None:
            end = min(end, start + max(limit, 0))
        return wal.envelopes[start:end]

    async def read_wal_tail(self, channel_id: str, limit: int, *, until: str | None = None) -> list[Envelope]:
        wal = self._wals.get(channel_id)
        if wal is None:
            return []
        end = bisect_right(wal.ids, until) if until else len(wal.ids)
        return wal.envelopes[max(0, end - max(limit, 0)) : end]

    async def wal_length(self, channel_id: str) -> int:
        wal = self._wals.get(channel_id)
        return len(wal.envelopes) if wal else 0

    async def get_envelope(self, channel_id: str, envelope_id: str) -> Envelope | None:
        wal = self._wals.get(channel_id)
        if wal is None:
            return None
        position = wal.index.get(envelope_id)
        return None if position is None else wal.envelopes[position]

    async def find_by_causation(self, channel_id: str, sender_id: str, causation_id: str) -> Envelope | None:
        wal = self._wals.get(channel_id)
        if wal is None:
            return None
        position = wal.by_causation.get((sender_id, causation_id))
        return None if position is None else wal.envelopes[position]

    def recent_reply(self, channel_id: str, sender_id: str, causation_id: str) -> Envelope | Unknown | None:
        wal = self._wals.get(channel_id)
        if wal is None:
            return None
        position = wal.by_causation.get((sender_id, causation_id))
        return None if position is None else wal.envelopes[position]

    def recent_wal(self, channel_id: str, *, until: str, limit: int | None) -> list[Envelope] | Unknown:
        wal = self._wals.get(channel_id)
        if wal is None:
            return []
        end = bisect_right(wal.ids, until)
        return wal.envelopes[0 if limit is None else max(0, end - max(limit, 0)) : end]

    async def find_by_idempotency_key(self, channel_id: str, sender_id: str, key: str) -> str | None:
        wal = self._wals.get(channel_id)
        return None if wal is None else wal.by_key.get((sender_id, key))

    def place_cursor(self, agent_id: str, channel_id: str, envelope_id: str) -> Awaitable[None] | None:
        self._cursors[(agent_id, channel_id)] = envelope_id
        return None

    async def load_cursors(self) -> dict[tuple[str, str], str]:
        return dict(self._cursors)

    def put_kv(self, key: str, value: bytes) -> Awaitable[None] | None:
        self._kv[key] = bytes(value)
        return None

    def delete_kv(self, key: str) -> Awaitable[None] | None:
        self._kv.pop(key, None)
        return None

    async def get_kv(self, key: str) -> bytes | None:
        return self._kv.get(key)

    async def scan_kv(self, prefix: str) -> dict[str, bytes]:
        return {k: self._kv[k] for k in sorted(self._kv) if k.startswith(prefix)}

    def place_audit(self, record: AuditRecord) -> Awaitable[None] | None:
        self._audit.append(record)
        return None

    async def compact(
        self, policy: RetentionPolicy, *, dry_run: bool = False, now: float | None = None
    ) -> CompactionReport:
        now = time.time() if now is None else now
        compacted: list[str] = []
        envelopes = 0
        if policy.drops_wals:
            candidates = [
                (metadata, len(wal.envelopes))
                for channel_id, metadata in self._channels.items()
                if (wal := self._wals.get(channel_id)) is not None
            ]
            for channel_id in choose_closed(policy, now, candidates):
                wal = self._wals[channel_id]
                compacted.append(channel_id)
                envelopes += len(wal.envelopes)
                if not dry_run:
                    self._wals[channel_id] = _Wal(floor=wal.ids[-1])
                    if channel_id not in self._retired:  # nobody owes it an ack any more
                        for agent_id in self._channels[channel_id].participant_ids():
                            self._cursors[(agent_id, channel_id)] = wal.ids[-1]
                    mark = {"at": iso_now(), "envelopes": len(wal.envelopes)}
                    self._kv[COMPACTED_PREFIX + channel_id] = msgspec.json.encode(mark)
        kept = self._audit
        if policy.audit_after is not None:
            before = to_iso(now - policy.audit_after)
            kept = [record for record in kept if record.at >= before]
        if policy.audit_max_rows is not None and len(kept) > policy.audit_max_rows:
            excess = len(kept) - policy.audit_max_rows
            oldest = sorted(range(len(kept)), key=lambda i: kept[i].at)[:excess]  # stable: write order
            dropped = set(oldest)
            kept = [record for i, record in enumerate(kept) if i not in dropped]
        audit = len(self._audit) - len(kept)
        if not dry_run:
            self._audit = kept
        return CompactionReport(
            channels=len(compacted),
            envelopes=envelopes,
            audit_records=audit,
            dry_run=dry_run,
            channel_ids=tuple(compacted),
        )

    async def read_audit(self, query: AuditQuery) -> list[AuditRecord]:
        found = [record for record in self._audit if query.matches(record)]
        found.sort(key=_at)  # stable: equal times stay in write order
        limit = max(query.limit, 0)
        if query.tail:
            return found[max(len(found) - limit, 0) :] if limit else []
        return found[:limit]


def _at(record: AuditRecord) -> str:
    return record.at
