"""Replays: a long one paces itself on the connection's outbox; new envelopes never overtake
the backlog a replay still owes (acks are cumulative: an ack of a newer envelope would cover
older ones the agent never processed)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import websockets

from hubbub import (
    EV_TEXT,
    Channel,
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
from tests._peers import absent_peer
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until

ROOMY = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=5000)))


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


async def backlog(hub: Hub, size: int) -> tuple[HubClient, Channel, list[str]]:
    """alice's client (in process) and a conversation alice -> bob holding ``size`` texts bob
    (registered, gone) never acked."""
    local = HubClient(LocalLink(hub))
    alice = await local.register(name="alice", handle_turns=False)
    channel, _ = await absent_peer(hub, alice, rule=ROOMY)
    return local, channel, [await channel.send(f"old{i}") for i in range(size)]


async def send_live(channel: Any, count: int) -> list[str]:
    sent = []
    for i in range(count):
        sent.append(await channel.send(f"live{i}"))
        await asyncio.sleep(0.001)
    return sent


async def test_new_envelopes_during_a_replay_follow_the_backlog(hub: Hub, link: str) -> None:
    local, channel, old = await backlog(hub, 1500)
    async with serve_ws(hub, port=0, outbox_size=100) as server:
        back = HubClient(LocalLink(hub) if link == "local" else WsLink(server.url))
        bob = await back.attach(None, "bob", handle_turns=False, since_envelope_id=None)
        got: list[str] = []
        bob.on_envelope(lambda e: got.append(e.envelope_id) if e.event_type == EV_TEXT else None)

        async def while_replaying() -> list[str]:
            await wait_until_length(got, 1)  # the replay is under way (over ws: paced by the outbox)
            return await send_live(channel, 30)

        live = asyncio.create_task(while_replaying())
        await bob.replay()
        new = await live
        await wait_until_length(got, 1530)
        assert got == old + new  # the whole backlog first, then the new ones, each once, in order
        await back.aclose()
    await local.aclose()


async def test_a_hello_holds_new_envelopes_until_its_replay_sent_the_backlog(hub: Hub) -> None:
    local, channel, old = await backlog(hub, 1500)
    async with serve_ws(hub, port=0, outbox_size=100) as server:
        ws = await websockets.connect(server.url, compression=None)
        await ws.send(json.dumps({"kind": "hello", "name": "bob", "since_envelope_id": ""}))
        live = asyncio.create_task(send_live(channel, 20))
        texts = await texts_from(ws, 1520)
        new = await live
        assert texts == old + new
        await ws.close()
    await local.aclose()


async def test_an_attach_that_asks_to_hold_keeps_new_envelopes_for_its_replay(hub: Hub) -> None:
    local, channel, old = await backlog(hub, 50)
    async with serve_ws(hub, port=0) as server:
        ws = await websockets.connect(server.url, compression=None)
        assert await request(ws, "attach", {"name": "bob", "hold": True}) == []
        new = await send_live(channel, 5)  # durable, and not delivered yet: they wait for the replay
        bob_id = hub.registry.id_for_name("bob")
        assert await request(ws, "replay", {"agent_id": bob_id, "since_envelope_id": ""}) == old + new
        after = await channel.send("after")  # the replay is over: straight through
        assert await texts_from(ws, 1) == [after]
        await ws.close()
    await local.aclose()


async def wait_until_length(items: list[str], length: int) -> None:
    await wait_until(lambda: len(items) >= length, 20 * TIME_UNIT)


async def texts_from(ws: Any, count: int) -> list[str]:
    """The ids of the next ``count`` text notifies (other frames skipped)."""
    got: list[str] = []
    async with asyncio.timeout(20 * TIME_UNIT):
        while len(got) < count:
            frame = json.loads(await ws.recv())
            if frame["kind"] == "notify" and frame["envelope"]["event_type"] == EV_TEXT:
                got.append(frame["envelope"]["envelope_id"])
    return got


async def request(ws: Any, op: str, params: dict[str, Any]) -> list[str]:
    """Send a request and wait for its (ok) response; the ids of the texts notified on the way."""
    await ws.send(json.dumps({"kind": "request", "request_id": op, "op": op, "params": params}))
    texts: list[str] = []
    async with asyncio.timeout(20 * TIME_UNIT):
        while True:
            frame = json.loads(await ws.recv())
            if frame["kind"] == "response":
                assert frame["ok"], frame
                return texts
            if frame["kind"] == "notify" and frame["envelope"]["event_type"] == EV_TEXT:
                texts.append(frame["envelope"]["envelope_id"])


async def test_a_peer_that_vanishes_during_a_stalled_replay_is_let_go(hub: Hub) -> None:
    # A hello's replay runs before the connection reads on; stalled on a full outbox (the peer
    # stopped reading), it must still end when the socket does, or the agent stays bound to a
    # dead connection and the server cannot shut down.
    local, channel, _ = await backlog(hub, 0)
    for _ in range(1500):
        await channel.send("x" * 8000)
    bob_id = hub.registry.id_for_name("bob")
    async with asyncio.timeout(30 * TIME_UNIT), serve_ws(hub, port=0, outbox_size=100) as server:
        ws = await websockets.connect(server.url, compression=None, max_size=None)
        ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ws.transport.pause_reading()  # reads nothing: the hub's side fills up
        await ws.send(json.dumps({"kind": "hello", "name": "bob", "since_envelope_id": ""}))
        # The replay stalls: the outbox is past half full, so it waits for room.
        await wait_until(lambda: any(len(c.outbox) > 50 for c in server._connections), 10 * TIME_UNIT)
        ws.transport.abort()
        await wait_until(lambda: hub.delivery.endpoint_of(bob_id) is None, 10 * TIME_UNIT)
        await wait_until(lambda: server.connection_count == 0, 10 * TIME_UNIT)
    # ...and the server shut down within the timeout
    await local.aclose()
