"""Hub.compact on a running hub: closed channels' WALs go, the hub keeps serving them as empty, a
restart on the same SqliteStore resumes, and channels the hub still needs are kept whole."""

from __future__ import annotations

from pathlib import Path

import msgspec

from hubbub import ChannelState, FunctionAgent, Hub, HubClient, LocalLink, SqliteStore, WsLink, serve_ws
from hubbub.hub.retention import compact
from hubbub.storage import RetentionPolicy
from tests._peers import absent_peer
from tests.conftest import TIME_UNIT
from tests.hub._delegation import silent, state_is
from tests.hub._waiting import audit_records, wait_until

WAIT = 5 * TIME_UNIT
ALL_CLOSED = RetentionPolicy(closed_wal_after=0)


def echo(name: str) -> FunctionAgent:
    return FunctionAgent(lambda turn: f"{name} heard: {turn.prompt}", name=name)


async def test_a_compacted_channel_reads_empty_and_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Hub(SqliteStore(db)) as hub, serve_ws(hub) as server, HubClient(WsLink(server.url)) as client:
        alice = await client.register(echo("alice"))
        await client.register(echo("bob"))
        done = await alice.open("consulting", "bob")
        await done.send("what is 2+2?")
        await done.wait_closed(timeout=WAIT)
        still_open = await alice.open("conversation", "bob", knobs={"max_turns": 10})
        await wait_until(lambda: not hub.governance.inbox.pending_channels(), what="every delivery acked")
        report = await hub.compact(ALL_CLOSED)
        assert (report.channels, report.envelopes, report.channel_ids) == (1, 6, (done.id,))
        [audited] = await audit_records(hub, "store_compacted")
        assert audited.data == {"channels": 1, "envelopes": 6, "audit_records": 0}
        assert await done.read() == []
        assert await client.hub_wal(done.id) == []
        assert (await client.get_channel(done.id)).state is ChannelState.CLOSED
        assert len(await still_open.read()) == 3  # invite, ack, opened

    async with Hub(SqliteStore(db)) as again, HubClient(LocalLink(again)) as client:
        assert again.get_channel(done.id).state is ChannelState.CLOSED
        assert await again.read_wal(done.id) == []
        assert again.get_channel(still_open.id).state is ChannelState.ACTIVE
        alice = await client.attach(echo("alice"), "alice")
        await client.attach(echo("bob"), "bob")
        fresh = await alice.open("consulting", "bob")
        await fresh.send("still working?")
        assert (await fresh.wait_closed(timeout=WAIT)).close_reason == "consulting_complete"


async def test_unacked_deliveries_of_a_compacted_channel_free_their_inbox_slots(hub: Hub) -> None:
    client = HubClient(LocalLink(hub))
    alice = await client.register(name="alice")
    channel, bob = await absent_peer(hub, alice)
    await channel.send("while you were away")
    await channel.send("and this")
    await channel.close()
    assert hub.governance.inbox.count(bob) == 2
    report = await hub.compact(ALL_CLOSED)
    assert report.channel_ids == (channel.id,)
    assert hub.governance.inbox.count(bob) == 0
    back = HubClient(LocalLink(hub))
    again = await back.attach(None, "bob", handle_turns=False, since_envelope_id=None)
    assert await again.replay() == 0
    await back.aclose()
    await client.aclose()


async def closed_while_bob_was_away(hub: Hub, client: HubClient) -> str:
    """A closed conversation alice -> bob holding a text bob (registered, gone) never acked."""
    alice = await client.register(name="alice")
    channel, _ = await absent_peer(hub, alice)
    await channel.send("while you were away")
    await channel.close()
    return channel.id


async def test_a_compacted_channel_nobody_can_ack_leaves_memory_and_retires(tmp_path: Path) -> None:
    # Its unacked envelopes are gone, so bob can never ack its end: compaction moves the cursors.
    db = tmp_path / "hub.db"
    async with Hub(SqliteStore(db), keep_closed=0) as hub, HubClient(LocalLink(hub)) as client:
        channel_id = await closed_while_bob_was_away(hub, client)
        assert hub.channels.find(channel_id) is not None  # bob owes it an ack
        await hub.compact(ALL_CLOSED)
        assert hub.channels.find(channel_id) is None
        assert (await hub.fetch_channel(channel_id)).state is ChannelState.CLOSED
    async with Hub(SqliteStore(db), keep_closed=0) as again:
        assert again.channels.find(channel_id) is None  # retired: a restart does not load it
        assert not [key for key in await again.store.load_cursors() if key[1] == channel_id]


async def test_a_channel_compacted_offline_leaves_memory_at_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Hub(SqliteStore(db), keep_closed=0) as hub, HubClient(LocalLink(hub)) as client:
        channel_id = await closed_while_bob_was_away(hub, client)
    store = await SqliteStore.open(db)
    assert (await compact(store, ALL_CLOSED)).channel_ids == (channel_id,)  # as `hubbub compact` does
    await store.aclose()
    async with Hub(SqliteStore(db), keep_closed=0) as again, HubClient(LocalLink(again)) as client:
        assert again.channels.find(channel_id) is None
        bob = await client.attach(None, "bob", handle_turns=False, since_envelope_id=None)
        assert await bob.replay() == 0


async def test_the_channel_of_an_unfinished_delegated_task_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Hub(SqliteStore(db)) as hub, HubClient(LocalLink(hub)) as client:
        await silent(client, "worker", "crunch")
        alice = await client.register(name="alice")
        task = await alice.delegate("crunch", {"n": 1}, ttl=60)
        await state_is(hub, task.task_id, "IN_PROGRESS")
        channel_id = hub.get_task(task.task_id).channel_id
        assert channel_id is not None
        # As if the channel had closed and the task not yet moved on: the record still points at it.
        closed = msgspec.structs.replace(
            hub.get_channel(channel_id), state=ChannelState.CLOSED, closed_at="2026-01-01T00:00:00.000000Z"
        )
        await hub.store.put_channel(closed)
        report = await hub.compact(ALL_CLOSED)
        assert report.channels == 0
    store = SqliteStore(db)
    try:
        assert (await store.compact(ALL_CLOSED, dry_run=True)).channel_ids == (channel_id,)
        assert (await compact(store, ALL_CLOSED, dry_run=True)).channels == 0
    finally:
        await store.aclose()
