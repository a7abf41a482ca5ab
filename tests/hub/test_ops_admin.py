"""Operator views of the whole hub: hub_agents, hub_channels, hub_wal, audit_query (over both links),
and who may read them on a hub that checks credentials."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hubbub import (
    EV_TEXT,
    AgentClient,
    ApiKeyAuth,
    AuditRecord,
    AuthBlock,
    AuthError,
    AuthRegistry,
    ChannelMetadata,
    FunctionAgent,
    Hub,
    HubClient,
    NotFoundError,
    Passport,
    ProtocolError,
    WsLink,
    serve_ws,
)
from hubbub.hub import _ops_admin
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until

KEY = "k-0123456789abcdef"


async def test_hub_agents_shows_resume_liveness_and_open_channels(client: HubClient) -> None:
    echo = FunctionAgent(lambda t: t.prompt, name="echo", capabilities=["echo", "summarize"])
    await client.register(echo)
    alice = await client.register(name="alice", handle_turns=False)
    await alice.open("conversation", "echo")
    infos = {i.passport.name: i for i in await client.hub_agents()}
    assert set(infos) == {"echo", "alice"}
    assert infos["echo"].resume.claimed_capabilities == ["echo", "summarize"]
    assert infos["echo"].connected
    assert infos["alice"].connected
    assert infos["echo"].open_channels == 1
    [found] = await client.hub_agents(capability="summar")
    assert found.passport.name == "echo"
    assert await client.hub_agents(capability="nothing") == []
    await alice.aclose()
    await client.request("unregister", {"agent_id": alice.agent_id})
    assert [i.passport.name for i in await client.hub_agents()] == ["echo"]


async def test_hub_agents_marks_disconnected_agents(hub: Hub) -> None:
    async with serve_ws(hub) as server:
        async with HubClient(WsLink(server.url)) as gone:
            await gone.register(name="gone", handle_turns=False)
        async with HubClient(WsLink(server.url)) as looker:
            for _ in range(500):  # the hub unbinds once it sees the socket close
                [info] = await looker.hub_agents()
                if not info.connected:
                    break
                await asyncio.sleep(0.01)
    assert info.passport.name == "gone"
    assert not info.connected


async def test_hub_channels_filters_and_orders_newest_first(client: HubClient) -> None:
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(name="bob", handle_turns=False)
    await client.register(name="carol", handle_turns=False)
    first = await alice.open("conversation", "bob")
    second = await alice.open("discussion", ["bob", "carol"])
    await first.close()
    ids = [m.channel_id for m in await client.hub_channels()]
    assert ids == [second.id, first.id]
    assert [m.channel_id for m in await client.hub_channels(state="closed")] == [first.id]
    assert [m.channel_id for m in await client.hub_channels(type="discussion")] == [second.id]
    assert [m.channel_id for m in await client.hub_channels(agent="carol")] == [second.id]
    assert [m.channel_id for m in await client.hub_channels(limit=1)] == [second.id]
    with pytest.raises(ProtocolError, match="param 'state' must be one of pending, active"):
        await client.hub_channels(state="open")
    with pytest.raises(NotFoundError, match="nobody"):
        await client.hub_channels(agent="nobody")
    with pytest.raises(ProtocolError, match="param 'page'"):
        await client.request("hub_channels", {"page": "yes"})
    with pytest.raises(ProtocolError, match="param 'before' must be a string"):
        await client.request("hub_channels", {"before": 7})


async def consultations(client: HubClient, count: int) -> tuple[AgentClient, list[str]]:
    """An asker and an oracle on ``client``, and the ids of ``count`` consultations, oldest first."""
    asker = await client.register(name="asker", handle_turns=False)
    await client.register(FunctionAgent(lambda turn: "42", name="oracle"))
    return asker, await consultations_of(asker, count)


async def consultations_of(asker: AgentClient, count: int) -> list[str]:
    done = []
    for n in range(count):
        channel = await asker.open("consulting", "oracle", first=f"question {n}")
        await channel.wait_closed(timeout=5 * TIME_UNIT)
        done.append(channel.id)
    return done


async def test_hub_channels_lists_closed_channels_that_left_memory_and_pages(
    hub: Hub, client: HubClient
) -> None:
    hub.channels.keep_closed = 1
    asker, done = await consultations(client, 4)
    talk = await asker.open("conversation", "oracle")
    await wait_until(lambda: hub.channels.find(done[1]) is None, what="older consultations leaving memory")
    newest_first = [talk.id, *done[::-1]]
    assert [m.channel_id for m in await client.hub_channels()] == newest_first
    closed = await client.hub_channels(state="closed", type="consulting")
    assert [(m.channel_id, m.close_reason) for m in closed] == [
        (c, "consulting_complete") for c in done[::-1]
    ]
    assert [m.channel_id for m in await client.hub_channels(agent="oracle", limit=2)] == newest_first[:2]
    page = await client.hub_channels(limit=2, before=newest_first[1])
    assert [m.channel_id for m in page] == newest_first[2:4]
    assert [m.channel_id for m in await client.hub_channels(before=done[0])] == []
    assert await client.hub_channels(state="active", before=done[2]) == []
    # Paged: every channel exactly once, and the end is said.
    seen: list[str] = []
    before: str | None = None
    while True:
        metas, before = await client.hub_channels_page(limit=2, before=before)
        seen += [m.channel_id for m in metas]
        if before is None:
            break
    assert seen == newest_first


async def test_hub_channels_says_where_to_go_on_when_its_scan_bound_stops_it(
    hub: Hub, client: HubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.channels.keep_closed = 0
    asker, done = await consultations(client, 1)
    talk = await asker.open("conversation", "oracle")  # open, so in memory, and older than the rest
    done += await consultations_of(asker, 3)
    everything = [m.channel_id for m in await client.hub_channels()]
    assert everything == [*done[:0:-1], talk.id, done[0]]
    monkeypatch.setattr(_ops_admin, "_SCAN_PAGE", 1)
    monkeypatch.setattr(_ops_admin, "MAX_SCANNED", 2)
    # Every channel once, in order, whatever the bound cuts: the in-memory one is not repeated.
    seen: list[str] = []
    before: str | None = None
    while True:
        metas, before = await client.hub_channels_page(before=before)
        seen += [m.channel_id for m in metas]
        if before is None:
            break
    assert seen == everything
    # Nothing matches, but only 2 stored channels were read: the answer says where to go on.
    metas, before = await client.hub_channels_page(type="discussion")
    assert metas == []
    assert before is not None
    pages = 1
    while before is not None:
        metas, before = await client.hub_channels_page(type="discussion", before=before)
        assert metas == []
        pages += 1
    assert pages == 3  # 5 channels stored, 2 read per request, then the end


async def test_a_channel_leaving_memory_while_hub_channels_reads_the_store_is_listed_once(
    hub: Hub, client: HubClient
) -> None:
    hub.channels.keep_closed = 100
    asker, done = await consultations(client, 3)
    for cid in done:
        await wait_until(lambda c=cid: hub.delivery.cursor(asker.agent_id, c) is not None)
    scan = hub.store.scan_channels

    async def evicting_scan(**kwargs: Any) -> list[ChannelMetadata]:
        hub.channels.keep_closed = 0
        hub.channels.crowded()  # they leave memory between the look at memory and the store read
        return await scan(**kwargs)

    hub.store.scan_channels = evicting_scan  # type: ignore[method-assign]
    assert [m.channel_id for m in await client.hub_channels(state="closed")] == done[::-1]


async def test_hub_wal_reads_any_channel_by_cursor_or_tail(client: HubClient) -> None:
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    for i in range(5):
        await channel.send(f"m{i}")
    whole = await client.hub_wal(channel.id)
    texts = [e.text for e in whole if e.event_type == EV_TEXT]
    assert texts == ["m0", "m1", "m2", "m3", "m4"]
    assert [e.text for e in await client.hub_wal(channel.id, tail=2)] == ["m3", "m4"]
    after = await client.hub_wal(channel.id, since=whole[-3].envelope_id, limit=1)
    assert [e.envelope_id for e in after] == [whole[-2].envelope_id]
    with pytest.raises(NotFoundError, match="no channel 'nope'"):
        await client.hub_wal("nope")
    with pytest.raises(ProtocolError, match="'tail' must be an integer from 1"):
        await client.hub_wal(channel.id, tail=0)
    with pytest.raises(ProtocolError, match="exclude each other"):
        await client.hub_wal(channel.id, since=whole[0].envelope_id, tail=2)
    with pytest.raises(ProtocolError, match="at most 10000"):
        await client.request("hub_wal", {"channel_id": channel.id, "limit": 10_001})


async def test_audit_query_filters_by_name_and_reads_the_tail(client: HubClient) -> None:
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    await channel.close()
    kinds = [r.kind for r in await _eventually(client, 4)]
    assert kinds == ["agent_registered", "agent_registered", "channel_created", "channel_closed"]
    by_alice = await client.audit_query(agent="alice")
    assert [r.kind for r in by_alice] == ["agent_registered", "channel_created", "channel_closed"]
    assert [r.kind for r in await client.audit_query(limit=1, tail=True)] == ["channel_closed"]
    assert [r.kind for r in await client.audit_query(limit=1)] == ["agent_registered"]
    [closed] = await client.audit_query(kind="channel_closed", channel_id=channel.id)
    assert closed.at >= by_alice[0].at
    assert await client.audit_query(since=closed.at, kind="channel_created") == []
    with pytest.raises(ProtocolError, match="'tail' must be true or false"):
        await client.request("audit_query", {"tail": "yes"})


async def _eventually(client: HubClient, n: int) -> list[AuditRecord]:
    """The audit log is written by a listener, a moment after the event."""
    for _ in range(500):
        records = await client.audit_query()
        if len(records) >= n:
            return records
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {n} audit records")


async def test_on_a_hub_with_keys_whole_hub_views_need_an_authenticated_connection() -> None:
    auth = AuthRegistry([ApiKeyAuth({"ops": KEY})])
    async with Hub(auth=auth) as hub, serve_ws(hub) as server, HubClient(WsLink(server.url)) as anonymous:
        assert await anonymous.hub_agents() == []  # open, like list_agents
        assert (await anonymous.hub_status())["agents"] == 0
        for op in ("hub_channels", "audit_query", "hub_wal", "task_list", "task_status", "task_wait"):
            with pytest.raises(AuthError, match="register or attach an agent") as err:
                await anonymous.request(op, {"channel_id": "x", "task_id": "t"})
            assert err.value.reason == "not_authenticated"
        passport = Passport(name="ops", auth=AuthBlock(scheme="api_key", claim={"api_key": KEY}))
        await anonymous.register(passport=passport, handle_turns=False)
        assert await anonymous.hub_channels() == []
        assert [r.kind for r in await _eventually(anonymous, 1)] == ["agent_registered"]
