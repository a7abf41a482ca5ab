"""Broadcast: one text to every connected agent (or those with a capability), counted, in a WAL,
delivered and acked like anything else; nobody answers it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_OPENED,
    EV_TEXT,
    AccessBlock,
    AccessDeniedError,
    AgentClient,
    ChannelClosedError,
    ChannelState,
    ChannelTypeAccess,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    InboxBlock,
    LimitsBlock,
    LocalLink,
    NotFoundError,
    Passport,
    Resume,
    Rule,
    SqliteStore,
    UsageError,
)
from tests.hub._waiting import wait_until


async def listening(
    client: HubClient, name: str, *caps: str, **kw: object
) -> tuple[AgentClient, list[Envelope]]:
    got: list[Envelope] = []
    agent = await client.register(
        FunctionAgent(lambda turn: "a reply nobody asked for", name=name, capabilities=list(caps)), **kw
    )
    agent.on_envelope(got.append)
    return agent, got


async def test_every_connected_agent_gets_it_once_and_nobody_replies(hub: Hub, client: HubClient) -> None:
    hq = await client.register(name="hq")
    heard = [await listening(client, name) for name in ("a", "b", "c")]
    await hub.register(Passport(name="offline"))  # registered, not connected: not counted
    assert await hq.broadcast("all hands at noon") == 3
    for _, got in heard:
        await wait_until(lambda got=got: len(got) == 2, what="text and close delivered")
        text, closed = got
        assert (text.event_type, text.text, text.sender_id) == (EV_TEXT, "all hands at noon", hq.agent_id)
        assert (closed.event_type, closed.event_data["reason"]) == (EV_CHANNEL_CLOSED, "broadcast_sent")
    [meta] = hub.list_channels()
    assert meta.manifest.type == "broadcast"
    assert (meta.state, meta.close_reason, meta.creator_id) == (
        ChannelState.CLOSED,
        "broadcast_sent",
        hq.agent_id,
    )
    assert sorted(meta.participant_ids()) == sorted([hq.agent_id, *(agent.agent_id for agent, _ in heard)])
    wal = await hub.read_wal(meta.channel_id)
    assert [e.event_type for e in wal] == [EV_CHANNEL_OPENED, EV_TEXT, EV_CHANNEL_CLOSED]
    assert wal[0].audience == [hq.agent_id]  # the opened record is for the WAL, not for recipients
    # Recipients acked it like any delivery: no inbox holds it any more.
    await wait_until(lambda: all(hub.governance.inbox.count(a.agent_id) == 0 for a, _ in heard), what="acks")


async def test_only_agents_with_the_capability(hub: Hub, client: HubClient) -> None:
    hq = await client.register(name="hq")
    translator, got = await listening(client, "translator", "translate")
    _, other = await listening(client, "other", "summarize")
    assert await hq.broadcast("new glossary", capability="Translate") == 1
    await wait_until(lambda: len(got) == 2, what="the translator told")
    assert other == []
    assert translator.agent_id in hub.list_channels()[0].participant_ids()


async def test_nobody_to_tell_writes_nothing(hub: Hub, client: HubClient) -> None:
    hq = await client.register(name="hq")
    assert await hq.broadcast("anyone?") == 0
    await listening(client, "a", "summarize")
    assert await hq.broadcast("anyone translating?", capability="translate") == 0
    assert hub.list_channels() == []


async def test_agents_the_rules_keep_out_and_full_inboxes_are_left_out(hub: Hub, client: HubClient) -> None:
    hq = await client.register(name="hq")
    await listening(client, "private", rule=Rule(access=AccessBlock(inbound_from=["friends-*"])))
    await listening(
        client,
        "no-broadcasts",
        rule=Rule(access=AccessBlock(channel_types=ChannelTypeAccess(accept=["consulting"]))),
    )
    full = await client.register(
        name="full", rule=Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=1))), handle_turns=False
    )
    await full.aclose()  # connected, but acks nothing from now on
    _, got = await listening(client, "open")
    assert await hq.broadcast("first") == 2  # open and full; private and no-broadcasts are left out
    await wait_until(lambda: hub.governance.inbox.count(full.agent_id) == 1, what="full's inbox full")
    assert await hq.broadcast("second") == 1
    await wait_until(lambda: [e.text for e in got if e.event_type == EV_TEXT] == ["first", "second"])


async def test_a_sender_the_rules_forbid_broadcasts_is_refused(hub: Hub, client: HubClient) -> None:
    rule = Rule(access=AccessBlock(channel_types=ChannelTypeAccess(initiate=["consulting"])))
    hq = await client.register(name="hq", rule=rule)
    await listening(client, "a")
    with pytest.raises(AccessDeniedError) as err:
        await hq.broadcast("hello")
    assert err.value.reason == "access.channel_types.initiate"
    assert hub.list_channels() == []


@pytest.mark.parametrize(("text", "capability"), [("", None), ("hi", "  ")])
async def test_bad_text_or_capability(hub: Hub, client: HubClient, text: str, capability: str | None) -> None:
    hq = await client.register(name="hq")
    await listening(client, "a")
    with pytest.raises(UsageError):
        await hq.broadcast(text, capability=capability)
    assert hub.list_channels() == []


async def test_an_unknown_sender(hub: Hub) -> None:
    with pytest.raises(NotFoundError):
        await hub.broadcast("ghost", "boo")


async def test_recipients_cannot_answer_and_the_sender_cannot_send_twice(hub: Hub, client: HubClient) -> None:
    hq = await client.register(name="hq")
    a = await client.register(name="a", handle_turns=False)
    assert await hq.broadcast("once") == 1
    [meta] = hub.list_channels()
    for sender in (a, hq):
        with pytest.raises(ChannelClosedError):
            await sender.send_envelope(Envelope(channel_id=meta.channel_id, event_data={"text": "more"}))


async def test_a_broadcast_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Hub(SqliteStore(db)) as hub, HubClient(LocalLink(hub)) as client:
        hq = await client.register(name="hq")
        a = await client.register(name="a", resume=Resume(claimed_capabilities=["x"]), handle_turns=False)
        await a.aclose()  # connected, never acks: the text stays pending for it
        assert await hq.broadcast("kept") == 1
        [meta] = hub.list_channels()
    async with Hub(SqliteStore(db)) as again, HubClient(LocalLink(again)) as client:
        assert again.get_channel(meta.channel_id).state is ChannelState.CLOSED
        got: list[Envelope] = []
        a2 = await client.attach(None, "a", since_envelope_id=None, handle_turns=False)
        a2.on_envelope(got.append)
        assert await a2.replay() == 2
        await wait_until(
            lambda: [e.text for e in got if e.event_type == EV_TEXT] == ["kept"], what="replayed"
        )
