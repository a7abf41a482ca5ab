"""The ``Store`` contract, one suite run against every implementation with exact expected results."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from hubbub import (
    AuditRecord,
    ChannelManifest,
    ChannelMetadata,
    ChannelState,
    Envelope,
    LimitsBlock,
    MemoryStore,
    ObservedStat,
    Participant,
    ParticipantRole,
    Passport,
    Resume,
    Rule,
    SqliteStore,
    StorageError,
    Store,
)
from hubbub.model.audit import AuditQuery
from hubbub.storage import AgentRecord


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        s = SqliteStore(tmp_path_factory.mktemp("contract") / "hub.db", durability="normal")
    yield s
    await s.aclose()


def eid(n: int) -> str:
    """Envelope ids that sort like the hub's: fixed width hex."""
    return f"{n:032x}"


def env(channel: str, n: int, sender: str = "alice", **fields: Any) -> Envelope:
    return Envelope(
        channel_id=channel, sender_id=sender, envelope_id=eid(n), event_data={"text": f"#{n}"}, **fields
    )


async def put(store: Store, *envelopes: Envelope) -> None:
    """Append in call order, then wait until all are durable."""
    pending = [store.append(e) for e in envelopes]
    for durable in pending:
        if durable is not None:
            await durable


def ids(envelopes: list[Envelope]) -> list[int]:
    return [int(e.envelope_id, 16) for e in envelopes]


@pytest.fixture
async def filled(store: Store) -> Store:
    """Channel A holds envelopes 1..10, channel B 101..105, appended interleaved."""
    batch = []
    for n in range(1, 11):
        batch.append(env("A", n))
        if n <= 5:
            batch.append(env("B", 100 + n, sender="bob"))
    await put(store, *batch)
    return store


async def test_envelopes_round_trip_with_every_field(store: Store) -> None:
    full = Envelope(
        channel_id="A",
        sender_id="alice",
        audience=["bob", "carol"],
        event_type="ag2.packet",
        event_data={"routing": {"kind": "handoff", "target": "bob"}, "n": [1, 2.5, None, True], "body": "é✓"},
        envelope_id=eid(7),
        task_id="t1",
        causation_id=eid(3),
        trace_id="tr",
        priority="urgent",
        depth=2,
        idempotency_key="k",
        created_at="2026-01-02T03:04:05.000006Z",
        ttl_seconds=30,
    )
    await put(store, full)
    assert await store.read_wal("A") == [full]
    assert await store.get_envelope("A", eid(7)) == full


async def test_read_wal_is_ordered_and_per_channel(filled: Store) -> None:
    assert ids(await filled.read_wal("A")) == list(range(1, 11))
    assert ids(await filled.read_wal("B")) == [101, 102, 103, 104, 105]
    assert await filled.read_wal("nope") == []


async def test_read_wal_bounds(filled: Store) -> None:
    read = filled.read_wal
    assert ids(await read("A", since=eid(3))) == [4, 5, 6, 7, 8, 9, 10]
    assert ids(await read("A", until=eid(4))) == [1, 2, 3, 4]
    assert ids(await read("A", since=eid(3), until=eid(6))) == [4, 5, 6]
    assert ids(await read("A", limit=3)) == [1, 2, 3]
    assert ids(await read("A", since=eid(8), limit=5)) == [9, 10]
    assert ids(await read("A", since=eid(2), until=eid(9), limit=2)) == [3, 4]
    assert await read("A", limit=0) == []
    assert await read("A", limit=-1) == []
    assert await read("A", since=eid(10)) == []
    assert await read("A", until=eid(0)) == []
    # Bounds need not be ids in the log: they compare by sort order.
    assert ids(await read("A", since=eid(3) + "~", until=eid(5) + "~")) == [4, 5]
    # Empty strings mean no bound.
    assert ids(await read("A", since="", until="", limit=2)) == [1, 2]


async def test_read_wal_tail(filled: Store) -> None:
    tail = filled.read_wal_tail
    assert ids(await tail("A", 3)) == [8, 9, 10]
    assert ids(await tail("A", 2, until=eid(6))) == [5, 6]
    assert ids(await tail("A", 50)) == list(range(1, 11))
    assert ids(await tail("A", 50, until=eid(2))) == [1, 2]
    assert await tail("A", 0) == []
    assert await tail("nope", 3) == []


async def test_wal_length(filled: Store) -> None:
    assert await filled.wal_length("A") == 10
    assert await filled.wal_length("B") == 5
    assert await filled.wal_length("nope") == 0


async def test_get_envelope(filled: Store) -> None:
    found = await filled.get_envelope("A", eid(4))
    assert found is not None
    assert found.event_data == {"text": "#4"}
    assert await filled.get_envelope("B", eid(4)) is None
    assert await filled.get_envelope("A", eid(99)) is None
    assert await filled.get_envelope("nope", eid(4)) is None


async def test_append_fixes_the_order_when_called(store: Store) -> None:
    first, second = store.append(env("A", 1)), store.append(env("A", 2))
    for durable in (first, second):
        if durable is not None:
            await durable
    assert ids(await store.read_wal("A")) == [1, 2]


async def test_append_refuses_ids_that_do_not_increase(filled: Store) -> None:
    for n in (10, 9):
        with pytest.raises(StorageError, match="must strictly increase") as caught:
            filled.append(env("A", n))
        assert caught.value.channel_id == "A"
    await put(filled, env("B", 106), env("C", 1))  # other channels keep their own order
    assert ids(await filled.read_wal("A")) == list(range(1, 11))
    assert await filled.wal_length("A") == 10


async def test_find_by_causation_returns_the_first_reply_of_that_sender(store: Store) -> None:
    await put(
        store,
        env("A", 1),
        env("A", 2, sender="bob", causation_id=eid(1)),
        env("A", 3, sender="bob", causation_id=eid(1)),
        env("A", 4, sender="carol", causation_id=eid(1)),
        env("B", 5, sender="bob", causation_id=eid(1)),
    )

    async def reply(channel_id: str, sender: str, cause: int) -> list[int]:
        found = await store.find_by_causation(channel_id, sender, eid(cause))
        return [] if found is None else ids([found])

    assert await reply("A", "bob", 1) == [2]
    assert await reply("A", "carol", 1) == [4]
    assert await reply("B", "bob", 1) == [5]
    assert await reply("A", "alice", 1) == []
    assert await reply("A", "bob", 2) == []
    assert await reply("nope", "bob", 1) == []


async def test_find_by_idempotency_key_returns_the_first_id(store: Store) -> None:
    await put(
        store,
        env("A", 1, idempotency_key="k1"),
        env("A", 2, idempotency_key="k1"),
        env("A", 3, sender="bob", idempotency_key="k1"),
        env("A", 4, idempotency_key="k2"),
    )
    assert await store.find_by_idempotency_key("A", "alice", "k1") == eid(1)
    assert await store.find_by_idempotency_key("A", "bob", "k1") == eid(3)
    assert await store.find_by_idempotency_key("A", "alice", "k2") == eid(4)
    assert await store.find_by_idempotency_key("A", "bob", "k2") is None
    assert await store.find_by_idempotency_key("B", "alice", "k1") is None


async def test_cursors_upsert(store: Store) -> None:
    assert await store.load_cursors() == {}
    await store.set_cursor("bob", "A", eid(1))
    await store.set_cursor("bob", "B", eid(5))
    await store.set_cursor("carol", "A", eid(2))
    await store.set_cursor("bob", "A", eid(3))
    assert await store.load_cursors() == {("bob", "A"): eid(3), ("bob", "B"): eid(5), ("carol", "A"): eid(2)}


def agent(agent_id: str, **resume: Any) -> AgentRecord:
    return AgentRecord(
        passport=Passport(name=f"name-{agent_id}", agent_id=agent_id, model="m", kind="agent"),
        resume=Resume(**resume),
        rule=Rule(limits=LimitsBlock(max_concurrent_tasks=3, channel_ttl_default="5m")),
        skill_md="# skills" if agent_id == "a1" else None,
    )


async def test_agents_round_trip_in_first_registration_order(store: Store) -> None:
    a1, a2 = agent("a1"), agent("a2")
    await store.put_agent(a1)
    await store.put_agent(a2)
    a1_updated = agent(
        "a1",
        summary="now with a summary",
        claimed_capabilities=["math"],
        observed={"math": ObservedStat(n=3, completed=2, failed=1, p50_latency_ms=120)},
    )
    await store.put_agent(a1_updated)
    assert await store.load_agents() == [a1_updated, a2]
    await store.delete_agent("a1")
    await store.delete_agent("unknown")
    assert await store.load_agents() == [a2]
    await store.put_agent(a1)
    assert await store.load_agents() == [a2, a1]


def channel(channel_id: str, state: ChannelState = ChannelState.PENDING) -> ChannelMetadata:
    return ChannelMetadata(
        channel_id=channel_id,
        manifest=ChannelManifest(type="consulting"),
        creator_id="a1",
        participants=[
            Participant(agent_id="a1", role=ParticipantRole.INITIATOR, order=0),
            Participant(agent_id="a2", role=ParticipantRole.RESPONDENT, order=1),
        ],
        state=state,
        created_at="2026-01-02T03:04:05.000006Z",
        knobs={"max_turns": 4, "views": {"a2": "full_transcript"}},
        labels={"intent": "x"},
        pending_acks=["a2"] if state is ChannelState.PENDING else [],
    )


async def test_channels_round_trip_and_replace(store: Store) -> None:
    await store.put_channel(channel("c1"))
    await store.put_channel(channel("c2"))
    await store.put_channel(channel("c1", ChannelState.CLOSED))
    assert await store.load_channels() == [channel("c1", ChannelState.CLOSED), channel("c2")]
    assert await store.get_channel("c1") == channel("c1", ChannelState.CLOSED)
    assert await store.get_channel("nope") is None


async def test_a_retired_channel_stays_readable_but_leaves_start_up(store: Store) -> None:
    await store.put_channel(channel("c1", ChannelState.CLOSED))
    await store.put_channel(channel("c2"))
    await put(store, env("c1", 1), env("c2", 2), env("c1", 3))
    for agent_id, channel_id in (("a1", "c1"), ("a2", "c1"), ("a1", "c2")):
        await store.set_cursor(agent_id, channel_id, eid(3))
    for key in ("snap/c1", "snap/c2"):
        await settled(store.put_kv(key, b"state"))
    await settled(store.retire_channel("c1", ["a1", "a2"], ["snap/c1"]))
    assert await store.load_channels() == [channel("c2")]
    assert await store.load_cursors() == {("a1", "c2"): eid(3)}
    assert await store.scan_kv("snap/") == {"snap/c2": b"state"}
    # Everything a participant may still ask of it: its metadata and its WAL.
    assert await store.get_channel("c1") == channel("c1", ChannelState.CLOSED)
    assert await store.read_wal("c1") == [env("c1", 1), env("c1", 3)]
    assert await store.read_wal_tail("c1", 1) == [env("c1", 3)]
    assert await store.get_envelope("c1", eid(1)) == env("c1", 1)
    assert await store.wal_length("c1") == 2


async def test_scan_channels_pages_by_id_from_the_highest_retired_ones_too(store: Store) -> None:
    for channel_id in ("c2", "c3", "c1"):
        await store.put_channel(channel(channel_id))
    await store.put_channel(channel("c1", ChannelState.CLOSED))
    await settled(store.retire_channel("c2", [], []))
    assert [m.channel_id for m in await store.scan_channels()] == ["c3", "c2", "c1"]
    assert [m.channel_id for m in await store.scan_channels(limit=2)] == ["c3", "c2"]
    assert await store.scan_channels(before="c2") == [channel("c1", ChannelState.CLOSED)]
    assert await store.scan_channels(before="c1") == []
    assert [m.channel_id for m in await store.scan_channels(before="c25")] == ["c2", "c1"]  # any id


def record(
    n: int, kind: str, *, agent_id: str | None = None, actor: str | None = None, ch: str | None = None
) -> AuditRecord:
    return AuditRecord(
        id=f"r{n}",
        at=f"2026-01-01T00:00:{n:02d}.000000Z",
        kind=kind,
        agent_id=agent_id,
        actor=actor,
        channel_id=ch,
        reason=f"why {n}",
        data={"n": n},
    )


async def test_audit_filters(store: Store) -> None:
    records = [
        record(1, "agent_registered", agent_id="a1", actor="a1"),
        record(2, "channel_created", actor="a1", ch="c1"),
        record(3, "send_denied", agent_id="a2", actor="a1", ch="c1"),
        record(4, "send_denied", agent_id="a2", actor="a2", ch="c2"),
        record(5, "channel_closed", actor="a3", ch="c2"),
        record(6, "agent_registered", agent_id="a3", actor="a3"),
    ]
    for r in records:
        await store.append_audit(r)

    async def q(**filters: Any) -> list[int]:
        return [int(r.id[1:]) for r in await store.read_audit(AuditQuery(**filters))]

    assert await store.read_audit(AuditQuery()) == records
    assert await q(kind="send_denied") == [3, 4]
    assert await q(agent_id="a1") == [1, 2, 3]  # the agent or the actor
    assert await q(agent_id="a2") == [3, 4]
    assert await q(channel_id="c2") == [4, 5]
    assert await q(since="2026-01-01T00:00:04.000000Z") == [4, 5, 6]
    assert await q(until="2026-01-01T00:00:02.000000Z") == [1, 2]
    assert await q(since="2026-01-01T00:00:02.000000Z", until="2026-01-01T00:00:05.000000Z") == [2, 3, 4, 5]
    assert await q(kind="send_denied", agent_id="a2", channel_id="c1") == [3]
    assert await q(agent_id="a3", since="2026-01-01T00:00:06.000000Z") == [6]
    assert await q(limit=2) == [1, 2]
    assert await q(kind="agent_registered", limit=1) == [1]
    assert await q(limit=0) == []
    assert await q(kind="nothing") == []


async def test_audit_is_ordered_by_time_then_write_order(store: Store) -> None:
    late, early = record(9, "a"), record(1, "a")
    early_too = AuditRecord(id="r1b", at=early.at, kind="b")
    for r in (late, early, early_too):
        await store.append_audit(r)
    assert await store.read_audit(AuditQuery()) == [early, early_too, late]
    assert await store.read_audit(AuditQuery(limit=1)) == [early]
    assert await store.read_audit(AuditQuery(limit=2, tail=True)) == [early_too, late]
    assert await store.read_audit(AuditQuery(limit=5, tail=True)) == [early, early_too, late]
    assert await store.read_audit(AuditQuery(limit=1, tail=True, kind="a")) == [late]
    assert await store.read_audit(AuditQuery(limit=0, tail=True)) == []


async def test_empty_store(store: Store) -> None:
    assert await store.load_agents() == []
    assert await store.load_channels() == []
    assert await store.load_cursors() == {}
    assert await store.read_audit(AuditQuery()) == []
    assert await store.wal_length("A") == 0
    assert await store.read_wal_tail("A", 5) == []
    assert await store.get_kv("x") is None
    assert await store.scan_kv("") == {}


async def settled(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


async def test_kv_put_get_replace_delete(store: Store) -> None:
    await settled(store.put_kv("snap/A", b"one"))
    await settled(store.put_kv("snap/B", b"\x00\xff binary"))
    assert await store.get_kv("snap/A") == b"one"
    await settled(store.put_kv("snap/A", b"two"))
    assert await store.get_kv("snap/A") == b"two"
    await settled(store.delete_kv("snap/A"))
    await settled(store.delete_kv("never/there"))
    assert await store.get_kv("snap/A") is None
    assert await store.scan_kv("") == {"snap/B": b"\x00\xff binary"}


async def test_kv_scan_by_prefix_in_key_order(store: Store) -> None:
    for key in (
        "task/b/2",
        "task/a/1",
        "tas",
        "task/",
        "taskz",
        "fired/x",
        "task/a/\u00e9",
        "task/a/\U0001f600",
    ):
        await settled(store.put_kv(key, key.encode()))
    found = await store.scan_kv("task/")
    assert list(found) == ["task/", "task/a/1", "task/a/\u00e9", "task/a/\U0001f600", "task/b/2"]
    assert found["task/b/2"] == b"task/b/2"
    assert list(await store.scan_kv("task/a/")) == ["task/a/1", "task/a/\u00e9", "task/a/\U0001f600"]
    assert await store.scan_kv("nothing") == {}
    assert len(await store.scan_kv("")) == 8


async def test_kv_writes_keep_their_order_with_appends(store: Store) -> None:
    # Placed when called: the last write of a key wins, whatever commits together.
    results = [
        store.append(env("A", 1)),
        store.put_kv("k", b"1"),
        store.delete_kv("k"),
        store.put_kv("k", b"3"),
    ]
    results += [store.delete_kv("gone"), store.put_kv("gone", b"back"), store.append(env("A", 2))]
    for result in results:
        await settled(result)
    assert await store.scan_kv("") == {"gone": b"back", "k": b"3"}
    assert [e.envelope_id for e in await store.read_wal("A")] == [eid(1), eid(2)]
