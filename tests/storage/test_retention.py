"""``Store.compact``: the same results from every store; closed channels' WALs and old audit
records go, everything else stays, and a dry run changes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubbub import (
    AuditRecord,
    ChannelManifest,
    ChannelMetadata,
    ChannelState,
    Envelope,
    MemoryStore,
    Participant,
    ParticipantRole,
    SqliteStore,
    StorageError,
    Store,
    UsageError,
)
from hubbub.model._time import from_iso
from hubbub.model.audit import AuditQuery
from hubbub.storage import CompactionReport, RetentionPolicy

NOW = from_iso("2026-03-01T00:00:00.000000Z")
DAY = 86400.0


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "hub.db")
    yield s
    await s.aclose()


def channel(channel_id: str, state: ChannelState, closed_at: str | None = None) -> ChannelMetadata:
    return ChannelMetadata(
        channel_id=channel_id,
        manifest=ChannelManifest(type="conversation"),
        creator_id="a1",
        participants=[
            Participant(agent_id="a1", role=ParticipantRole.INITIATOR, order=0),
            Participant(agent_id="a2", role=ParticipantRole.RESPONDENT, order=1),
        ],
        state=state,
        created_at="2026-01-01T00:00:00.000000Z",
        closed_at=closed_at,
    )


def env(channel_id: str, n: int, text: str = "") -> Envelope:
    return Envelope(
        channel_id=channel_id, sender_id="a1", envelope_id=f"{n:032x}", event_data={"text": text or str(n)}
    )


async def fill(store: Store, channel_id: str, first: int, count: int) -> None:
    for n in range(first, first + count):
        durable = store.append(env(channel_id, n))
        if durable is not None:
            await durable


@pytest.fixture
async def filled(store: Store) -> Store:
    """old: closed 30 days ago (3 envelopes); recent: closed 1 day ago (2); open: active (4);
    expired: expired 10 days ago (1). Audit: 6 records, one a day from Feb 20."""
    await store.put_channel(channel("old", ChannelState.CLOSED, "2026-01-30T00:00:00.000000Z"))
    await store.put_channel(channel("recent", ChannelState.CLOSED, "2026-02-28T00:00:00.000000Z"))
    await store.put_channel(channel("open", ChannelState.ACTIVE))
    await store.put_channel(channel("expired", ChannelState.EXPIRED, "2026-02-19T00:00:00.000000Z"))
    await fill(store, "old", 1, 3)
    await fill(store, "recent", 11, 2)
    await fill(store, "open", 21, 4)
    await fill(store, "expired", 31, 1)
    await store.set_cursor("a2", "old", f"{2:032x}")
    durable = store.put_kv("snap/old", b"snapshot")
    if durable is not None:
        await durable
    for day in range(20, 26):
        await store.append_audit(AuditRecord(id=f"r{day}", at=f"2026-02-{day}T00:00:00.000000Z", kind="k"))
    return store


async def lengths(store: Store) -> dict[str, int]:
    return {c: await store.wal_length(c) for c in ("old", "recent", "open", "expired")}


async def audit_ids(store: Store) -> list[str]:
    return [r.id for r in await store.read_audit(AuditQuery())]


async def test_closed_channels_past_the_age_are_emptied_and_nothing_else(filled: Store) -> None:
    report = await filled.compact(RetentionPolicy(closed_wal_after=7 * DAY), now=NOW)
    assert report == CompactionReport(channels=2, envelopes=4, channel_ids=("old", "expired"))
    assert await lengths(filled) == {"old": 0, "recent": 2, "open": 4, "expired": 0}
    assert await filled.read_wal("old") == []
    assert await filled.read_wal_tail("old", 5) == []
    assert await filled.get_envelope("old", f"{1:032x}") is None
    assert [int(e.envelope_id, 16) for e in await filled.read_wal("open")] == [21, 22, 23, 24]
    # Metadata and the keyed state a restart reads stay; every participant's cursor on a
    # compacted channel moves to its end (nothing of it can be acked any more).
    assert sorted(c.channel_id for c in await filled.load_channels()) == ["expired", "old", "open", "recent"]
    assert await filled.load_cursors() == {
        ("a1", "old"): f"{3:032x}",
        ("a2", "old"): f"{3:032x}",
        ("a1", "expired"): f"{31:032x}",
        ("a2", "expired"): f"{31:032x}",
    }
    assert await filled.get_kv("snap/old") == b"snapshot"
    marks = await filled.scan_kv("compacted/")
    assert sorted(marks) == ["compacted/expired", "compacted/old"]
    assert b'"envelopes":3' in marks["compacted/old"]
    assert await audit_ids(filled) == ["r20", "r21", "r22", "r23", "r24", "r25"]
    # Ids stay strictly increasing in a compacted channel, and a second run finds nothing.
    with pytest.raises(StorageError, match="must strictly increase"):
        filled.append(env("old", 3))
    assert await filled.compact(RetentionPolicy(closed_wal_after=7 * DAY), now=NOW) == CompactionReport()


async def test_a_retired_channel_compacts_without_cursors_coming_back(filled: Store) -> None:
    durable = filled.retire_channel("old", ["a1", "a2"], [])
    if durable is not None:
        await durable
    report = await filled.compact(RetentionPolicy(closed_wal_after=7 * DAY), now=NOW)
    assert report.channel_ids == ("old", "expired")
    assert await filled.load_cursors() == {("a1", "expired"): f"{31:032x}", ("a2", "expired"): f"{31:032x}"}


async def test_closed_channels_by_size_the_first_closed_go_first(filled: Store) -> None:
    # Closed channels hold old 3 (closed Jan 30), expired 1 (Feb 19), recent 2 (Feb 28).
    policy = RetentionPolicy(closed_wal_max_envelopes=3)
    assert (await filled.compact(policy, now=NOW)).channel_ids == ("old",)
    assert await lengths(filled) == {"old": 0, "recent": 2, "open": 4, "expired": 1}
    assert (await filled.compact(RetentionPolicy(closed_wal_max_envelopes=0), now=NOW)).channel_ids == (
        "recent",
        "expired",
    )
    assert await lengths(filled) == {"old": 0, "recent": 0, "open": 4, "expired": 0}  # never the open one


async def test_by_age_and_by_size_together_and_kept_channels(filled: Store) -> None:
    # By age (7 days): old and expired; by size (1): of what is left, recent must go too, but
    # it is kept, so the size bound stays unmet rather than touching it.
    policy = RetentionPolicy(
        closed_wal_after=7 * DAY, closed_wal_max_envelopes=1, keep_channels=frozenset({"recent"})
    )
    report = await filled.compact(policy, now=NOW)
    assert report.channel_ids == ("old", "expired")
    assert await lengths(filled) == {"old": 0, "recent": 2, "open": 4, "expired": 0}


async def test_keep_channels_are_left_whole(filled: Store) -> None:
    policy = RetentionPolicy(closed_wal_after=0, keep_channels=frozenset({"old"}))
    report = await filled.compact(policy, now=NOW)
    assert report.channel_ids == ("recent", "expired")
    assert await lengths(filled) == {"old": 3, "recent": 0, "open": 4, "expired": 0}


async def test_audit_by_age_then_by_count(filled: Store) -> None:
    report = await filled.compact(RetentionPolicy(audit_after=7 * DAY), now=NOW)
    assert (report.audit_records, report.envelopes) == (2, 0)
    assert await audit_ids(filled) == ["r22", "r23", "r24", "r25"]
    report = await filled.compact(RetentionPolicy(audit_max_rows=3), now=NOW)
    assert report.audit_records == 1
    assert await audit_ids(filled) == ["r23", "r24", "r25"]
    both = await filled.compact(RetentionPolicy(audit_after=6 * DAY, audit_max_rows=1), now=NOW)
    assert both.audit_records == 2
    assert await audit_ids(filled) == ["r25"]


async def test_a_dry_run_counts_and_changes_nothing(filled: Store) -> None:
    policy = RetentionPolicy(closed_wal_after=7 * DAY, audit_after=7 * DAY, audit_max_rows=3)
    report = await filled.compact(policy, dry_run=True, now=NOW)
    assert report == CompactionReport(
        channels=2, envelopes=4, audit_records=3, dry_run=True, channel_ids=("old", "expired")
    )
    assert str(report) == "would drop 4 envelopes of 2 closed channels and 3 audit records"
    assert await lengths(filled) == {"old": 3, "recent": 2, "open": 4, "expired": 1}
    assert len(await audit_ids(filled)) == 6
    assert await filled.scan_kv("compacted/") == {}
    assert await filled.compact(policy, now=NOW) == CompactionReport(
        channels=2, envelopes=4, audit_records=3, channel_ids=("old", "expired")
    )


async def test_an_empty_policy_drops_nothing(filled: Store) -> None:
    assert await filled.compact(RetentionPolicy(), now=NOW) == CompactionReport()
    assert await lengths(filled) == {"old": 3, "recent": 2, "open": 4, "expired": 1}


def test_bad_policies_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="closed_wal_after must be seconds"):
        RetentionPolicy(closed_wal_after=-1)
    with pytest.raises(UsageError, match="audit_max_rows must be an int"):
        RetentionPolicy(audit_max_rows=1.5)  # type: ignore[arg-type]


async def test_sqlite_survives_reopening_and_gives_pages_back(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    await store.put_channel(channel("big", ChannelState.CLOSED, "2026-01-01T00:00:00.000000Z"))
    for n in range(1, 401):
        await store.append(env("big", n, "x" * 2000))
    report = await store.compact(RetentionPolicy(closed_wal_after=DAY), now=NOW)
    assert report.envelopes == 400
    await store.aclose()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    again = SqliteStore(db)
    try:
        assert await again.wal_length("big") == 0
        assert await again.read_wal("big") == []
        with pytest.raises(StorageError, match="must strictly increase"):
            again.append(env("big", 400))
    finally:
        await again.aclose()
