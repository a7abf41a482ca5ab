"""The one writer of a ``SqliteStore``: a thread that owns its connection and commits in groups.

Callers on the event loop put :class:`Batch` es on :attr:`Writer.queue` in the
order they want them applied: a batch is every write one event-loop turn made
(the store closes it at the end of the turn, or once it holds
:data:`FLUSH_AT` writes), sharing one future. The thread takes everything
queued (up to :data:`MAX_BATCH` writes) into one transaction, so posts that
arrive while a commit is in flight share the next commit and its fsync; then
it hands the committed batches back to their loops (``settled``), one wake-up
per loop. FIFO order means a cursor or a channel update is never committed
before an envelope queued ahead of it.

A failed transaction is rolled back and the writer stops writing for good
(fail-stop): the hub has already folded those envelopes into its in-memory
state, so writing later ones would make the log disagree with what the hub
did. Every queued and later write fails with the same :class:`StorageError`;
restarting the hub recovers from what was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from ..errors import StorageError
from ._sqlite_checkpointer import Checkpointer
from ._sqlite_schema import (
    DELETE_AGENT,
    DELETE_CURSOR,
    DELETE_KV,
    INSERT_AUDIT,
    INSERT_WAL,
    RETIRE_CHANNEL,
    RETIRE_WAL_CHANNEL,
    UPSERT_AGENT,
    UPSERT_CHANNEL,
    UPSERT_CURSOR,
    UPSERT_KV,
    UPSERT_WAL_CHANNEL,
    MultiRowInsert,
    padded_sql,
)

__all__ = [
    "APPEND",
    "FLUSH_AT",
    "AUDIT",
    "LINGER",
    "CHANNEL",
    "COMPACT",
    "CURSOR",
    "DELETE",
    "KV_DELETE",
    "KV_PUT",
    "MAX_BATCH",
    "MAX_ROWS",
    "PUT_AGENT",
    "RETIRE",
    "Batch",
    "Durable",
    "Writer",
]

APPEND, PUT_AGENT, DELETE, CHANNEL, CURSOR, AUDIT, KV_PUT, KV_DELETE, COMPACT, RETIRE = range(10)
"""Write ops. ``COMPACT``'s row is ``(job, after)``: ``job(conn)`` runs inside the transaction,
after every other write of it; ``after(conn)``, if not None, once it has committed (its errors
are logged, not fatal: it may only tidy, such as ``PRAGMA incremental_vacuum``). ``RETIRE``'s
row is ``(channel_id, agent_ids, keys)``: the channel's rows are marked retired, and the cursors
of those agents on it (whenever placed in the transaction) and those keys (placed before it)
are deleted."""
MAX_BATCH = 2048
"""Most writes in one transaction (whole batches only): bounds commit latency under a flood."""
FLUSH_AT = 256
"""A batch goes to the writer once it holds this many writes, without waiting for the turn to end,
so the writer commits the first posts of a long turn while the loop still runs the rest."""
LINGER = 0.05
"""Seconds deferred writes (ack cursors, audit records) gather before they go along with other
writes' commit (or, when the hub is quiet, another LINGER later alone): under traffic they
take no commit or fsync of their own, and many share a few pages."""
MAX_ROWS = 1024
"""Most rows in one statement (fewer if SQLite allows fewer parameters)."""

Op = tuple[int, Any]
Job = Callable[[sqlite3.Connection], None]

log = logging.getLogger("hubbub.storage")


class Durable(asyncio.Future[None]):
    """Completes when its batch has committed; shared by every write of the batch.

    Cancelling a task that awaits it cancels the task, not this future, and takes
    effect once the commit is done (within a commit's time): the other writers of
    the batch are still waiting on it.
    """

    def cancel(self, msg: Any | None = None) -> bool:
        return False


class Batch:
    """Writes in the order they were made, and the future they share."""

    __slots__ = ("compacts", "envelopes", "future", "ops", "riders", "stop")

    def __init__(self, future: Durable, *, stop: bool = False) -> None:
        self.future = future
        self.ops: list[Op] = []
        self.envelopes: list[Any] = []
        """The envelopes of its APPEND ops, in order (the store caches them once committed)."""
        self.compacts = False
        """Whether it holds a COMPACT op (which may empty channels' WALs)."""
        self.riders: list[Durable] = []
        """The futures of deferred writes that went along with it (complete with its own)."""
        self.stop = stop


Settled = Callable[[list[Batch], "StorageError | None"], None]


class Writer:
    """The writer thread; :attr:`commits` counts committed transactions.

    ``settled(batches, error)`` is called on each batch's event loop once the
    transaction holding it committed (error None) or failed.
    """

    def __init__(
        self, conn: sqlite3.Connection, path: str, settled: Settled, checkpointer: Checkpointer | None = None
    ) -> None:
        self.queue: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self.commits = 0
        self.failure: StorageError | None = None
        self._conn = conn
        self._path = path
        self._settled = settled
        self._checkpointer = checkpointer
        """Checkpoints the WAL on its own thread (then this connection does not)."""
        if checkpointer is not None:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        self.thread = threading.Thread(target=self._run, name=f"hubbub-sqlite-writer:{path}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        get, get_nowait, empty = self.queue.get, self.queue.get_nowait, queue.Empty
        while True:
            first = get()
            batches = [first]
            count = len(first.ops)
            while count < MAX_BATCH and not batches[-1].stop:
                try:
                    batch = get_nowait()
                except empty:
                    break
                batches.append(batch)
                count += len(batch.ops)
            stop = batches.pop() if batches[-1].stop else None
            if batches:
                error = self.failure
                if error is None:
                    try:
                        self._write([op for batch in batches for op in batch.ops])
                    except Exception as exc:
                        error = self.failure = StorageError(
                            f"writing to hubbub database {self._path} failed ({exc}); nothing since is "
                            "durable and this store takes no more writes: restart the hub, which resumes "
                            "from what was committed",
                            reason="write_failed",
                        )
                        error.__cause__ = exc
                self._settle(batches, error)
            if stop is not None:
                if self._checkpointer is not None:
                    self._checkpointer.close()
                self._conn.close()
                self._settle([stop], None)
                return

    def _settle(self, batches: list[Batch], error: StorageError | None) -> None:
        """Hand the batches back, one wake-up per event loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Batch]] = {}
        for batch in batches:
            by_loop.setdefault(batch.future.get_loop(), []).append(batch)
        for loop, settled in by_loop.items():
            # A closed loop raises RuntimeError: nobody can be waiting on it any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._settled, settled, error)

    def _write(self, ops: list[Op]) -> None:
        wal: list[tuple[Any, ...]] = []
        lengths: dict[str, list[Any]] = {}
        agents: list[tuple[int, tuple[Any, ...]]] = []
        channels: dict[str, tuple[Any, ...]] = {}
        cursors: dict[tuple[str, str], tuple[Any, ...]] = {}
        audit: list[tuple[Any, ...]] = []
        kv: dict[str, bytes | None] = {}
        jobs: list[tuple[Job, Job | None]] = []
        retired: list[tuple[str]] = []
        gone: list[tuple[str, str]] = []
        for op, row in ops:
            if op == APPEND:
                wal.append(row)
                entry = lengths.get(row[0])
                if entry is None:
                    lengths[row[0]] = [1, row[1]]
                else:
                    entry[0] += 1
                    entry[1] = row[1]
            elif op == CURSOR:
                # Coalesced: only the last cursor per (agent, channel) in a transaction is written.
                cursors[(row[0], row[1])] = row
            elif op == AUDIT:
                audit.append(row)
            elif op == CHANNEL:
                channels[row[0]] = row
            elif op == KV_PUT:
                # Coalesced like cursors: the last put or delete of a key in a transaction wins.
                kv[row[0]] = row[1]
            elif op == KV_DELETE:
                kv[row[0]] = None
            elif op == COMPACT:
                jobs.append(row)
            elif op == RETIRE:
                channel_id, agent_ids, keys = row
                retired.append((channel_id,))
                for agent_id in agent_ids:
                    cursors.pop((agent_id, channel_id), None)
                    gone.append((agent_id, channel_id))
                for key in keys:
                    kv[key] = None
            else:
                agents.append((op, row))
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if wal:
                _insert(conn, INSERT_WAL, wal)
                _insert(conn, UPSERT_WAL_CHANNEL, [(c, n, last) for c, (n, last) in lengths.items()])
            for op, row in agents:  # in order: a put and a delete of one agent must not swap
                conn.execute(padded_sql(UPSERT_AGENT, 1) if op == PUT_AGENT else DELETE_AGENT, row)
            if channels:
                _insert(conn, UPSERT_CHANNEL, list(channels.values()))
            if cursors:
                _insert(conn, UPSERT_CURSOR, list(cursors.values()))
            if audit:
                _insert(conn, INSERT_AUDIT, audit)
            if kv:
                _write_kv(conn, kv)
            if retired:
                conn.executemany(RETIRE_CHANNEL, retired)
                conn.executemany(RETIRE_WAL_CHANNEL, retired)
                conn.executemany(DELETE_CURSOR, gone)
            for job, _ in jobs:
                job(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.commits += 1
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.committed()
            if checkpointer.behind:
                checkpointer.help(conn)
        for _, after in jobs:
            if after is not None:
                try:
                    after(conn)
                except sqlite3.Error as exc:
                    log.warning("tidying hubbub database %s after a compaction failed: %s", self._path, exc)


def _insert(conn: sqlite3.Connection, insert: MultiRowInsert, rows: list[tuple[Any, ...]]) -> None:
    """All ``rows``, in order, in one statement per :data:`MAX_ROWS` (padded to a power of two)."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // insert.width
    most = min(MAX_ROWS, 1 << (limit.bit_length() - 1))
    width = insert.width
    for start in range(0, len(rows), most):
        chunk = rows[start : start + most]
        size = 1 << (len(chunk) - 1).bit_length()
        params = [value for row in chunk for value in row]
        params += [None] * (width * (size - len(chunk)))
        conn.execute(padded_sql(insert, size), params)


def _write_kv(conn: sqlite3.Connection, kv: dict[str, bytes | None]) -> None:
    puts = [(key, value) for key, value in kv.items() if value is not None]
    if puts:
        _insert(conn, UPSERT_KV, puts)
    deletes = [key for key, value in kv.items() if value is None]
    most = min(MAX_ROWS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    for start in range(0, len(deletes), most):
        chunk = deletes[start : start + most]
        conn.execute(DELETE_KV.format(", ".join("?" * len(chunk))), chunk)
