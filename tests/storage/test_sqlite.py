"""``SqliteStore`` beyond the contract: durability, group commit, restart, and refusing bad files."""

from __future__ import annotations

import asyncio
import os
import random
import re
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hubbub import (
    EV_TEXT,
    ChannelClosedError,
    ChannelState,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    LocalLink,
    SqliteStore,
    StorageError,
    UsageError,
)
from hubbub.model.audit import AuditQuery, make_audit_record
from hubbub.model.ids import MonotonicIds
from hubbub.storage import _sqlite_schema as schema
from hubbub.storage._sqlite_writer import LINGER
from hubbub.storage.sqlite import Durability
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until
from tests.storage.test_store_contract import agent, channel

ids = MonotonicIds()


def text(channel_id: str, n: int = 0, **fields: Any) -> Envelope:
    return Envelope(
        channel_id=channel_id,
        sender_id="alice",
        envelope_id=ids(),
        event_data={"text": f"message {n} " + "x" * 150},
        **fields,
    )


async def fill(path: Path, count: int) -> list[Envelope]:
    store = SqliteStore(path, durability="off")
    envelopes = [text(f"c{n % 3}", n) for n in range(count)]
    futures = [store.append(e) for e in envelopes]
    await asyncio.gather(*futures)
    await store.aclose()
    return envelopes


# durability


async def test_the_wal_is_checkpointed_off_the_commit_path_and_stays_small(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    wal = f"{path}-wal"
    store = SqliteStore(path, durability="normal")
    largest = 0
    for n in range(400):  # commits back to back, ~1 MB of WAL each: the copy never catches up alone
        await asyncio.gather(*[store.append(text(f"c{k}", n)) for k in range(250)])
        largest = max(largest, await asyncio.to_thread(os.path.getsize, wal))
    assert store.checkpoints >= 400 // 32 - 1  # the thread's
    assert largest < 128 << 20  # the writer helped, and the WAL started over; unchecked it passes 400 MB
    await store.aclose()
    assert not await asyncio.to_thread(os.path.exists, wal)  # a clean close folds it into the file
    again = await SqliteStore.open(path)
    assert await again.wal_length("c7") == 400
    await again.aclose()


async def test_everything_written_is_there_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SqliteStore(path)
    envelopes = [text("A", n, causation_id=f"cause{n}", idempotency_key=f"k{n}") for n in range(5)]
    for e in envelopes:
        store.append(e)
    await store.put_agent(agent("a1"))
    await store.put_agent(agent("a2"))
    await store.delete_agent("a2")
    await store.put_channel(channel("c1"))
    await store.set_cursor("a1", "A", envelopes[2].envelope_id)
    audit = make_audit_record("send_denied", actor="a1", agent_id="a2", channel_id="A", data={"x": 1})
    await store.append_audit(audit)
    await store.aclose()

    reopened = SqliteStore(path)
    try:
        assert await reopened.read_wal("A") == envelopes
        assert await reopened.wal_length("A") == 5
        assert await reopened.find_by_idempotency_key("A", "alice", "k3") == envelopes[3].envelope_id
        assert await reopened.find_by_causation("A", "alice", "cause4") == envelopes[4]
        assert await reopened.load_agents() == [agent("a1")]
        assert await reopened.load_channels() == [channel("c1")]
        assert await reopened.load_cursors() == {("a1", "A"): envelopes[2].envelope_id}
        assert await reopened.read_audit(AuditQuery()) == [audit]
        # The order of each channel survives too: an id at or before the last one is refused.
        with pytest.raises(StorageError, match="must strictly increase"):
            reopened.append(envelopes[4])
    finally:
        await reopened.aclose()


async def test_aclose_commits_everything_appended_before_it(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SqliteStore(path)
    envelopes = [text("A", n) for n in range(500)]
    futures = [store.append(e) for e in envelopes]
    await store.aclose()
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(StorageError, match="closed"):
        store.append(text("A"))
    with pytest.raises(StorageError, match="closed"):
        await store.set_cursor("a", "A", envelopes[0].envelope_id)
    with pytest.raises(StorageError, match="closed"):
        await store.read_wal("A")
    await store.aclose()  # twice is fine

    reopened = SqliteStore(path)
    assert await reopened.wal_length("A") == 500
    assert await reopened.read_wal("A") == envelopes
    await reopened.aclose()


async def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db", durability="full")
    before = store.commits

    async def post(n: int) -> None:
        await store.append(text(f"c{n % 4}", n))

    await asyncio.gather(*(post(n) for n in range(200)))
    grouped = store.commits - before
    assert 1 <= grouped <= 20, f"200 concurrent appends took {grouped} commits"
    assert sum([await store.wal_length(f"c{k}") for k in range(4)]) == 200
    await store.aclose()


async def test_writes_of_one_turn_share_a_commit_and_cancelling_one_waiter_spares_the_others(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    first, second = text("A", 1), text("A", 2)
    durable = [store.append(first), store.append(second), store.put_kv("k", b"v")]
    assert durable[0] is durable[1] is durable[2]

    async def wait(future: Any) -> None:
        await future

    waiters = [asyncio.ensure_future(wait(d)) for d in durable]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.gather(*waiters[1:])
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]
    assert await store.read_wal("A") == [first, second]
    assert await store.get_kv("k") == b"v"
    await store.aclose()


async def test_reads_served_from_memory_match_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    older = await fill(path, 30)
    store = SqliteStore(path)
    newer = [text("c1", n) for n in range(30)]
    await asyncio.gather(*(store.append(e) for e in newer))
    live = {
        since: await store.read_wal("c1", since=since, limit=5)
        for since in [None, *(e.envelope_id for e in older + newer if e.channel_id == "c1")]
    }
    tails = [await store.read_wal_tail("c1", n) for n in range(0, 45, 7)]
    found = [await store.get_envelope("c1", e.envelope_id) for e in newer + older]
    await store.aclose()
    reopened = SqliteStore(path)  # nothing in memory: every read goes to SQLite
    for since, got in live.items():
        assert got == await reopened.read_wal("c1", since=since, limit=5), since
    assert tails == [await reopened.read_wal_tail("c1", n) for n in range(0, 45, 7)]
    assert found == [await reopened.get_envelope("c1", e.envelope_id) for e in newer + older]
    assert found[: len(newer)] == newer
    await reopened.aclose()


async def test_rows_are_split_into_statements_sqlite_can_take(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    # 20 parameters: two 7-column rows per statement, so 11 rows take 6 statements, the last padded.
    store._writer._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)
    envelopes = [text(f"c{n % 2}", n) for n in range(11)]
    await asyncio.gather(*(store.append(e) for e in envelopes))
    assert await store.read_wal("c0") == envelopes[0::2]
    assert await store.read_wal("c1") == envelopes[1::2]
    assert await store.wal_length("c0") == 6
    await store.aclose()


async def test_cursor_writes_are_ordered_after_the_envelope_and_coalesced(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    envelopes = [text("A", n) for n in range(50)]
    for e in envelopes:
        store.append(e)
    writes = [store.set_cursor("bob", "A", e.envelope_id) for e in envelopes]
    await asyncio.gather(*writes)
    assert await store.load_cursors() == {("bob", "A"): envelopes[-1].envelope_id}
    assert await store.wal_length("A") == 50
    await store.aclose()


async def one_envelope_store(tmp_path: Path) -> tuple[SqliteStore, Envelope]:
    store = SqliteStore(tmp_path / "hub.db")
    first = text("A", 1)
    await store.append(first)
    return store, first


async def test_deferred_writes_wait_then_go_along_with_the_next_commit(tmp_path: Path) -> None:
    store, first = await one_envelope_store(tmp_path)
    before = store.commits
    cursor = store.place_cursor("bob", "A", first.envelope_id)
    audit = store.place_audit(make_audit_record("channel_opened", channel_id="A"))
    assert cursor is audit  # one deferred batch
    loop = asyncio.get_running_loop()
    placed = loop.time()
    await store.append(text("A", 2))
    on_time = loop.time() - placed < LINGER  # (a stalled machine may let LINGER pass here)
    assert on_time is False or not cursor.done()  # before LINGER, a commit does not take them along
    await asyncio.sleep(LINGER * 1.2)  # due now: the next commit takes them along
    on_time = on_time and loop.time() - placed < LINGER * 1.9  # not yet sent alone
    await store.append(text("A", 3))
    assert cursor.done()
    if on_time:
        assert store.commits == before + 2  # no commit of their own
    await store.aclose()


async def test_deferred_writes_commit_alone_when_the_hub_is_quiet(tmp_path: Path) -> None:
    store, first = await one_envelope_store(tmp_path)
    before = store.commits
    await store.place_cursor("bob", "A", first.envelope_id)
    assert store.commits == before + 1
    await store.aclose()
    reopened = SqliteStore(tmp_path / "hub.db")
    assert await reopened.load_cursors() == {("bob", "A"): first.envelope_id}
    await reopened.aclose()


async def test_reads_see_deferred_writes_and_closing_commits_them(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SqliteStore(path)
    await store.append(first := text("A", 1))
    record = make_audit_record("channel_opened", channel_id="A")
    store.place_audit(record)
    store.place_cursor("bob", "A", first.envelope_id)
    assert await store.read_audit(AuditQuery(channel_id="A")) == [record]
    assert await store.load_cursors() == {("bob", "A"): first.envelope_id}
    store.place_cursor("carol", "A", first.envelope_id)
    await store.aclose()  # at once, not LINGER later
    reopened = SqliteStore(path)
    assert ("carol", "A") in await reopened.load_cursors()
    await reopened.aclose()


async def test_awaited_cursors_and_audit_records_are_not_deferred(tmp_path: Path) -> None:
    store, first = await one_envelope_store(tmp_path)
    deferred = store.place_audit(make_audit_record("channel_opened", channel_id="A"))
    await store.append_audit(make_audit_record("channel_closed", channel_id="A"))
    assert not deferred.done()  # it committed on its own, without waiting for the deferred one
    # A cursor set at once takes the deferred ones along, ahead of it: an older one never wins.
    store.place_cursor("bob", "A", "0")
    await store.set_cursor("bob", "A", first.envelope_id)
    assert deferred.done()
    assert await store.load_cursors() == {("bob", "A"): first.envelope_id}
    await store.aclose()


async def test_keyed_state_takes_the_deferred_writes_into_its_transaction(tmp_path: Path) -> None:
    # A snapshot records which envelopes acks freed (its inbox floors): it must never be durable
    # without the cursors of those acks, or a crash would leave the two disagreeing.
    store, first = await one_envelope_store(tmp_path)
    before = store.commits
    cursor = store.place_cursor("bob", "A", first.envelope_id)
    await store.put_kv("snapshot/A", b"floors")
    assert cursor.done()
    assert store.commits == before + 1  # one transaction holds both
    await store.aclose()


async def test_a_deferred_snapshot_commits_with_the_cursors_and_reads_see_it(tmp_path: Path) -> None:
    store, first = await one_envelope_store(tmp_path)
    cursor = store.place_cursor("bob", "A", first.envelope_id)
    snapshot = store.defer_kv("snap/A", b"state")
    assert snapshot is cursor  # one deferred batch: one transaction
    assert await store.get_kv("snap/A") == b"state"  # a read commits the deferred writes first
    assert snapshot.done()
    await store.aclose()


async def test_a_deferred_channel_change_waits_and_reads_see_it(tmp_path: Path) -> None:
    store, _ = await one_envelope_store(tmp_path)
    await store.put_channel(channel("A"))
    change = store.defer_channel(channel("A", ChannelState.CLOSED))
    assert change is store.place_cursor("bob", "A", "x")  # it waits with the deferred writes
    assert await store.get_channel("A") == channel("A", ChannelState.CLOSED)  # reads commit it first
    assert await store.load_channels() == [channel("A", ChannelState.CLOSED)]
    await store.aclose()


async def test_reads_see_deferred_writes_already_on_their_way(tmp_path: Path) -> None:
    # Due deferred writes ride along with the next batch; a read right after must wait for it.
    store, first = await one_envelope_store(tmp_path)
    store.place_cursor("bob", "A", first.envelope_id)
    store.defer_kv("snap/A", b"state")
    await asyncio.sleep(LINGER * 1.2)  # due: the next write takes them along
    store.append(text("A", 2))  # not awaited: its batch (and theirs) may still be committing
    assert await store.load_cursors() == {("bob", "A"): first.envelope_id}
    assert await store.get_kv("snap/A") == b"state"
    await store.aclose()


def test_a_read_on_another_event_loop_sees_what_one_loop_deferred(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")

    async def write() -> str:
        await store.append(first := text("A", 1))
        store.place_cursor("bob", "A", first.envelope_id)
        return first.envelope_id

    acked = asyncio.run(write())  # that loop is closed now, its deferred cursor not yet committed
    assert asyncio.run(store.load_cursors()) == {("bob", "A"): acked}
    asyncio.run(store.aclose())


async def test_an_agents_deletion_takes_its_deferred_cursors_along(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.put_agent(agent("a1"))
    await store.append(first := text("A", 1))
    cursor = store.place_cursor("a1", "A", first.envelope_id)
    await store.delete_agent("a1")
    assert cursor.done()  # committed with (not after) the deletion
    await store.aclose()


async def test_unencodable_envelope_is_refused_before_it_takes_a_place(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    bad = Envelope(channel_id="A", sender_id="a", envelope_id=ids(), event_data={"x": object()})
    with pytest.raises(UsageError, match="cannot be stored"):
        store.append(bad)
    good = text("A")
    await store.append(good)
    assert await store.read_wal("A") == [good]
    await store.aclose()


async def test_a_failed_write_stops_all_later_writes(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SqliteStore(path)
    await store.append(text("A"))
    with sqlite3.connect(path) as other:
        other.execute("DROP TABLE wal")
    with pytest.raises(StorageError, match="no such table") as caught:
        await store.append(text("A"))
    assert str(path) in str(caught.value)
    with pytest.raises(StorageError, match="takes no more writes"):
        store.append(text("A"))
    with pytest.raises(StorageError, match="takes no more writes"):
        await store.put_channel(channel("c1"))
    await store.aclose()


async def test_a_record_that_does_not_decode_is_an_error_not_data(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SqliteStore(path)
    await store.append(text("A"))
    await store.aclose()
    with sqlite3.connect(path) as other:
        other.execute("UPDATE wal SET body = x'7b2278'")
    store = SqliteStore(path)  # reopened: the envelope is no longer among the recent ones held in memory
    with pytest.raises(StorageError, match="does not decode") as caught:
        await store.read_wal("A")
    assert str(path) in str(caught.value)
    await store.aclose()


# schema


async def test_new_file_gets_the_schema_wal_mode_and_the_durability_asked_for(tmp_path: Path) -> None:
    levels: list[tuple[Durability, int]] = [("full", 2), ("normal", 1), ("off", 0)]
    for durability, level in levels:
        store = SqliteStore(tmp_path / f"{durability}.db", durability=durability)
        writer = store._writer._conn  # the pragma is per connection: check the one that commits
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == level
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == level
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert writer.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert writer.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        await store.aclose()


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="durability"):
        SqliteStore(tmp_path / "x.db", durability="fast")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="MemoryStore"):
        SqliteStore(":memory:")


async def test_a_version_1_file_gets_keyed_state_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hub.db"
    envelopes = [text(f"c{n % 3}", n) for n in range(6)]
    with sqlite3.connect(path) as conn:  # a file as the first release wrote it
        conn.executescript(schema.MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
        for e in envelopes:
            row = (e.channel_id, e.envelope_id, e.sender_id, None, None, e.event_type, msgspec.json.encode(e))
            conn.execute(f"{schema.INSERT_WAL.head} VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            conn.execute(
                "INSERT INTO wal_channels VALUES (?, 1, ?) ON CONFLICT (channel_id)"
                " DO UPDATE SET length = length + 1, last_id = excluded.last_id",
                (e.channel_id, e.envelope_id),
            )
        conn.execute("INSERT INTO channels VALUES ('c1', ?)", (msgspec.json.encode(channel("c1")),))
    store = SqliteStore(path)
    assert await store.read_wal("c1") == envelopes[1::3]
    assert [m.channel_id for m in await store.load_channels()] == ["c1"]
    with pytest.raises(StorageError, match="strictly increase"):
        store.append(envelopes[1])  # the ids stored before the upgrade still order appends
    await store.put_kv("snap/c1", b"state")
    await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    reopened = SqliteStore(path)
    assert await reopened.scan_kv("snap/") == {"snap/c1": b"state"}
    await reopened.aclose()


async def test_keyed_state_commits_in_order_with_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = SqliteStore(path)
    envelope = text("A")
    store.append(envelope)
    snapshot = store.put_kv("snap/A", envelope.envelope_id.encode())
    store.delete_kv("gone")
    await snapshot
    # Committed together or after: whoever sees the snapshot sees the envelope it covers.
    assert await store.read_wal("A") == [envelope]
    with pytest.raises(UsageError, match="kv keys are strings"):
        store.put_kv(b"bytes", b"")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not valid text"):
        store.put_kv("lone \ud800", b"")
    await store.aclose()


async def test_a_retired_channel_is_read_from_the_file_whatever_comes_after(tmp_path: Path) -> None:
    """The hub never appends to a retired channel; if something did, reads would still be whole."""
    path = tmp_path / "hub.db"
    store = SqliteStore(path)
    await store.put_channel(channel("c1", ChannelState.CLOSED))
    first = [text("c1", n) for n in range(3)]
    await asyncio.gather(*(store.append(e) for e in first))
    await store.retire_channel("c1", ["a1"], [])
    late = text("c1", 3)
    await store.append(late)
    assert await store.read_wal("c1") == [*first, late]
    await store.aclose()
    reopened = SqliteStore(path)
    assert await reopened.load_channels() == []
    later = text("c1", 4)
    await reopened.append(later)
    assert await reopened.read_wal("c1") == [*first, late, later]
    assert await reopened.read_wal_tail("c1", 5) == [*first, late, later]
    assert await reopened.get_envelope("c1", first[0].envelope_id) == first[0]
    await reopened.aclose()


async def test_a_retired_channel_leaves_nothing_in_the_store_s_memory(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.put_channel(channel("c1", ChannelState.CLOSED))
    await asyncio.gather(*(store.append(text("c1", n)) for n in range(3)))
    await store.retire_channel("c1", [], [])
    assert store._recent.newest("c1") is None  # no tail, no floor: reads go to the file
    assert "c1" not in store._last_ids
    assert len(await store.read_wal("c1")) == 3
    await store.aclose()


async def test_an_append_committing_after_the_retirement_does_not_hide_older_envelopes(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.put_channel(channel("c1", ChannelState.CLOSED))
    first, second = text("c1", 0), text("c1", 1)
    await store.append(first)
    pending = store.append(second)  # placed before the retirement, committed with or after it
    retired = store.retire_channel("c1", [], [])
    await asyncio.gather(pending, retired)
    assert await store.read_wal("c1") == [first, second]
    assert await store.get_envelope("c1", first.envelope_id) == first
    await store.aclose()


async def test_migrations_run_in_order_and_keep_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hub.db"
    envelopes = await fill(path, 10)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, "CREATE TABLE extra (x INTEGER)"))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    store = SqliteStore(path)
    assert await store.read_wal("c0") == [e for e in envelopes if e.channel_id == "c0"]
    await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM extra").fetchone()[0] == 0


async def test_every_read_is_served_by_an_index(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    await fill(path, 10)
    reads = [
        *schema.READ_WAL.values(),
        *schema.READ_WAL_TAIL.values(),
        schema.WAL_LENGTH,
        schema.GET_ENVELOPE,
        schema.FIND_BY_CAUSATION,
        schema.FIND_BY_KEY,
        # start-up: the live channels only, however many retired
        schema.LOAD_CHANNELS,
        schema.LOAD_LAST_IDS,
        schema.ANY_RETIRED,
    ]
    with sqlite3.connect(path) as conn:
        for query in reads:
            params = ["x"] * query.count("?")
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params)]
            assert all(step.startswith("SEARCH") for step in plan), (query, plan)
            assert not any("TEMP B-TREE" in step for step in plan), (query, plan)


# refusing files it cannot trust


async def test_garbage_over_the_middle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    await fill(path, 3000)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2)
        f.write(random.Random(4).randbytes(64 * 1024))
    with pytest.raises(StorageError, match="damaged") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)
    assert "restore the file from a backup" in str(caught.value)


async def test_a_file_truncated_to_half_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    await fill(path, 3000)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(StorageError, match="damaged") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


async def test_a_file_truncated_inside_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    await fill(path, 10)
    with path.open("r+b") as f:
        f.truncate(50)
    with pytest.raises(StorageError, match="truncated") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


async def test_an_empty_file_beside_a_write_ahead_log_is_refused_and_the_log_kept(tmp_path: Path) -> None:
    # After a kill -9 most of the data is in hub.db-wal: opening an emptied hub.db as a new
    # database would make SQLite delete that log.
    path = tmp_path / "hub.db"
    await fill(path, 10)
    wal = tmp_path / "hub.db-wal"
    wal.write_bytes(random.Random(5).randbytes(8192))  # stands for the log a kill -9 left
    path.write_bytes(b"")
    with pytest.raises(StorageError, match="empty but its write-ahead log") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)
    assert wal.stat().st_size > 0
    assert path.stat().st_size == 0


async def test_a_missing_file_beside_a_log_or_an_empty_one_behind_a_symlink_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.db"
    await fill(path, 10)
    wal = tmp_path / "hub.db-wal"
    wal.write_bytes(random.Random(6).randbytes(8192))
    path.unlink()  # moved away without its log
    with pytest.raises(StorageError, match="it is missing but its write-ahead log"):
        SqliteStore(path)
    path.write_bytes(b"")
    alias = tmp_path / "alias.db"
    alias.symlink_to(path)  # SQLite names the log after the real file
    with pytest.raises(StorageError, match=f"it is empty but its write-ahead log {re.escape(str(wal))}"):
        SqliteStore(alias)
    assert wal.stat().st_size == 8192


async def test_an_empty_file_alone_is_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    path.write_bytes(b"")
    store = await SqliteStore.open(path)
    await store.aclose()
    assert path.stat().st_size > 0


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 20)
    with pytest.raises(StorageError, match="not a SQLite database") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)
    assert path.read_text() == "these are my notes, not a database\n" * 20


def test_another_programs_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE things (x)")
    with pytest.raises(StorageError, match="another program") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


async def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    await fill(path, 1)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer than this hubbub knows") as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)


async def test_one_store_per_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    first = SqliteStore(path)
    with pytest.raises(StorageError, match="has it open"):
        SqliteStore(path)
    await first.aclose()
    second = await SqliteStore.open(path)
    await second.aclose()


async def test_one_store_per_file_through_a_symlink_too(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    alias = tmp_path / "alias.db"
    alias.symlink_to(path)
    first = await SqliteStore.open(path)
    with pytest.raises(StorageError, match="has it open"):
        SqliteStore(alias)
    await first.aclose()


# the hub on SqliteStore


def _expected_cursors(hub: Hub, wal: dict[str, list[Envelope]]) -> dict[tuple[str, str], str]:
    """Each participant's last delivered envelope per channel: what it acks last."""
    expected = {}
    for channel_id, envelopes in wal.items():
        for agent_id in hub.get_channel(channel_id).participant_ids():
            seen = [
                e.envelope_id
                for e in envelopes
                if e.sender_id != agent_id and (e.audience is None or agent_id in e.audience)
            ]
            if seen:
                expected[(agent_id, channel_id)] = seen[-1]
    return expected


async def say(hub: Hub, channel_id: str, sender_id: str, words: str) -> str:
    return await hub.post_envelope(
        Envelope(channel_id=channel_id, event_data={"text": words}), sender_id=sender_id
    )


async def test_a_hub_resumes_exactly_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    async with Hub(SqliteStore(path)) as hub:
        async with HubClient(LocalLink(hub)) as client:
            alice = await client.register(FunctionAgent(lambda t: f"re: {t.prompt}", name="alice"))
            await client.register(FunctionAgent(lambda t: "4", name="bob"))
            consult = await alice.open("consulting", "bob")
            await consult.send("what is 2+2?")
            await consult.wait_closed(timeout=5 * TIME_UNIT)
            lead = await client.register(name="lead")
            x = await client.register(name="x")
            y = await client.register(name="y")
            talk = await lead.open("discussion", ["x", "y"])
            await talk.send("topic")
            await hub.post_envelope(
                Envelope(channel_id=talk.id, event_data={"text": "x speaks"}), sender_id=x.agent_id
            )
            channel_ids = [consult.id, talk.id]
            wal = {c: await hub.read_wal(c) for c in channel_ids}
            expected = _expected_cursors(hub, wal)
            await wait_until(
                lambda: all(hub.delivery.cursor(a, c) == e for (a, c), e in expected.items()),
                what="every participant to ack its last delivery",
            )
        metadata = {c: hub.get_channel(c) for c in channel_ids}
        states = {c: hub.channels.get(c).state for c in channel_ids}
        agents = hub.list_agents()

    async with Hub(SqliteStore(path)) as again:
        assert again.list_agents() == agents
        assert {c: again.get_channel(c) for c in channel_ids} == metadata
        assert {c: await again.read_wal(c) for c in channel_ids} == wal
        assert {c: again.channels.get(c).state for c in channel_ids} == states
        assert {k: again.delivery.cursor(*k) for k in expected} == expected
        assert await again.store.load_cursors() == expected
        # The consulting channel stays closed after its reply.
        assert again.get_channel(consult.id).state is ChannelState.CLOSED
        with pytest.raises(ChannelClosedError):
            await again.post_envelope(
                Envelope(channel_id=consult.id, event_data={"text": "more?"}), sender_id=alice.agent_id
            )
        # The discussion expects the same speaker: y, after lead and x.
        assert [t.channel_id for t in again.pending_turns_for(y.agent_id)] == [talk.id]
        assert again.can_send(talk.id, y.agent_id, EV_TEXT)
        assert not again.can_send(talk.id, x.agent_id, EV_TEXT)
        # New envelopes sort after the stored ones.
        new_id = await again.post_envelope(
            Envelope(channel_id=talk.id, event_data={"text": "y"}), sender_id=y.agent_id
        )
        assert new_id > wal[talk.id][-1].envelope_id
