"""The one writer of a ``SqliteStore``: a thread that owns its connection and commits in groups.

Callers on the event loop put ``(op, row, future)`` items on :attr:`Writer.queue`
in the order they want them applied. The thread takes everything queued (up to
:data:`MAX_BATCH` items) into one transaction, so posts that arrive while a
commit is in flight share the next commit and its fsync; then it resolves the
futures of that transaction on their own loops. FIFO order means a cursor or a
channel update is never committed before an envelope queued ahead of it.

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
from ._sqlite_schema import (
    DELETE_AGENT,
    DELETE_KV,
    INSERT_AUDIT,
    INSERT_WAL,
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
    "AUDIT",
    "CHANNEL",
    "COMPACT",
    "CURSOR",
    "DELETE",
    "KV_DELETE",
    "KV_PUT",
    "MAX_BATCH",
    "MAX_ROWS",
    "PUT_AGENT",
    "STOP",
    "Writer",
]

APPEND, PUT_AGENT, DELETE, CHANNEL, CURSOR, AUDIT, STOP, KV_PUT, KV_DELETE, COMPACT = range(10)
"""Write ops. ``COMPACT``'s row is ``(job, after)``: ``job(conn)`` runs inside the transaction,
after every other write of it; ``after(conn)``, if not None, once it has committed (its errors
are logged, not fatal: it may only tidy, such as ``PRAGMA incremental_vacuum``)."""
MAX_BATCH = 1000
"""Most items in one transaction: bounds commit latency and the writer's memory under a flood."""
MAX_ROWS = 1024
"""Most rows in one statement (fewer if SQLite allows fewer parameters)."""

Item = tuple[int, Any, "asyncio.Future[None] | None"]
Job = Callable[[sqlite3.Connection], None]

log = logging.getLogger("hubbub.storage")


class Writer:
    """The writer thread; :attr:`commits` counts committed transactions."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.commits = 0
        self.failure: StorageError | None = None
        self._conn = conn
        self._path = path
        self.thread = threading.Thread(target=self._run, name=f"hubbub-sqlite-writer:{path}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        get, get_nowait, empty = self.queue.get, self.queue.get_nowait, queue.Empty
        while True:
            batch = [get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(get_nowait())
                except empty:
                    break
            stop = batch.pop() if batch[-1][0] == STOP else None
            if batch:
                error = self.failure
                if error is None:
                    try:
                        self._write(batch)
                    except Exception as exc:
                        error = self.failure = StorageError(
                            f"writing to hubbub database {self._path} failed ({exc}); nothing since is "
                            "durable and this store takes no more writes: restart the hub, which resumes "
                            "from what was committed",
                            reason="write_failed",
                        )
                        error.__cause__ = exc
                _settle(batch, error)
            if stop is not None:
                self._conn.close()
                _settle([stop], None)
                return

    def _write(self, batch: list[Item]) -> None:
        wal: list[tuple[Any, ...]] = []
        lengths: dict[str, list[Any]] = {}
        agents: list[tuple[int, tuple[Any, ...]]] = []
        channels: dict[str, tuple[Any, ...]] = {}
        cursors: dict[tuple[str, str], tuple[Any, ...]] = {}
        audit: list[tuple[Any, ...]] = []
        kv: dict[str, bytes | None] = {}
        jobs: list[tuple[Job, Job | None]] = []
        for op, row, _ in batch:
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
            for job, _ in jobs:
                job(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.commits += 1
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


def _settle(batch: list[Item], error: StorageError | None) -> None:
    """Resolve the batch's futures, one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, _, future in batch:
        if future is not None:
            by_loop.setdefault(future.get_loop(), []).append(future)
    for loop, futures in by_loop.items():
        # A closed loop raises RuntimeError: nobody can be waiting on it any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, futures, error)


def _resolve(futures: list[asyncio.Future[None]], error: StorageError | None) -> None:
    for future in futures:
        if future.done():
            continue  # the awaiting task was cancelled
        if error is None:
            future.set_result(None)
        else:
            exc = StorageError(error.message, reason=error.reason)
            exc.__cause__ = error.__cause__
            future.set_exception(exc)
