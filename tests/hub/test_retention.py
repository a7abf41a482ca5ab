"""Hub.compact on a running hub: closed channels' WALs go, the hub keeps serving them as empty, a
restart on the same SqliteStore resumes, and channels the hub still needs are kept whole."""

from __future__ import annotations

from pathlib import Path

import msgspec

from hubbub import ChannelState, FunctionAgent, Hub, HubClient, LocalLink, SqliteStore, WsLink, serve_ws
from hubbub.hub.retention import compact
from hubbub.storage import RetentionPolicy
from tests.conftest import TIME_UNIT
from tests.hub._delegation import silent, state_is
from tests.hub._waiting import wait_until

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


async def test_channels_with_unacked_deliveries_are_kept(hub: Hub) -> None:
    client = HubClient(LocalLink(hub))
    alice = await client.register(name="alice")
    away = HubClient(LocalLink(hub))
    await away.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    await away.aclose()
    await channel.send("while you were away")
    await channel.close()
    report = await hub.compact(ALL_CLOSED)
    assert report.channels == 0
    assert len(await hub.read_wal(channel.id)) == 5
    await client.aclose()


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
