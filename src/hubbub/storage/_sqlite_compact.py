"""``SqliteStore.compact``: which channels (on the reader thread), then the deletes (on the writer
thread, inside one of its transactions).

The deletes run under a savepoint: if it fails, only its own changes roll back,
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
from .retention import COMPACTED_PREFIX, CompactionReport, RetentionPolicy, choose_closed

__all__ = ["CompactionJob"]

VACUUM_PAGES = 16384
"""Most free pages one compaction hands back (64 MiB at the default page size): keeps it cheap."""

_CHANNELS = "SELECT channel_id, body, retired FROM channels ORDER BY rowid"
_LENGTH = "SELECT length, last_id FROM wal_channels WHERE channel_id = ?"
_LENGTHS = "SELECT channel_id, length FROM wal_channels WHERE length > 0"
_RETIRED = "SELECT retired FROM channels WHERE channel_id = ?"
_END_CURSOR = (
    "INSERT INTO cursors (agent_id, channel_id, envelope_id) VALUES (?, ?, ?)"
    " ON CONFLICT (agent_id, channel_id) DO UPDATE SET envelope_id = excluded.envelope_id"
)
_DELETE_OLDEST_AUDIT = "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit ORDER BY at, seq LIMIT ?)"
_MARK = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
_decode_channel = msgspec.json.Decoder(ChannelMetadata).decode
_encode = msgspec.json.Encoder().encode


class CompactionJob:
    """One compaction. :meth:`select` runs on the reader thread and picks the channels (decoding
    every channel record, off the writer, so writes are not held up by it; a dry run ends there
    with :attr:`report`); calling the job with the writer's connection deletes, inside one of its
    transactions; then read :attr:`report` or :attr:`error`."""

    def __init__(self, policy: RetentionPolicy, *, now: float, dry_run: bool) -> None:
        self.policy = policy
        self.now = now
        self.dry_run = dry_run
        self.channels: list[str] = []
        self.participants: dict[str, list[str]] = {}
        """Of the chosen channels not retired: whose cursors move to the end (see Store.compact)."""
        self.report: CompactionReport | None = None
        self.error: BaseException | None = None

    def select(self, conn: sqlite3.Connection) -> None:
        """The closed channels ``policy`` empties, among those with envelopes left (committed
        data: a closed channel never reopens, so the choice holds when the writer gets to it)."""
        policy = self.policy
        if policy.drops_wals:
            lengths: dict[str, int] = dict(conn.execute(_LENGTHS).fetchall())
            candidates: list[tuple[ChannelMetadata, int]] = []
            retired: set[str] = set()
            for channel_id, body, is_retired in conn.execute(_CHANNELS).fetchall():
                if channel_id in lengths:
                    candidates.append((_decode_channel(body), lengths[channel_id]))
                    if is_retired:
                        retired.add(channel_id)
            self.channels = choose_closed(policy, self.now, candidates)
            chosen = set(self.channels)
            self.participants = {
                metadata.channel_id: metadata.participant_ids()
                for metadata, _ in candidates
                if metadata.channel_id in chosen and metadata.channel_id not in retired
            }
        if self.dry_run:
            self.report = self._run(conn)

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
        for channel_id in self.channels:
            row = conn.execute(_LENGTH, (channel_id,)).fetchone()
            if row is None or not row[0]:
                continue
            compacted.append(channel_id)
            envelopes += row[0]
            if not self.dry_run:
                self._empty(conn, channel_id, row[0], row[1])
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

    def _empty(self, conn: sqlite3.Connection, channel_id: str, length: int, last_id: str) -> None:
        # wal_channels keeps the channel's last id, so ids stay strictly increasing in it.
        conn.execute("DELETE FROM wal WHERE channel_id = ?", (channel_id,))
        conn.execute("UPDATE wal_channels SET length = 0 WHERE channel_id = ?", (channel_id,))
        participants = self.participants.get(channel_id, [])
        if participants and conn.execute(_RETIRED, (channel_id,)).fetchone()[0]:
            participants = []  # retired since it was chosen: its cursors are gone, and stay so
        conn.executemany(_END_CURSOR, [(agent_id, channel_id, last_id) for agent_id in participants])
        mark: dict[str, Any] = {"at": iso_now(), "envelopes": length}
        conn.execute(_MARK, (COMPACTED_PREFIX + channel_id, _encode(mark)))


def _count(conn: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> int:
    return int(conn.execute(query, params).fetchone()[0])
