"""Opening a hubbub SQLite database: its lock file, file checks, pragmas, schema migrations, SQL text.

Everything here runs at open (and the lock's release at close), on the caller's thread. A file that is not
a SQLite database, that SQLite finds damaged, that another program created, or
that a newer hubbub wrote, raises :class:`StorageError` naming the path, what
is wrong and what to do; hubbub never serves data it cannot trust.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import sys
from typing import Any, Literal, NamedTuple

from ..errors import StorageError, UsageError
from ..model.audit import AuditQuery

if sys.platform != "win32":
    import fcntl

__all__ = [
    "APPLICATION_ID",
    "padded_sql",
    "prefix_end",
    "select_audit",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Durability",
    "MultiRowInsert",
    "connect",
    "lock_file",
    "open_database",
    "unlock_file",
]

Durability = Literal["full", "normal", "off"]

APPLICATION_ID = 0x68756262
"""``PRAGMA application_id`` of a hubbub database ("hubb"): tells ours from other programs' files."""

_MAGIC = b"SQLite format 3\x00"
_SYNCHRONOUS: dict[str, str] = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}

MIGRATIONS: tuple[str, ...] = (
    # 1: the first release.
    """
    CREATE TABLE agents (agent_id TEXT PRIMARY KEY, body BLOB NOT NULL);
    CREATE TABLE channels (channel_id TEXT PRIMARY KEY, body BLOB NOT NULL);
    CREATE TABLE wal (
        seq INTEGER PRIMARY KEY,
        channel_id TEXT NOT NULL,
        envelope_id TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        causation_id TEXT,
        idempotency_key TEXT,
        event_type TEXT NOT NULL,
        body BLOB NOT NULL
    );
    CREATE UNIQUE INDEX wal_by_id ON wal (channel_id, envelope_id);
    CREATE INDEX wal_by_causation ON wal (channel_id, sender_id, causation_id, envelope_id)
        WHERE causation_id IS NOT NULL;
    CREATE INDEX wal_by_key ON wal (channel_id, sender_id, idempotency_key, envelope_id)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE wal_channels (
        channel_id TEXT PRIMARY KEY, length INTEGER NOT NULL, last_id TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE cursors (
        agent_id TEXT NOT NULL, channel_id TEXT NOT NULL, envelope_id TEXT NOT NULL,
        PRIMARY KEY (agent_id, channel_id)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        agent_id TEXT,
        actor TEXT,
        channel_id TEXT,
        body BLOB NOT NULL
    );
    CREATE INDEX audit_by_at ON audit (at);
    CREATE INDEX audit_by_kind ON audit (kind, at);
    CREATE INDEX audit_by_agent ON audit (agent_id, at) WHERE agent_id IS NOT NULL;
    CREATE INDEX audit_by_actor ON audit (actor, at) WHERE actor IS NOT NULL;
    CREATE INDEX audit_by_channel ON audit (channel_id, at) WHERE channel_id IS NOT NULL;
    """,
    # 2: keyed state (adapter snapshots, fired expectations, open tasks, dropped deliveries).
    """
    CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
    """,
    # 3: retired channels (closed, acked by everyone, out of the hub's memory): a start-up
    # loads only the others, so its time and memory follow the live channels, not history.
    """
    ALTER TABLE channels ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX channels_live ON channels (retired) WHERE retired = 0;
    ALTER TABLE wal_channels ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX wal_channels_live ON wal_channels (retired) WHERE retired = 0;
    CREATE INDEX wal_channels_retired ON wal_channels (retired) WHERE retired = 1;
    """,
)
"""Schema steps in order; step ``i`` takes ``PRAGMA user_version`` from ``i`` to ``i + 1``.

Append new steps; never edit a released one.
"""

SCHEMA_VERSION = len(MIGRATIONS)

# Writes (the writer thread). One statement per table per transaction, whatever the number of
# rows: each sqlite3_step releases the GIL, and a writer thread that gives up the GIL waits up to
# the interpreter's switch interval (5 ms) to get it back while the event loop is busy, so the
# number of statements, not of rows, bounds the writer under load.


class MultiRowInsert(NamedTuple):
    """``INSERT INTO table (columns) SELECT * FROM (VALUES (?, ...), ...) WHERE ... tail``."""

    head: str
    width: int
    tail: str = ""


@functools.lru_cache(maxsize=128)
def padded_sql(insert: MultiRowInsert, rows: int) -> str:
    """The statement for exactly ``rows`` row groups; rows whose first value is NULL are skipped.

    Callers pad their rows with NULLs up to a power of two, so a handful of prepared
    statements per table serve every batch size.
    """
    group = "(" + ", ".join("?" * insert.width) + ")"
    values = ", ".join([group] * rows)
    return f"{insert.head} SELECT * FROM (VALUES {values}) WHERE column1 IS NOT NULL{insert.tail}"


INSERT_WAL = MultiRowInsert(
    "INSERT INTO wal (channel_id, envelope_id, sender_id, causation_id, idempotency_key, event_type, body)", 7
)
UPSERT_WAL_CHANNEL = MultiRowInsert(
    "INSERT INTO wal_channels (channel_id, length, last_id)",
    3,
    " ON CONFLICT (channel_id) DO UPDATE SET length = length + excluded.length, last_id = excluded.last_id",
)
UPSERT_CURSOR = MultiRowInsert(
    "INSERT INTO cursors (agent_id, channel_id, envelope_id)",
    3,
    " ON CONFLICT (agent_id, channel_id) DO UPDATE SET envelope_id = excluded.envelope_id",
)
# ON CONFLICT DO UPDATE keeps the row (and its rowid): listings stay in first-insertion order.
UPSERT_AGENT = MultiRowInsert(
    "INSERT INTO agents (agent_id, body)", 2, " ON CONFLICT (agent_id) DO UPDATE SET body = excluded.body"
)
DELETE_AGENT = "DELETE FROM agents WHERE agent_id = ?"
UPSERT_CHANNEL = MultiRowInsert(
    "INSERT INTO channels (channel_id, body)",
    2,
    " ON CONFLICT (channel_id) DO UPDATE SET body = excluded.body",
)
UPSERT_KV = MultiRowInsert(
    "INSERT INTO kv (key, value)", 2, " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
DELETE_KV = "DELETE FROM kv WHERE key IN ({})"
RETIRE_CHANNEL = "UPDATE channels SET retired = 1 WHERE channel_id = ?"
RETIRE_WAL_CHANNEL = "UPDATE wal_channels SET retired = 1 WHERE channel_id = ?"
DELETE_CURSOR = "DELETE FROM cursors WHERE agent_id = ? AND channel_id = ?"
INSERT_AUDIT = MultiRowInsert("INSERT INTO audit (id, at, kind, agent_id, actor, channel_id, body)", 7)

# Reads (the reader thread); every one is an index lookup or range scan.
_WAL_RANGE = "SELECT body FROM wal WHERE channel_id = ?{} ORDER BY envelope_id LIMIT ?"
READ_WAL: dict[tuple[bool, bool], str] = {
    (False, False): _WAL_RANGE.format(""),
    (True, False): _WAL_RANGE.format(" AND envelope_id > ?"),
    (False, True): _WAL_RANGE.format(" AND envelope_id <= ?"),
    (True, True): _WAL_RANGE.format(" AND envelope_id > ? AND envelope_id <= ?"),
}
"""Keyed by (since given, until given)."""
_WAL_TAIL = "SELECT body FROM wal WHERE channel_id = ?{} ORDER BY envelope_id DESC LIMIT ?"
READ_WAL_TAIL: dict[bool, str] = {
    False: _WAL_TAIL.format(""),
    True: _WAL_TAIL.format(" AND envelope_id <= ?"),
}
WAL_LENGTH = "SELECT length FROM wal_channels WHERE channel_id = ?"
GET_ENVELOPE = "SELECT body FROM wal WHERE channel_id = ? AND envelope_id = ?"
FIND_BY_CAUSATION = (
    "SELECT body FROM wal WHERE channel_id = ? AND sender_id = ? AND causation_id = ?"
    " ORDER BY envelope_id LIMIT 1"
)
FIND_BY_KEY = (
    "SELECT envelope_id FROM wal WHERE channel_id = ? AND sender_id = ? AND idempotency_key = ?"
    " ORDER BY envelope_id LIMIT 1"
)
LOAD_AGENTS = "SELECT body FROM agents ORDER BY rowid"
LOAD_CHANNELS = "SELECT body FROM channels WHERE retired = 0 ORDER BY rowid"
GET_CHANNEL = "SELECT body FROM channels WHERE channel_id = ?"
SCAN_CHANNELS: dict[bool, str] = {
    False: "SELECT body FROM channels ORDER BY channel_id DESC LIMIT ?",
    True: "SELECT body FROM channels WHERE channel_id < ? ORDER BY channel_id DESC LIMIT ?",
}
"""Keyed by whether a page starts below a given channel id."""
LOAD_CURSORS = "SELECT agent_id, channel_id, envelope_id FROM cursors"
GET_KV = "SELECT value FROM kv WHERE key = ?"
SCAN_KV: dict[bool, str] = {
    False: "SELECT key, value FROM kv WHERE key >= ? ORDER BY key",
    True: "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
}
"""Keyed by whether the prefix has an upper bound (see :func:`prefix_end`)."""
LOAD_LAST_IDS = "SELECT channel_id, last_id FROM wal_channels WHERE retired = 0"
ANY_RETIRED = "SELECT 1 FROM wal_channels WHERE retired = 1 LIMIT 1"


def prefix_end(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (None: no such bound).

    SQLite compares TEXT bytewise, and UTF-8 byte order is code point order.
    """
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following < 0xE000:
        following = 0xE000  # surrogates do not encode; none can be in a key
    return stripped[:-1] + chr(following)


def select_audit(query: AuditQuery) -> tuple[str, list[Any]]:
    """The statement and parameters reading the audit records ``query`` asks for, ordered by
    ``at`` then insertion (each filter is served by an index of ``audit``)."""
    where: list[str] = []
    params: list[Any] = []
    if query.kind is not None:
        where.append("kind = ?")
        params.append(query.kind)
    if query.agent_id is not None:
        where.append("(agent_id = ? OR actor = ?)")
        params += [query.agent_id, query.agent_id]
    if query.channel_id is not None:
        where.append("channel_id = ?")
        params.append(query.channel_id)
    if query.since is not None:
        where.append("at >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append("at <= ?")
        params.append(query.until)
    text = "SELECT body FROM audit" + (f" WHERE {' AND '.join(where)}" if where else "")
    params.append(max(query.limit, 0))
    if query.tail:
        text = text.replace("SELECT body", "SELECT body, at, seq", 1)
        return f"SELECT body FROM ({text} ORDER BY at DESC, seq DESC LIMIT ?) ORDER BY at, seq", params
    return text + " ORDER BY at, seq LIMIT ?", params


def _fail(path: str, problem: str, advice: str) -> StorageError:
    return StorageError(f"cannot open hubbub database {path}: {problem}. {advice}", reason="bad_database")


_RESTORE = (
    "hubbub will not serve data it cannot trust: restore the file from a backup, or move it away "
    "(and its -wal and -shm files) to start with an empty database"
)


def _check_header(path: str) -> None:
    """Refuse a file that is not a SQLite database before SQLite touches it."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        header = b""
    except OSError as exc:
        raise _fail(path, f"cannot read it ({exc.strerror})", "Check the path and its permissions") from exc
    if not header:
        # Missing or empty: SQLite makes a new database, and would delete a log left beside it
        # (named after the file symlinks lead to, as SQLite names it).
        log = f"{os.path.realpath(path)}-wal"
        if size := _size(log):
            problem = "it is empty" if os.path.exists(path) else "it is missing"
            raise _fail(
                path,
                f"{problem} but its write-ahead log {log} holds {size} bytes (the file was truncated, "
                "moved or replaced after the hub stopped)",
                _RESTORE,
            )
        return
    if not header.startswith(_MAGIC):
        raise _fail(
            path,
            "it is not a SQLite database (its first bytes are not the SQLite header)",
            "Point hubbub at another path (--db), or move this file away if it is not needed",
        )
    if len(header) < 100:
        raise _fail(path, f"it is truncated ({len(header)} bytes, shorter than a SQLite header)", _RESTORE)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def connect(path: str, durability: Durability) -> sqlite3.Connection:
    """One connection to an opened database with hubbub's pragmas set (autocommit; BEGIN explicitly)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[durability]}")
    except sqlite3.Error as exc:
        raise _fail(path, f"it is damaged or unreadable (SQLite: {exc})", _RESTORE) from exc
    return conn


def open_database(path: str, durability: Durability) -> sqlite3.Connection:
    """Check, configure and migrate the database at ``path``; return a connection to it."""
    if durability not in _SYNCHRONOUS:
        raise UsageError(f"durability must be 'full', 'normal' or 'off', not {durability!r}")
    _check_header(path)
    conn = connect(path, durability)
    try:
        _verify(conn, path)
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            # A new file: let compaction hand freed pages back cheaply (only settable before any table).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise _fail(
                path,
                f"SQLite could not switch it to WAL journal mode (got {mode!r})",
                "Put the database on a local filesystem that supports shared memory (not a network share)",
            )
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise _fail(path, f"it is damaged or unreadable (SQLite: {exc})", _RESTORE) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _verify(conn: sqlite3.Connection, path: str) -> None:
    rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        found = "; ".join(line for r in rows for line in str(r[0]).splitlines())
        raise _fail(path, f"it is damaged (PRAGMA quick_check found: {found})", _RESTORE)


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        if app not in (0, APPLICATION_ID) or (
            version == 0 and conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None
        ):
            raise _fail(
                path,
                "it is a SQLite database that another program created (it is not a hubbub database)",
                "Point hubbub at another path (--db); hubbub will not add its tables to it",
            )
        if version > SCHEMA_VERSION:
            raise _fail(
                path,
                f"its schema version is {version}, newer than this hubbub knows ({SCHEMA_VERSION})",
                "A newer hubbub wrote it: upgrade hubbub, or restore a backup made by this version",
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if version < SCHEMA_VERSION:
        # A new file's directory entry must be durable too, or a power loss could lose the whole file.
        _sync_directory(path)


def _sync_directory(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def lock_file(path: str) -> int | None:
    """Hold ``<path>-lock`` exclusively for the store's lifetime (the OS drops it if the process dies).

    ``path`` with symlinks resolved: a store opened through a link to another's file is refused too.
    """
    if sys.platform == "win32":
        return None
    try:
        fd = os.open(f"{os.path.realpath(path)}-lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(
            f"cannot open hubbub database {path}: cannot create its lock file ({exc.strerror}); "
            "check that the directory exists and is writable",
            reason="bad_database",
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StorageError(
            f"cannot open hubbub database {path}: another SqliteStore (in this or another process) has it "
            "open. Stop that hub first, or point this one at another file: two writers would interleave "
            "their logs",
            reason="locked",
        ) from exc
    return fd


def unlock_file(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
