"""``SqliteStore.compact``: the statements, run by the writer thread inside one of its transactions.

The job runs under a savepoint: if it fails, only its own changes roll back,
the writes it shares the transaction with commit, and the error is handed to
the caller (a failed compaction never stops the store). Afterwards, on a
database created with ``auto_vacuum = INCREMENTAL`` (every new one), a bounded
``PRAGMA incremental_vacuum`` gives freed pages back to the file system.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from ..model._time import iso_now, to_iso
from ..model.channel import ChannelMetadata
from .retention import COMPACTED_PREFIX, CompactionReport, RetentionPolicy, closed_before

__all__ = ["CompactionJob"]

VACUUM_PAGES = 16384
"""Most free pages one compaction hands back (64 MiB at the default page size): keeps it cheap."""

_LENGTH = "SELECT length FROM wal_channels WHERE channel_id = ?"
_DELETE_OLDEST_AUDIT = "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit ORDER BY at, seq LIMIT ?)"
_MARK = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
_decode_channel = msgspec.json.Decoder(ChannelMetadata).decode
_encode = msgspec.json.Encoder().encode


class CompactionJob:
    """One compaction: call it with the writer's connection; then read :attr:`report` or :attr:`error`."""

    def __init__(self, policy: RetentionPolicy, *, now: float, dry_run: bool) -> None:
        self.policy = policy
        self.now = now
        self.dry_run = dry_run
        self.report: CompactionReport | None = None
        self.error: BaseException | None = None

    def __call__(self, conn: sqlite3.Connection) -> None:
        conn.execute("SAVEPOINT hubbub_compact")
        try:
            self.report = self._run(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO hubbub_compact")
            self.error = exc
        finally:
            conn.execute("RELEASE hubbub_compact")

    def vacuum(self, conn: sqlite3.Connection) -> None:
        """Give free pages back, if the database can do it incrementally (never a full VACUUM)."""
        if self.dry_run or self.report is None or not (self.report.envelopes or self.report.audit_records):
            return
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            return
        conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")

    def _run(self, conn: sqlite3.Connection) -> CompactionReport:
        policy = self.policy
        compacted: list[str] = []
        envelopes = 0
        if policy.closed_wal_after is not None:
            cutoff = self.now - policy.closed_wal_after
            for channel_id, body in conn.execute("SELECT channel_id, body FROM channels").fetchall():
                if channel_id in policy.keep_channels or not closed_before(_decode_channel(body), cutoff):
                    continue
                row = conn.execute(_LENGTH, (channel_id,)).fetchone()
                if row is None or not row[0]:
                    continue
                compacted.append(channel_id)
                envelopes += row[0]
                if not self.dry_run:
                    self._empty(conn, channel_id, row[0])
        audit = 0
        if policy.audit_after is not None:
            before = to_iso(self.now - policy.audit_after)
            audit += _count(conn, "SELECT count(*) FROM audit WHERE at < ?", (before,))
            if not self.dry_run:
                conn.execute("DELETE FROM audit WHERE at < ?", (before,))
        if policy.audit_max_rows is not None:
            left = _count(conn, "SELECT count(*) FROM audit", ())
            if self.dry_run:
                left -= audit  # what the age rule would have deleted
            excess = max(0, left - policy.audit_max_rows)
            if excess:
                audit += excess
                if not self.dry_run:
                    conn.execute(_DELETE_OLDEST_AUDIT, (excess,))
        return CompactionReport(
            channels=len(compacted),
            envelopes=envelopes,
            audit_records=audit,
            dry_run=self.dry_run,
            channel_ids=tuple(compacted),
        )

    def _empty(self, conn: sqlite3.Connection, channel_id: str, length: int) -> None:
        # wal_channels keeps the channel's last id, so ids stay strictly increasing in it.
        conn.execute("DELETE FROM wal WHERE channel_id = ?", (channel_id,))
        conn.execute("UPDATE wal_channels SET length = 0 WHERE channel_id = ?", (channel_id,))
        mark: dict[str, Any] = {"at": iso_now(), "envelopes": length}
        conn.execute(_MARK, (COMPACTED_PREFIX + channel_id, _encode(mark)))


def _count(conn: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> int:
    return int(conn.execute(query, params).fetchone()[0])
