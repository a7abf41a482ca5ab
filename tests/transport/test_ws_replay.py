"""A replay longer than the connection's outbox paces itself instead of overflowing it."""

from __future__ import annotations

import asyncio

from hubbub import (
    EV_TEXT,
    Envelope,
    Hub,
    HubClient,
    InboxBlock,
    LimitsBlock,
    LocalLink,
    Rule,
    WsLink,
    serve_ws,
)
from tests.conftest import TIME_UNIT


async def test_long_replay_over_a_small_outbox_arrives_whole_and_in_order(hub: Hub) -> None:
    local = HubClient(LocalLink(hub))
    alice = await local.register(name="alice", handle_turns=False)
    async with serve_ws(hub, port=0, outbox_size=100) as server:
        away = HubClient(WsLink(server.url))
        roomy = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=5000)))
        await away.register(name="bob", handle_turns=False, rule=roomy)
        channel = await alice.open("conversation", "bob")
        await away.aclose()
        sent = [await channel.send(f"m{i}") for i in range(1500)]

        got: list[str] = []
        done = asyncio.Event()

        def collect(envelope: Envelope) -> None:
            if envelope.event_type == EV_TEXT:
                got.append(envelope.envelope_id)
                if len(got) == len(sent):
                    done.set()

        back = HubClient(WsLink(server.url))
        bob = await back.attach(None, "bob", handle_turns=False, since_envelope_id=None)
        bob.on_envelope(collect)
        assert await bob.replay() >= 1500  # plus lifecycle envelopes the first client had not acked yet
        await asyncio.wait_for(done.wait(), 20 * TIME_UNIT)
        assert got == sent
        await back.aclose()
    await local.aclose()
