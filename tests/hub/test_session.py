"""A connection's session refuses receipts for deliveries it never got, and serves ag2's WAL paging."""

from __future__ import annotations

import pytest

from hubbub import EV_TEXT, Hub, HubClient, LocalLink, ProtocolError


async def test_a_receipt_for_something_never_delivered_is_refused(hub: Hub) -> None:
    client = HubClient(LocalLink(hub))
    alice = await client.register(name="alice", handle_turns=False)
    bob = await client.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    own = await channel.send("mine")
    before = hub.delivery.cursor(bob.agent_id, channel.id)
    link = client.link
    assert isinstance(link, LocalLink)
    with pytest.raises(ProtocolError) as err:
        await link.receipt("f" * 32, "ack", bob.agent_id, channel.id)
    assert "was never delivered to" in str(err.value)
    with pytest.raises(ProtocolError):
        await link.receipt(
            own, "ack", alice.agent_id, channel.id
        )  # alice sent it; it was not delivered to her
    assert hub.delivery.cursor(bob.agent_id, channel.id) == before
    await client.aclose()


async def test_read_wal_accepts_ag2_list_positions(hub: Hub) -> None:
    client = HubClient(LocalLink(hub))
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    for i in range(5):
        await channel.send(f"m{i}")
    whole = await hub.read_wal(channel.id)
    by_position = await client.request("read_wal", {"channel_id": channel.id, "since": 3, "until": 6})
    assert [e.envelope_id for e in by_position] == [e.envelope_id for e in whole[3:6]]
    texts = await client.request("read_wal", {"channel_id": channel.id, "since": 0})
    assert [e.text for e in texts if e.event_type == EV_TEXT] == ["m0", "m1", "m2", "m3", "m4"]
    with pytest.raises(ProtocolError) as err:
        await client.request("read_wal", {"channel_id": channel.id, "limit": -1})
    assert "limit" in str(err.value)
    await client.aclose()
