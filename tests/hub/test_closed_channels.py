"""Closed channels leave the hub's memory beyond ``keep_closed``, and are read from the store after.

A hub that runs millions of consultations must not hold every channel it ever closed: beyond
the most recently closed ``keep_closed``, a closed channel whose every participant acked all of
it leaves memory. Everything a participant may still ask of it (metadata, the WAL, a retried
post, closing it again) is answered from the store, over both links.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubbub import (
    EV_TEXT,
    AccessDeniedError,
    AgentClient,
    ChannelClosedError,
    ChannelState,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    LocalLink,
    NotFoundError,
    SqliteStore,
    UsageError,
)
from hubbub.client.channel import Channel
from hubbub.hub.snapshots import SNAPSHOT_PREFIX
from tests.conftest import TIME_UNIT
from tests.hub._waiting import audit_records, wait_until


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub(invite_ack_timeout=5 * TIME_UNIT, keep_closed=1) as h:
        yield h


async def consult(asker: AgentClient, times: int) -> list[Channel]:
    channels = []
    for n in range(times):
        channel = await asker.open("consulting", "oracle", first=f"question {n}")
        assert (await channel.wait_closed(timeout=5 * TIME_UNIT)).close_reason == "consulting_complete"
        channels.append(channel)
    return channels


async def settled(hub: Hub, channel_id: str) -> None:
    await wait_until(lambda: hub.channels.find(channel_id) is None, what=f"channel {channel_id} left memory")


async def test_a_closed_channel_leaves_memory_and_is_still_read(hub: Hub, client: HubClient) -> None:
    asker = await client.register(name="asker", handle_turns=False)
    oracle = await client.register(FunctionAgent(lambda turn: "42", name="oracle"))
    first, *_ = await consult(asker, 3)
    await settled(hub, first.id)
    assert hub.delivery.cursor(asker.agent_id, first.id) is None  # its cursors left memory too

    # What a participant may still ask of it comes from the store.
    meta = await client.get_channel(first.id)
    assert (meta.state, meta.close_reason) == (ChannelState.CLOSED, "consulting_complete")
    texts = [e.event_data["text"] for e in await first.read() if e.event_type == EV_TEXT]
    assert texts == ["question 0", "42"]
    with pytest.raises(ChannelClosedError) as closed:
        await first.send("one more thing")
    assert closed.value.reason == "closed"
    assert (await first.close("again")).close_reason == "consulting_complete"  # changes nothing
    assert (await hub.fetch_channel(first.id)).participant_ids() == [asker.agent_id, oracle.agent_id]
    with pytest.raises(NotFoundError, match="fetch_channel"):
        hub.get_channel(first.id)  # memory only, and it says where else to look
    with pytest.raises(NotFoundError):
        await hub.fetch_channel("no-such-channel")

    # A late ack of an early envelope moves no cursor back (nor brings one back into memory).
    question = next(e for e in await first.read() if e.event_type == EV_TEXT)
    before = await hub.store.load_cursors()
    hub.acked(oracle.agent_id, first.id, question.envelope_id)
    assert hub.delivery.cursor(oracle.agent_id, first.id) is None
    assert await hub.store.load_cursors() == before

    # The most recently closed one stays in memory.
    assert len([r for r in hub.channels.all() if r.metadata.is_terminal()]) == 1


async def test_an_outsider_still_cannot_read_a_channel_that_left_memory(hub: Hub, client: HubClient) -> None:
    asker = await client.register(name="asker", handle_turns=False)
    await client.register(FunctionAgent(lambda turn: "42", name="oracle"))
    first, *_ = await consult(asker, 3)
    await settled(hub, first.id)
    async with HubClient(LocalLink(hub)) as other:
        eve = await other.register(name="eve", handle_turns=False)
        with pytest.raises(AccessDeniedError):
            await other.get_channel(first.id)
        with pytest.raises(AccessDeniedError):
            await other.read_wal(first.id)
        intrusion = Envelope(channel_id=first.id, sender_id=eve.agent_id, event_type=EV_TEXT, event_data={})
        with pytest.raises(AccessDeniedError):
            await hub.post_envelope(intrusion)
        await audit_records(hub, "send_denied", channel_id=first.id)  # audited as in memory


async def test_a_channel_with_deliveries_due_stays_in_memory(hub: Hub, client: HubClient) -> None:
    asker = await client.register(name="asker", handle_turns=False)
    await client.register(FunctionAgent(lambda turn: "42", name="oracle"))
    async with HubClient(LocalLink(hub)) as away:
        await away.register(name="bob", handle_turns=False)
        talk = await asker.open("conversation", "bob")
    await talk.send("are you there?")  # bob's client is gone: nobody acks this, or the close
    await talk.close("no answer")
    await consult(asker, 3)
    assert hub.channels.find(talk.id) is not None  # bob has it to replay on re-attach


async def test_a_closed_channel_leaves_memory_once_acked_even_if_nothing_else_closes(
    hub: Hub, client: HubClient
) -> None:
    hub.channels.keep_closed = 0
    asker = await client.register(name="asker", handle_turns=False)
    await client.register(FunctionAgent(lambda turn: "42", name="oracle"))
    [only] = await consult(asker, 1)  # its acks come after its close: the close alone cannot let it go
    await settled(hub, only.id)


async def test_a_restarted_hub_keeps_only_the_newest_closed_channels(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Hub(await SqliteStore.open(db), keep_closed=1) as hub, HubClient(LocalLink(hub)) as client:
        asker = await client.register(name="asker", handle_turns=False)
        await client.register(FunctionAgent(lambda turn: "42", name="oracle"))
        ids = [c.id for c in await consult(asker, 3)]
        await settled(hub, ids[0])
    async with Hub(await SqliteStore.open(db), keep_closed=1) as hub:
        in_memory = [cid for cid in ids if hub.channels.find(cid) is not None]
        assert len(in_memory) == 1
        for cid in ids:
            assert (await hub.fetch_channel(cid)).state is ChannelState.CLOSED
        # Retired in the store: the start-up read neither them nor their cursors and snapshots.
        retired = set(ids[:2])
        assert {m.channel_id for m in await hub.store.load_channels()}.isdisjoint(retired)
        assert {c for _, c in await hub.store.load_cursors()}.isdisjoint(retired)
        assert set(await hub.store.scan_kv(SNAPSHOT_PREFIX)).isdisjoint(SNAPSHOT_PREFIX + c for c in retired)
        async with HubClient(LocalLink(hub)) as client:
            asker = await client.attach(None, "asker", handle_turns=False)
            texts = [e.event_data["text"] for e in await client.read_wal(ids[0]) if e.event_type == EV_TEXT]
            assert texts == ["question 0", "42"]
            assert await asker.replay() == 0  # everything was acked before it retired


def test_keep_closed_must_be_a_count() -> None:
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(UsageError, match="keep_closed"):
            Hub(keep_closed=bad)  # type: ignore[arg-type]
