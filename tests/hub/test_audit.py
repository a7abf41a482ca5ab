"""The audit log: persisted governance events, queryable by kind, agent, channel and time, followable."""

from __future__ import annotations

import asyncio

from hubbub import AuditRecord, Hub, HubClient
from hubbub.model._time import iso_now
from tests.conftest import TIME_UNIT


async def test_query_filters_by_kind_agent_channel_and_time(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice", handle_turns=False)
    before = iso_now()
    await client.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    await channel.close("done")
    await hub.listeners.flush()

    kinds = [r.kind for r in await hub.audit.query()]
    assert kinds == ["agent_registered", "agent_registered", "channel_created", "channel_closed"]
    [created] = await hub.audit.query(kind="channel_created")
    assert created.channel_id == channel.id
    assert created.actor == alice.agent_id
    assert created.data["type"] == "conversation"
    [closed] = await hub.audit.query(kind="channel_closed", channel_id=channel.id)
    assert closed.reason == "done"
    assert [r.kind for r in await hub.audit.query(agent_id=alice.agent_id)] == [
        "agent_registered",
        "channel_created",
        "channel_closed",
    ]
    later = await hub.audit.query(since=before)
    assert [r.kind for r in later] == ["agent_registered", "channel_created", "channel_closed"]
    assert await hub.audit.query(until=before, kind="channel_closed") == []
    assert len(await hub.audit.query(limit=2)) == 2


async def test_follow_streams_new_records(hub: Hub, client: HubClient) -> None:
    got: list[AuditRecord] = []
    ready = asyncio.Event()

    async def follow() -> None:
        stream = hub.audit.follow(kind="channel_closed")
        ready.set()
        async for record in stream:
            got.append(record)
            return

    task = asyncio.create_task(follow())
    await ready.wait()
    await asyncio.sleep(0)
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    await channel.close("bye")
    await asyncio.wait_for(task, 5 * TIME_UNIT)
    assert [(r.kind, r.channel_id, r.reason) for r in got] == [("channel_closed", channel.id, "bye")]
