"""``SqliteStore``: the embedded default, one SQLite file in WAL mode with group commit.

Writes go to one writer thread (see ``_sqlite_writer``) in the order they are
made; reads run on a second connection in a reader thread, so neither ever
blocks the event loop; a third thread and connection checkpoint the WAL into
the file (``_sqlite_checkpointer``), so no commit waits for that. Every read is
an index lookup or an index range scan (see ``_sqlite_schema``): its cost does
not grow with a channel's length.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec

from ..errors import StorageError, UsageError
from ..model.audit import AuditQuery, AuditRecord
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope
from . import _sqlite_schema as sql
from ._sqlite_batches import TurnBatches
from ._sqlite_checkpointer import Checkpointer
from ._sqlite_compact import CompactionJob
from ._sqlite_recent import RecentEnvelopes
from ._sqlite_schema import Durability, connect, lock_file, open_database, unlock_file
from ._sqlite_writer import (
    APPEND,
    AUDIT,
    CHANNEL,
    COMPACT,
    CURSOR,
    DELETE,
    KV_DELETE,
    KV_PUT,
    PUT_AGENT,
    RETIRE,
    Batch,
    Durable,
    Writer,
)
from .base import UNKNOWN, AgentRecord, Store, Unknown
from .retention import CompactionReport, RetentionPolicy

__all__ = ["Durability", "SqliteStore"]

T = TypeVar("T")
_encode = msgspec.json.Encoder().encode


class SqliteStore(Store):
    """Everything the hub persists, in one SQLite database file at ``path``.

    Opening checks the file and refuses, with :class:`StorageError` naming the
    path and what to do, anything it cannot trust: a file that is not a SQLite
    database, one ``PRAGMA quick_check`` finds damaged, one another program
    created, or one a newer hubbub wrote (schema version above this code's).
    A new file gets the current schema; an older one is migrated in place.
    Only one store may have a file open at a time (a lock file ``<path>-lock``
    guards it), since two writers would interleave their logs. Opening blocks
    while SQLite checks the file; inside a running loop, prefer
    ``await SqliteStore.open(path)``.

    ``durability`` picks SQLite's ``synchronous`` setting, which decides what a
    commit, and so an acked post, survives. Whatever the setting, a process
    crash (``kill -9``) loses no committed transaction: the data was already
    handed to the operating system.

    - ``"full"`` (the default): the WAL file is fsynced at every commit, so an
      acked post survives an operating-system crash or power loss too (as long
      as the disk honours fsync).
    - ``"normal"``: no fsync at commit, only at checkpoints. The database stays
      consistent, but an OS crash or power loss may roll back the last commits,
      so posts acked just before it may be gone after a restart. Several times
      faster per commit.
    - ``"off"``: never fsyncs. An OS crash or power loss may lose recent
      commits *and may corrupt the database*; the next open then refuses the
      file (restore a backup). For throwaway data only.

    :meth:`append` returns a future that completes once the transaction
    holding the envelope has committed; every write made in one event-loop
    turn shares one future and one trip to the writer thread. Reads see
    committed data only: an envelope becomes visible to :meth:`read_wal` and
    the lookups once its future has completed (or shortly before), never
    while it could still be lost. The newest committed envelopes of recently
    written channels are served from memory (``_sqlite_recent``), the rest
    from SQLite. The hub awaits durability before it delivers, so nothing it
    hands out is missing from reads. If a write ever fails, the store takes
    no more writes (see ``_sqlite_writer``); restart the hub.
    """

    def __init__(self, path: str | os.PathLike[str], *, durability: Durability = "full") -> None:
        self.path = os.fspath(path)
        self.durability: Durability = durability
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise UsageError(f"SqliteStore needs a file path, not {self.path!r}; use MemoryStore in memory")
        self._lock = lock_file(self.path)
        try:
            writer_conn = open_database(self.path, durability)
            try:
                self._conn = connect(self.path, durability)
                # Per live channel: its last envelope id ("" if none yet); retired ones are not here.
                self._last_ids: dict[str, str] = dict(self._conn.execute(sql.LOAD_LAST_IDS).fetchall())
                self._any_retired = self._conn.execute(sql.ANY_RETIRED).fetchone() is not None
                checkpointer = Checkpointer(connect(self.path, durability), self.path)
            except BaseException:
                writer_conn.close()
                raise
        except BaseException:
            unlock_file(self._lock)
            raise
        self._recent = self._fresh_recent()
        self._checkpointer = checkpointer
        self._writer = Writer(writer_conn, self.path, self._settled, checkpointer)
        self._batches = TurnBatches(self._writer, self.path)
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="hubbub-sqlite-reader")
        self._decode_envelope = msgspec.json.Decoder(Envelope).decode
        self._decode_agent = msgspec.json.Decoder(AgentRecord).decode
        self._decode_channel = msgspec.json.Decoder(ChannelMetadata).decode
        self._decode_audit = msgspec.json.Decoder(AuditRecord).decode

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, durability: Durability = "full") -> SqliteStore:
        """Open (check, migrate) the database in a worker thread, off the event loop."""
        return await asyncio.to_thread(cls, path, durability=durability)

    @property
    def commits(self) -> int:
        """Transactions committed so far (group commit: usually far fewer than writes)."""
        return self._writer.commits

    @property
    def checkpoints(self) -> int:
        """Checkpoints the background thread ran so far (commits never run one themselves)."""
        return self._checkpointer.runs

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, durability={self.durability!r})"

    @property
    def _closed(self) -> bool:
        return self._batches.closed

    # writes: batched per event-loop turn in call order (_sqlite_batches), each awaitable until its
    # transaction commits

    def _submit(self, op: int, row: tuple[Any, ...], envelope: Envelope | None = None) -> Durable:
        return self._batches.place(op, row, envelope).future

    def _settled(self, batches: list[Batch], error: StorageError | None) -> None:
        """On the loop: the batches committed (error None) or failed; wake their writers."""
        for batch in batches:
            if error is None:
                self._recent.add(batch.envelopes)
                if batch.compacts:
                    # It may have emptied channels: start over from what is placed (ids placed but
                    # not yet committed only make a floor higher than needed, never wrong).
                    self._recent = self._fresh_recent()
            for future in (batch.future, *batch.riders) if batch.riders else (batch.future,):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    exc = StorageError(error.message, reason=error.reason)
                    exc.__cause__ = error.__cause__
                    future.set_exception(exc)
                    future.exception()  # retrieved: a batch nobody awaits is not an unhandled error

    def append(self, envelope: Envelope) -> Durable:
        """Queue ``envelope`` at the end of its channel's WAL now; the future completes once committed."""
        channel_id, envelope_id = envelope.channel_id, envelope.envelope_id
        last = self._last_ids.get(channel_id)
        if last is None and self._any_retired:
            # Neither placed nor loaded: it may be a retired channel, so its stored envelopes are
            # unknown here and the recent cache must not claim to hold its whole WAL.
            self._recent.distrust(channel_id, envelope_id)
        elif last is not None and envelope_id <= last:
            raise StorageError(
                f"envelope {envelope_id!r} cannot follow {last!r} in channel {channel_id}: envelope ids "
                "in a channel must strictly increase (stamp envelopes with the hub's MonotonicIds)",
                channel_id=channel_id,
                reason="out_of_order",
            )
        try:
            body = _encode(envelope)
        except (TypeError, msgspec.EncodeError):
            body = self._encode(envelope, f"envelope {envelope_id} in channel {channel_id}")  # raises
        row = (
            channel_id,
            envelope_id,
            envelope.sender_id,
            envelope.causation_id,
            envelope.idempotency_key,
            envelope.event_type,
            body,
        )
        future = self._submit(APPEND, row, envelope)
        self._last_ids[channel_id] = envelope_id
        return future

    def _encode(self, value: Any, what: str) -> bytes:
        try:
            return _encode(value)
        except (TypeError, msgspec.EncodeError) as exc:
            raise UsageError(f"{what} cannot be stored: {exc} (only JSON-encodable data can)") from exc

    async def put_agent(self, record: AgentRecord) -> None:
        agent_id = record.passport.agent_id
        if agent_id is None:
            raise UsageError("put_agent needs a stamped passport (agent_id is None)")
        await self._submit(PUT_AGENT, (agent_id, self._encode(record, f"agent {agent_id}")))

    async def delete_agent(self, agent_id: str) -> None:
        await self._submit(DELETE, (agent_id,))

    def place_channel(self, metadata: ChannelMetadata) -> Durable:
        body = self._encode(metadata, f"channel {metadata.channel_id}")
        durable = self._submit(CHANNEL, (metadata.channel_id, body))
        self._last_ids.setdefault(metadata.channel_id, "")  # live: a new channel has no envelope yet
        return durable

    def defer_channel(self, metadata: ChannelMetadata) -> Durable:
        """Deferred like :meth:`place_cursor` (reads of channels see it at once all the same)."""
        body = self._encode(metadata, f"channel {metadata.channel_id}")
        return self._batches.place(CHANNEL, (metadata.channel_id, body), defer=True).future

    def retire_channel(self, channel_id: str, agent_ids: Iterable[str], keys: Iterable[str]) -> Durable:
        """Deferred like :meth:`place_cursor`; the store forgets what it kept in memory of the channel."""
        row = (channel_id, tuple(agent_ids), tuple(_key(k) for k in keys))
        durable = self._batches.place(RETIRE, row, defer=True).future
        last = self._last_ids.pop(channel_id, None)
        committed = self._recent.newest(channel_id)
        self._recent.forget(channel_id)
        if last and (committed is None or last > committed):
            # An append placed before but not committed yet (the hub retires none such): its
            # tail must not claim the channel's whole WAL.
            self._recent.distrust(channel_id, last)
        self._any_retired = True
        return durable

    def place_cursor(self, agent_id: str, channel_id: str, envelope_id: str) -> Durable:
        """Deferred: it commits along with other writes :data:`LINGER` later (or alone after twice that)."""
        return self._batches.place(CURSOR, (agent_id, channel_id, envelope_id), defer=True).future

    async def set_cursor(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        """Not deferred: it commits with this turn's writes."""
        await self._submit(CURSOR, (agent_id, channel_id, envelope_id))

    def put_kv(self, key: str, value: bytes) -> asyncio.Future[None]:
        """Queue ``key = value`` now, after every write made before; the future completes once committed."""
        return self._submit(KV_PUT, (_key(key), bytes(value)))

    def defer_kv(self, key: str, value: bytes) -> Durable:
        """Deferred like :meth:`place_cursor` (reads of keyed state see it at once all the same)."""
        return self._batches.place(KV_PUT, (_key(key), bytes(value)), defer=True).future

    def delete_kv(self, key: str) -> asyncio.Future[None]:
        return self._submit(KV_DELETE, (_key(key),))

    def place_audit(self, r: AuditRecord) -> Durable:
        """Deferred like :meth:`place_cursor` (reads of the audit log see it at once all the same)."""
        return self._batches.place(AUDIT, self._audit_row(r), defer=True).future

    async def append_audit(self, r: AuditRecord) -> None:
        """Not deferred: it commits with this turn's writes."""
        await self._submit(AUDIT, self._audit_row(r))

    def _audit_row(self, r: AuditRecord) -> tuple[Any, ...]:
        body = self._encode(r, f"audit record {r.id}")
        return (r.id, r.at, r.kind, r.agent_id, r.actor, r.channel_id, body)

    async def _see_deferred(self) -> None:
        """Wait until every write placed so far (deferred ones too) has committed, for a read
        that must see them (this store's reads see committed data only)."""
        fence = None if self._closed else self._batches.fence()
        if fence is not None:
            await fence

    def _fresh_recent(self) -> RecentEnvelopes:
        return RecentEnvelopes({channel_id: last for channel_id, last in self._last_ids.items() if last})

    # reads: on the reader thread, committed data only

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StorageError(
                f"SqliteStore({self.path}) is closed; open a new store to read", reason="closed"
            )
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)

    def _rows(self, query: str, params: tuple[Any, ...] | list[Any]) -> list[Any]:
        try:
            return self._conn.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(
                f"reading hubbub database {self.path} failed: {exc}", reason="read_failed"
            ) from exc

    def _decode(self, decode: Callable[[bytes], T], rows: list[Any], what: str) -> list[T]:
        try:
            return [decode(row[0]) for row in rows]
        except msgspec.DecodeError as exc:
            raise StorageError(
                f"hubbub database {self.path} holds a {what} that does not decode ({exc}); "
                "restore the file from a backup",
                reason="bad_record",
            ) from exc

    def _envelopes(self, query: str, params: list[Any]) -> list[Envelope]:
        return self._decode(self._decode_envelope, self._rows(query, params), "WAL envelope")

    def _tail(self, query: str, params: list[Any]) -> list[Envelope]:
        rows = self._rows(query, params)
        rows.reverse()
        return self._decode(self._decode_envelope, rows, "WAL envelope")

    def _first_envelope(self, query: str, params: list[Any]) -> Envelope | None:
        found = self._envelopes(query, params)
        return found[0] if found else None

    def _scalar(self, query: str, params: list[Any]) -> Any:
        rows = self._rows(query, params)
        return rows[0][0] if rows else None

    async def load_agents(self) -> list[AgentRecord]:
        return await self._read(self._load, self._decode_agent, sql.LOAD_AGENTS, "agent record", ())

    async def load_channels(self) -> list[ChannelMetadata]:
        await self._see_deferred()
        return await self._read(self._load, self._decode_channel, sql.LOAD_CHANNELS, "channel record", ())

    async def scan_channels(self, *, before: str | None = None, limit: int = 100) -> list[ChannelMetadata]:
        await self._see_deferred()
        params: list[Any] = [] if before is None else [before]
        query = sql.SCAN_CHANNELS[before is not None]
        return await self._read(
            self._load, self._decode_channel, query, "channel record", [*params, max(limit, 0)]
        )

    async def get_channel(self, channel_id: str) -> ChannelMetadata | None:
        await self._see_deferred()
        found = await self._read(
            self._load, self._decode_channel, sql.GET_CHANNEL, "channel record", [channel_id]
        )
        return found[0] if found else None

    def _load(
        self, decode: Callable[[bytes], T], query: str, what: str, params: tuple[Any, ...] | list[Any]
    ) -> list[T]:
        return self._decode(decode, self._rows(query, params), what)

    async def read_wal(
        self, channel_id: str, *, since: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[Envelope]:
        recent = self._recent.read(channel_id, since, until, limit)
        if not isinstance(recent, Unknown) and not self._closed:
            return recent
        params: list[Any] = [channel_id]
        if since:
            params.append(since)
        if until:
            params.append(until)
        params.append(-1 if limit is None else max(limit, 0))
        return await self._read(self._envelopes, sql.READ_WAL[(bool(since), bool(until))], params)

    async def read_wal_tail(self, channel_id: str, limit: int, *, until: str | None = None) -> list[Envelope]:
        recent = self._recent.read_tail(channel_id, limit, until)
        if not isinstance(recent, Unknown) and not self._closed:
            return recent
        params: list[Any] = [channel_id, until, max(limit, 0)] if until else [channel_id, max(limit, 0)]
        return await self._read(self._tail, sql.READ_WAL_TAIL[bool(until)], params)

    async def wal_length(self, channel_id: str) -> int:
        length = await self._read(self._scalar, sql.WAL_LENGTH, [channel_id])
        return int(length or 0)

    async def get_envelope(self, channel_id: str, envelope_id: str) -> Envelope | None:
        recent = self._recent.get(channel_id, envelope_id)
        if not isinstance(recent, Unknown) and not self._closed:
            return recent
        return await self._read(self._first_envelope, sql.GET_ENVELOPE, [channel_id, envelope_id])

    async def find_by_causation(self, channel_id: str, sender_id: str, causation_id: str) -> Envelope | None:
        recent = self._recent.find_reply(channel_id, sender_id, causation_id)
        if not isinstance(recent, Unknown) and not self._closed:
            return recent
        params = [channel_id, sender_id, causation_id]
        return await self._read(self._first_envelope, sql.FIND_BY_CAUSATION, params)

    def recent_reply(self, channel_id: str, sender_id: str, causation_id: str) -> Envelope | Unknown | None:
        return UNKNOWN if self._closed else self._recent.find_reply(channel_id, sender_id, causation_id)

    def recent_wal(self, channel_id: str, *, until: str, limit: int | None) -> list[Envelope] | Unknown:
        if self._closed:
            return UNKNOWN
        if limit is None:
            return self._recent.read(channel_id, None, until, None)
        return self._recent.read_tail(channel_id, limit, until)

    async def find_by_idempotency_key(self, channel_id: str, sender_id: str, key: str) -> str | None:
        found = await self._read(self._scalar, sql.FIND_BY_KEY, [channel_id, sender_id, key])
        return None if found is None else str(found)

    async def get_kv(self, key: str) -> bytes | None:
        await self._see_deferred()
        found = await self._read(self._scalar, sql.GET_KV, [_key(key)])
        return None if found is None else bytes(found)

    async def scan_kv(self, prefix: str) -> dict[str, bytes]:
        await self._see_deferred()
        end = sql.prefix_end(_key(prefix))
        params = [prefix] if end is None else [prefix, end]
        rows = await self._read(self._rows, sql.SCAN_KV[end is not None], params)
        return {key: bytes(value) for key, value in rows}

    async def load_cursors(self) -> dict[tuple[str, str], str]:
        await self._see_deferred()
        rows = await self._read(self._rows, sql.LOAD_CURSORS, ())
        return {(agent_id, channel_id): envelope_id for agent_id, channel_id, envelope_id in rows}

    async def read_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Matching records ordered by ``at`` (then by insertion), served by an index per filter."""
        await self._see_deferred()
        text, params = sql.select_audit(query)
        return await self._read(self._load, self._decode_audit, text, "audit record", params)

    # retention

    async def compact(
        self, policy: RetentionPolicy, *, dry_run: bool = False, now: float | None = None
    ) -> CompactionReport:
        """The deletes run on the writer, in order with every other write, so a running hub may
        call it; picking the channels and a dry run read on the reader thread.

        A failed compaction changes nothing and raises :class:`StorageError`; the store goes on.
        """
        job = CompactionJob(policy, now=time.time() if now is None else now, dry_run=dry_run)
        await self._see_deferred()  # closes and cursors not yet committed count
        try:
            await self._read(job.select, self._conn)
        except (sqlite3.Error, msgspec.DecodeError, msgspec.ValidationError) as exc:
            job.error = exc
        if job.error is None and not dry_run:
            batch = self._batches.place(COMPACT, (job, job.vacuum))
            batch.compacts = True  # the recent-envelope cache forgets what it held once it commits
            await batch.future
        if job.error is not None:
            raise StorageError(
                f"compacting hubbub database {self.path} failed ({job.error}); nothing was dropped",
                reason="compact_failed",
            ) from job.error
        assert job.report is not None
        return job.report

    # closing

    async def aclose(self) -> None:
        """Commit everything written before this call, then stop the threads and close the file.

        Writes after this raise :class:`StorageError`. Closing twice is a no-op.
        """
        if self._closed:
            return
        self._batches.close()
        stop = Batch(Durable(loop=asyncio.get_running_loop()), stop=True)
        self._writer.queue.put(stop)
        try:
            await stop.future
            await asyncio.to_thread(self._reader.shutdown)
        finally:
            self._conn.close()
            unlock_file(self._lock)


def _key(key: str) -> str:
    if not isinstance(key, str):
        raise UsageError(f"kv keys are strings, got {type(key).__name__} {key!r}")
    try:
        key.encode()
    except UnicodeEncodeError as exc:
        raise UsageError(f"kv key {key!r} is not valid text ({exc.reason})") from exc
    return key
