"""The ``Store`` interface: everything the hub persists, behind one small ABC.

The hub cannot tell implementations apart. Ordering contract for the WAL:
:meth:`Store.append` fixes the envelope's place in the log *when it is
called* (synchronously) and returns an awaitable that completes when the
envelope is durable under the store's durability setting, or None when it
already is. So the hub can stamp, append and fold under no lock, and await
durability before it delivers.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Iterable
from typing import Final

import msgspec

from ..errors import UsageError
from ..model.audit import AuditQuery, AuditRecord
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope
from ..model.identity import Passport, Resume
from ..model.rule import Rule
from .retention import CompactionReport, RetentionPolicy

__all__ = ["UNKNOWN", "AgentRecord", "Store", "Unknown", "channel_page"]


class Unknown:
    __slots__ = ()


UNKNOWN: Final = Unknown()
"""A store cannot answer from memory: ask it (await the read)."""


class AgentRecord(msgspec.Struct, kw_only=True):
    """One registered agent as stored: identity, claims and rule."""

    passport: Passport
    resume: Resume
    rule: Rule
    skill_md: str | None = None


class Store(abc.ABC):
    """Persistence for agents, channels, WAL envelopes and ack cursors."""

    # agents
    @abc.abstractmethod
    async def put_agent(self, record: AgentRecord) -> None:
        """Insert or replace an agent by ``record.passport.agent_id``."""

    @abc.abstractmethod
    async def delete_agent(self, agent_id: str) -> None:
        """Forget an agent (its WAL envelopes stay)."""

    @abc.abstractmethod
    async def load_agents(self) -> list[AgentRecord]:
        """Every stored agent, for hub start-up."""

    # channels
    @abc.abstractmethod
    def place_channel(self, metadata: ChannelMetadata) -> Awaitable[None] | None:
        """Insert or replace a channel's metadata as it is now, placed now in order with WAL appends
        and every other write.

        Like :meth:`append`: await the result (if not None) for durability. So the hub can write an
        envelope and the metadata change it caused in one commit.
        """

    def defer_channel(self, metadata: ChannelMetadata) -> Awaitable[None] | None:
        """:meth:`place_channel` that may commit later, with the deferred writes (see
        :meth:`place_cursor`), never before writes placed earlier: for a change of a channel
        the hub can re-derive from its WAL (its lifecycle). By default the same as
        :meth:`place_channel`."""
        return self.place_channel(metadata)

    async def put_channel(self, metadata: ChannelMetadata) -> None:
        """Insert or replace a channel's metadata; returns once it is durable."""
        durable = self.place_channel(metadata)
        if durable is not None:
            await durable

    @abc.abstractmethod
    async def load_channels(self) -> list[ChannelMetadata]:
        """Every stored channel, for hub start-up."""

    def retire_channel(
        self, channel_id: str, agent_ids: Iterable[str], keys: Iterable[str]
    ) -> Awaitable[None] | None:
        """A closed channel every registered participant acked and the hub no longer keeps in memory: it
        takes no more envelopes or cursors. Its metadata and WAL stay readable (:meth:`get_channel`,
        :meth:`read_wal`, ...) but :meth:`load_channels` leaves it out, the cursors of ``agent_ids``
        on it are deleted and so are ``keys`` (its keyed state), all in one commit, so a hub
        start-up reads only the channels still live. Deferred like :meth:`place_cursor`. The hub
        appends nothing to a retired channel; a store need not check ids appended to it.

        By default nothing changes: the store keeps it like any other channel (correct, but
        every start-up then loads every channel ever closed). A store that implements it must
        implement :meth:`get_channel` too (the default scans :meth:`load_channels`).
        """
        return None

    async def scan_channels(self, *, before: str | None = None, limit: int = 100) -> list[ChannelMetadata]:
        """Stored channels, retired ones too, by channel id from the highest (ids are time-ordered:
        newest first): at most ``limit``, and with ``before`` (say the last id of a previous page)
        only ids below it. By default from :meth:`load_channels`; a store that implements
        :meth:`retire_channel` must override it."""
        return channel_page(await self.load_channels(), before, limit)

    async def get_channel(self, channel_id: str) -> ChannelMetadata | None:
        """One stored channel's metadata, or None (the hub asks for closed channels it no longer
        keeps in memory). By default a scan of :meth:`load_channels`: override it."""
        return next((m for m in await self.load_channels() if m.channel_id == channel_id), None)

    # WAL
    @abc.abstractmethod
    def append(self, envelope: Envelope) -> Awaitable[None] | None:
        """Place ``envelope`` at the end of its channel's WAL now; await the result (if not None)
        for durability.

        Envelope ids in a channel must strictly increase: an id at or before the channel's last
        one raises :class:`~hubbub.errors.StorageError` and takes no place.
        """

    @abc.abstractmethod
    async def read_wal(
        self, channel_id: str, *, since: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[Envelope]:
        """Envelopes with ``since < id <= until``, oldest first, at most ``limit``.

        Served from an index: the cost does not grow with the channel's length.
        """

    @abc.abstractmethod
    async def read_wal_tail(self, channel_id: str, limit: int, *, until: str | None = None) -> list[Envelope]:
        """The last ``limit`` envelopes with ``id <= until``, oldest first."""

    @abc.abstractmethod
    async def wal_length(self, channel_id: str) -> int:
        """How many envelopes the channel's WAL holds."""

    @abc.abstractmethod
    async def get_envelope(self, channel_id: str, envelope_id: str) -> Envelope | None:
        """One envelope by id, or None."""

    @abc.abstractmethod
    async def find_by_causation(self, channel_id: str, sender_id: str, causation_id: str) -> Envelope | None:
        """The first envelope ``sender_id`` posted in reply to ``causation_id``, or None."""

    @abc.abstractmethod
    async def find_by_idempotency_key(self, channel_id: str, sender_id: str, key: str) -> str | None:
        """The id of the envelope ``sender_id`` posted with ``key``, or None."""

    # answers from memory, where a store holds them: the hub's delivery path may not await a read

    def recent_reply(self, channel_id: str, sender_id: str, causation_id: str) -> Envelope | Unknown | None:
        """Like :meth:`find_by_causation` (committed envelopes only), or :data:`UNKNOWN`."""
        return UNKNOWN

    def recent_wal(self, channel_id: str, *, until: str, limit: int | None) -> list[Envelope] | Unknown:
        """Like ``read_wal(channel_id, until=until)`` (``limit`` None) or ``read_wal_tail(channel_id,
        limit, until=until)``, committed envelopes only, or :data:`UNKNOWN`."""
        return UNKNOWN

    # delivery cursors
    @abc.abstractmethod
    def place_cursor(self, agent_id: str, channel_id: str, envelope_id: str) -> Awaitable[None] | None:
        """Record that ``agent_id`` acked everything in ``channel_id`` up to ``envelope_id``, placed
        now in order like :meth:`put_kv`; await the result (if not None) for durability.

        A store may let a cursor wait a little for other writes to commit with (an ack lost
        in a crash only means a redelivery), so await it only where durability matters more
        than latency.
        """

    async def set_cursor(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        """:meth:`place_cursor`, returning once the cursor is durable."""
        durable = self.place_cursor(agent_id, channel_id, envelope_id)
        if durable is not None:
            await durable

    @abc.abstractmethod
    async def load_cursors(self) -> dict[tuple[str, str], str]:
        """Every ``(agent_id, channel_id) → envelope_id`` cursor."""

    # keyed state: snapshots and the small records a restart needs (see hub/recovery.py)
    @abc.abstractmethod
    def put_kv(self, key: str, value: bytes) -> Awaitable[None] | None:
        """Set ``key`` to ``value``, placed now in order with WAL appends and every other write.

        Like :meth:`append`: await the result (if not None) for durability. A value
        written after an envelope is never durable without that envelope.
        """

    def defer_kv(self, key: str, value: bytes) -> Awaitable[None] | None:
        """:meth:`put_kv` that may commit later, with the deferred writes (see :meth:`place_cursor`),
        never before writes placed earlier: for state that only saves work (a snapshot), never for
        state the hub cannot do without. By default the same as :meth:`put_kv`."""
        return self.put_kv(key, value)

    @abc.abstractmethod
    def delete_kv(self, key: str) -> Awaitable[None] | None:
        """Forget ``key`` (no error if absent), placed now in order like :meth:`put_kv`."""

    @abc.abstractmethod
    async def get_kv(self, key: str) -> bytes | None:
        """The value of ``key``, or None."""

    @abc.abstractmethod
    async def scan_kv(self, prefix: str) -> dict[str, bytes]:
        """Every key starting with ``prefix``, with its value, in key order."""

    # audit
    @abc.abstractmethod
    def place_audit(self, record: AuditRecord) -> Awaitable[None] | None:
        """Persist one audit record, placed now in order like :meth:`put_kv` (so it commits with
        the envelopes of the same turn); await the result (if not None) for durability."""

    async def append_audit(self, record: AuditRecord) -> None:
        """:meth:`place_audit`, returning once the record is durable."""
        durable = self.place_audit(record)
        if durable is not None:
            await durable

    @abc.abstractmethod
    async def read_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Audit records matching ``query``, oldest first (by ``at``; equal times in write order);
        the first ``limit`` of them, or the last with ``query.tail``."""

    # retention
    async def compact(
        self, policy: RetentionPolicy, *, dry_run: bool = False, now: float | None = None
    ) -> CompactionReport:
        """Drop what ``policy`` no longer retains (see :mod:`hubbub.storage.retention`); with
        ``dry_run``, only count it. ``now`` (POSIX time) is the clock ages are measured against.

        Safe while a hub runs on the store: deletes are placed in order with every other write.
        A compacted channel that is not retired has every participant's cursor moved to its
        last envelope: nothing of it can be delivered or acked any more, so nobody owes it an
        ack (else it could never leave a hub's memory). Stores that cannot compact raise
        :class:`~hubbub.errors.UsageError`.
        """
        raise UsageError(f"{type(self).__name__} does not support compaction")

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Flush and release resources."""


def channel_page(
    channels: Iterable[ChannelMetadata], before: str | None, limit: int
) -> list[ChannelMetadata]:
    """:meth:`Store.scan_channels` over some channels."""
    below = [m for m in channels if before is None or m.channel_id < before]
    below.sort(key=lambda m: m.channel_id, reverse=True)
    return below[: max(limit, 0)]
