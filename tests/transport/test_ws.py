"""The WebSocket transport on real sockets (127.0.0.1, port 0): handshake, concurrency, bad
frames, limits, slow consumers and disconnects. Frame-level tests use a raw ``websockets``
client, so they see exactly what a client in another language would."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from hubbub import (
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_TEXT,
    AccessDeniedError,
    ChannelMetadata,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    HubTimeoutError,
    InboxBlock,
    LimitsBlock,
    LocalLink,
    Passport,
    ProtocolError,
    Rule,
    TransportError,
    UsageError,
    WsLink,
    serve_ws,
)
from hubbub.client._convert import as_type
from hubbub.model.turn import PendingTurn, TurnContext
from hubbub.protocol.codec import decode_frame
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until

WAIT = 5 * TIME_UNIT


@pytest.fixture
async def server(hub: Hub) -> AsyncIterator[Any]:
    async with serve_ws(hub) as s:
        yield s


async def raw(url: str, **options: Any) -> ClientConnection:
    return await websockets.connect(url, compression=None, **options)


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def next_frame(ws: ClientConnection, kind: str | None = None) -> dict[str, Any]:
    """The next frame (of ``kind``, skipping others)."""
    async with asyncio.timeout(WAIT):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if kind is None or frame["kind"] == kind:
                return frame


async def call(ws: ClientConnection, op: str, params: dict[str, Any], request_id: str = "r") -> Any:
    """Send one request and return its response frame (notifies on the way are skipped)."""
    await send(ws, {"kind": "request", "request_id": request_id, "op": op, "params": params})
    async with asyncio.timeout(WAIT):
        while True:
            frame = await next_frame(ws, "response")
            if frame["request_id"] == request_id:
                return frame


async def register(ws: ClientConnection, name: str, **params: Any) -> str:
    response = await call(ws, "register", {"passport": {"name": name}, **params}, request_id=f"reg-{name}")
    assert response["ok"], response
    agent_id: str = response["result"]["agent_id"]
    return agent_id


async def read_until_closed(ws: ClientConnection) -> ConnectionClosed:
    """Read (and drop) everything the hub sent until the connection closes."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                return closed


async def accept_invite(ws: ClientConnection, agent_id: str) -> None:
    """Answer the next invite delivered on ``ws`` with an ack from ``agent_id``."""
    invite = (await next_frame(ws, "notify"))["envelope"]
    assert invite["event_type"] == EV_CHANNEL_INVITE
    ack = {
        "channel_id": invite["channel_id"],
        "sender_id": agent_id,
        "event_type": EV_CHANNEL_INVITE_ACK,
        "causation_id": invite["envelope_id"],
    }
    response = await call(ws, "post_envelope", {"envelope": ack}, request_id=f"ack-{invite['envelope_id']}")
    assert response["ok"], response


def decoder_message(data: str) -> str:
    with pytest.raises(ProtocolError) as err:
        decode_frame(data)
    return str(err.value)


# ── handshake ───────────────────────────────────────────────────────────────


async def test_hello_binds_a_registered_agent_and_gets_welcome(hub: Hub, server: Any) -> None:
    bob = await hub.register(Passport(name="bob"))
    async with await raw(server.url) as ws:
        await send(ws, {"kind": "hello", "name": "bob"})
        welcome = await next_frame(ws)
        assert welcome["kind"] == "welcome"
        assert set(welcome) == {"kind", "endpoint_id", "hub_time"}
        assert len(welcome["endpoint_id"]) == 32
        assert welcome["hub_time"].endswith("Z")
        assert hub.delivery.is_connected(bob.agent_id or "")
        # Bound: the connection now acts as bob.
        response = await call(ws, "list_channels", {"agent_id": bob.agent_id})
        assert (response["ok"], response["result"]) == (True, [])


async def test_hello_for_an_unknown_name_is_an_error_frame(server: Any) -> None:
    async with await raw(server.url) as ws:
        await send(ws, {"kind": "hello", "name": "nobody"})
        error = await next_frame(ws)
        assert (error["kind"], error["code"], error["envelope_id"]) == ("error", "not_found", None)
        assert "'nobody'" in error["message"]
        await send(ws, {"kind": "ping"})
        assert await next_frame(ws) == {"kind": "pong"}


async def test_hello_with_a_credential_is_refused_while_the_hub_has_no_auth(hub: Hub, server: Any) -> None:
    bob = await hub.register(Passport(name="bob"))
    async with await raw(server.url) as ws:
        await send(ws, {"kind": "hello", "name": "bob", "auth_scheme": "api_key", "auth_claim": {"k": "x"}})
        error = await next_frame(ws)
        assert (error["kind"], error["code"]) == ("error", "auth_failed")
        assert "'api_key'" in error["message"]
        assert "registered with auth scheme 'none', not 'api_key'" in error["message"]
        assert not hub.delivery.is_connected(bob.agent_id or "")


async def test_register_without_hello_binds_the_connection(hub: Hub, server: Any) -> None:
    async with await raw(server.url) as ws:
        ada = await register(ws, "ada")
        assert hub.delivery.is_connected(ada)
        response = await call(ws, "pending_turns_for", {"agent_id": ada})
        assert (response["ok"], response["result"]) == (True, [])


# ── requests ────────────────────────────────────────────────────────────────


async def test_both_ends_on_one_connection_open_and_finish_a_consulting_channel(
    hub: Hub, server: Any
) -> None:
    async with HubClient(WsLink(server.url)) as client:
        alice = await client.register(FunctionAgent(lambda t: "unused", name="alice"))
        await client.register(FunctionAgent(lambda t: f"4, said {t.agent_name}", name="bob"))
        channel = await alice.open("consulting", "bob")
        await channel.send("2+2?")
        final = await channel.wait_closed(timeout=WAIT)
        assert final.close_reason == "consulting_complete"
        texts = [e.text for e in await channel.read() if e.event_type == EV_TEXT]
        assert texts == ["2+2?", "4, said bob"]
    await wait_until(lambda: server.connection_count == 0, what="the server to drop the connection")


async def test_concurrent_requests_get_their_own_responses(server: Any) -> None:
    async with HubClient(WsLink(server.url)) as client:
        names = [f"agent{i}" for i in range(40)]
        for name in names:
            await client.register(name=name, handle_turns=False)
        found = await asyncio.gather(*(client.get_agent(n) for n in reversed(names)))
        assert [p.name for p in found] == list(reversed(names))


async def test_requests_past_the_inflight_limit_are_refused(hub: Hub) -> None:
    async with (
        serve_ws(hub, max_inflight_requests=2) as server,
        await raw(server.url) as opener,
        await raw(server.url) as invitee,
    ):
        await register(opener, "opener")
        bob = await register(invitee, "bob")
        for n in (1, 2):  # both wait for bob's ack
            await send(
                opener,
                {
                    "kind": "request",
                    "request_id": f"open{n}",
                    "op": "create_channel",
                    "params": {
                        "creator_id": await _id(hub, "opener"),
                        "manifest_type": "conversation",
                        "participants": ["bob"],
                    },
                },
            )
        invites = [await next_frame(invitee, "notify") for _ in (1, 2)]
        refused = await call(opener, "hub_status", {}, request_id="third")
        assert refused == {
            "kind": "response",
            "request_id": "third",
            "ok": False,
            "result": {"reason": "too_many_requests"},
            "error_code": "protocol_error",
            "error_message": "too many requests in flight (limit 2); await responses first",
        }
        for n, notify in enumerate(invites):
            invite = notify["envelope"]
            assert invite["event_type"] == EV_CHANNEL_INVITE
            ack = {
                "channel_id": invite["channel_id"],
                "sender_id": bob,
                "event_type": EV_CHANNEL_INVITE_ACK,
                "causation_id": invite["envelope_id"],
            }
            assert (await call(invitee, "post_envelope", {"envelope": ack}, request_id=f"a{n}"))["ok"]
        opened = [await next_frame(opener, "response") for _ in (1, 2)]
        assert sorted(r["request_id"] for r in opened) == ["open1", "open2"]
        assert all(r["ok"] and r["result"]["state"] == "active" for r in opened)
        assert (await call(opener, "hub_status", {}, request_id="fourth"))["ok"]


async def _id(hub: Hub, name: str) -> str:
    agent_id = hub.get_agent(name).agent_id
    assert agent_id is not None
    return agent_id


async def test_failed_requests_keep_their_typed_fields(hub: Hub, server: Any) -> None:
    async with HubClient(WsLink(server.url)) as client, HubClient(LocalLink(hub)) as local:
        ada = await local.register(name="ada", handle_turns=False)
        with pytest.raises(AccessDeniedError) as err:
            await client.request("set_resume", {"agent_id": ada.agent_id, "resume": {}})
        assert err.value.reason == "not_bound"
        assert err.value.agent_id == ada.agent_id
        assert type(err.value) is AccessDeniedError


async def test_typed_results_round_trip_over_the_wire(hub: Hub, server: Any) -> None:
    """What HubClient builds from JSON equals what the hub returns in process."""
    async with HubClient(WsLink(server.url)) as ws_client:
        alice = await ws_client.register(
            FunctionAgent(lambda t: "", name="alice", capabilities=["math"]), handle_turns=False
        )
        await ws_client.register(name="bob", handle_turns=False)
        channel = await alice.open("conversation", "bob", labels={"topic": "t"}, knobs={"max_turns": 9})
        sent = await channel.send("hello bob")
        bob = await _id(hub, "bob")
        assert await ws_client.get_channel(channel.id) == hub.get_channel(channel.id)
        assert channel.metadata == hub.get_channel(channel.id)
        assert await ws_client.read_wal(channel.id) == await hub.read_wal(channel.id)
        assert await ws_client.get_agent("alice") == hub.get_agent("alice")
        assert await ws_client.list_agents() == hub.list_agents()
        assert await ws_client.discover("math") == hub.discover("math")
        assert await alice.list_channels() == hub.list_channels(agent_id=alice.agent_id)
        assert all(isinstance(m, ChannelMetadata) for m in await alice.list_channels())
        raw_turns = await ws_client.request("pending_turns_for", {"agent_id": bob})
        assert raw_turns == [
            {
                "channel_id": channel.id,
                "triggering_envelope_id": sent,
                "expected_at": raw_turns[0]["expected_at"],
            }
        ]
        assert as_type(list[PendingTurn], raw_turns) == hub.pending_turns_for(bob)
        raw_ctx = await ws_client.request(
            "turn_context", {"channel_id": channel.id, "agent_id": bob, "envelope_id": sent}
        )
        ctx = as_type(TurnContext, raw_ctx)
        assert ctx == await hub.turn_context(channel.id, bob, sent)
        assert ctx.is_turn
        assert ctx.prompt == "hello bob"


async def test_deliveries_arrive_in_wal_order_when_frames_are_coalesced(hub: Hub, server: Any) -> None:
    async with await raw(server.url) as ws, HubClient(WsLink(server.url)) as client:
        bob = await register(ws, "bob")
        alice = await client.register(name="alice", handle_turns=False)
        opening = asyncio.create_task(alice.open("conversation", "bob"))
        await accept_invite(ws, bob)
        channel = await opening
        sent = await asyncio.gather(*(channel.send(f"m{i}") for i in range(300)))
        texts = [e for e in await channel.read() if e.event_type == EV_TEXT]
        assert sorted(sent) == [e.envelope_id for e in texts]
        received: list[str] = []
        while len(received) < len(texts):
            envelope = (await next_frame(ws, "notify"))["envelope"]
            if envelope["event_type"] == EV_TEXT:
                received.append(envelope["envelope_id"])
        assert received == [e.envelope_id for e in texts]


# ── bad input ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "data",
    [
        "not json at all",
        "[1, 2]",
        '{"kind": "bogus"}',
        '{"op": "register"}',
        '{"kind": "receipt", "envelope_id": 5, "status": "ack"}',
        '{"kind": "request", "request_id": 7, "op": "hub_status"}',
        '{"kind": "hello", "name": "x", "since_envelope_id": []}',
    ],
)
async def test_bad_frames_get_error_frames_and_the_connection_keeps_working(server: Any, data: str) -> None:
    async with await raw(server.url) as ws:
        await ws.send(data)
        error = await next_frame(ws)
        assert error == {
            "kind": "error",
            "code": "protocol_error",
            "message": decoder_message(data),
            "envelope_id": None,
        }
        await register(ws, "still_fine")


async def test_a_malformed_request_with_an_id_gets_a_failed_response(server: Any) -> None:
    data = '{"kind": "request", "request_id": "r9", "op": 5}'
    async with await raw(server.url) as ws:
        await ws.send(data)
        response = await next_frame(ws)
        assert response == {
            "kind": "response",
            "request_id": "r9",
            "ok": False,
            "result": None,
            "error_code": "protocol_error",
            "error_message": "frame 'request': field 'op' expected str, got int",
        }
        assert response["error_message"] == decoder_message(data)


async def test_unknown_op_and_bad_params_fail_the_request_only(server: Any) -> None:
    async with await raw(server.url) as ws:
        unknown = await call(ws, "launch_rockets", {})
        assert (unknown["ok"], unknown["error_code"]) == (False, "protocol_error")
        assert unknown["error_message"].startswith("unknown op 'launch_rockets'; known ops: ")
        bad = await call(ws, "register", {"passport": {"name": 3}})
        assert (bad["ok"], bad["error_code"]) == (False, "protocol_error")
        assert "passport is not a valid Passport" in bad["error_message"]
        fine = await register(ws, "fine")
        await register(ws, "other")
        params = {"creator_id": fine, "manifest_type": "consulting", "participants": ["other"], "first": 7}
        not_text = await call(ws, "create_channel", params)
        assert (not_text["ok"], not_text["error_code"]) == (False, "protocol_error")
        assert not_text["error_message"] == "param 'first' must be a string or null, got 7"
        assert (await call(ws, "list_channels", {}))["result"] == []  # refused before anything was made


async def test_frames_meant_for_clients_are_refused(server: Any) -> None:
    async with await raw(server.url) as ws:
        await send(ws, {"kind": "welcome", "endpoint_id": "e", "hub_time": "t"})
        error = await next_frame(ws)
        assert error["code"] == "protocol_error"
        assert error["message"] == "frame kind 'welcome' travels from hub to client only"


async def test_a_receipt_for_an_agent_not_bound_here_is_refused(hub: Hub, server: Any) -> None:
    bob = await hub.register(Passport(name="bob"))
    async with await raw(server.url) as ws:
        receipt = {"envelope_id": "e1", "status": "ack", "recipient_id": bob.agent_id, "channel_id": "c"}
        await send(ws, {"kind": "receipt", **receipt})
        error = await next_frame(ws)
        assert (error["kind"], error["code"], error["envelope_id"]) == ("error", "access_denied", "e1")
        assert bob.agent_id in error["message"]


async def test_an_oversize_frame_closes_with_1009_naming_the_limit(hub: Hub) -> None:
    async with serve_ws(hub, max_frame_bytes=1024) as server:
        async with await raw(server.url) as ws:
            await ws.send("x" * 2000)
            with pytest.raises(ConnectionClosed) as closed:
                await next_frame(ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009
            assert "1024" in closed.value.rcvd.reason
        async with HubClient(WsLink(server.url)) as client:  # the hub serves on
            assert (await client.register(name="next")).name == "next"


# ── slow consumers and disconnects ──────────────────────────────────────────


async def test_a_slow_consumer_is_closed_with_1013_and_others_carry_on(hub: Hub) -> None:
    async with serve_ws(hub, outbox_size=4) as server:
        # max_queue=1: the raw client stops reading the socket once it holds one message.
        slow = await raw(server.url, max_queue=1, max_size=None)
        roomy = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=100_000)))
        slow_id = await register(slow, "slow", rule=msgspec.to_builtins(roomy))
        async with HubClient(WsLink(server.url)) as fast_client:
            fast = await fast_client.register(name="fast", handle_turns=False)
            opening = asyncio.create_task(fast.open("conversation", "slow"))
            await accept_invite(slow, slow_id)
            channel = await opening
            big = "x" * 256 * 1024
            for _ in range(400):  # ~100 MB at most; the socket buffers fill long before
                await channel.send(big)
                if not hub.delivery.is_connected(slow_id):
                    break
            assert not hub.delivery.is_connected(slow_id)
            # Everyone else carries on.
            assert (await fast_client.hub_status())["agents"] == 2
            posted = await channel.send("still accepted")
            assert posted
        closed = await read_until_closed(slow)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1013
        assert closed.rcvd.reason == "too slow: outbox of 4 frames full; re-attach to replay"


async def test_unread_responses_are_bounded_in_bytes_too(hub: Hub) -> None:
    # Few frames, many bytes: each response to read_wal is ~600 KB; the reader never reads.
    limits = {"outbox_bytes": 4 << 20, "max_frame_bytes": 1 << 20}
    async with serve_ws(hub, **limits) as server, HubClient(WsLink(server.url)) as client:
        alice = await client.register(name="alice", handle_turns=False)
        await client.register(name="bob", handle_turns=False)
        channel = await alice.open("conversation", "bob")
        for _ in range(20):
            await channel.send("x" * 30_000)
        slow = await raw(server.url, max_queue=1, max_size=None)
        reader_id = await register(slow, "reader")
        request = {"kind": "request", "op": "hub_wal", "params": {"channel_id": channel.id}}
        for n in range(300):  # ~180 MB if nothing bounded it
            await send(slow, {**request, "request_id": f"r{n}"})
        await wait_until(lambda: not hub.delivery.is_connected(reader_id), what="the reader to be dropped")
        closed = await read_until_closed(slow)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1013
        assert closed.rcvd.reason == f"too slow: outbox of {4 << 20} bytes full; re-attach to replay"
        assert len(await channel.read()) == 23  # the hub and every other connection carry on


async def test_a_response_above_the_frame_limit_is_refused_not_sent(hub: Hub) -> None:
    async with serve_ws(hub, max_frame_bytes=64 * 1024) as server, HubClient(WsLink(server.url)) as client:
        alice = await client.register(name="alice", handle_turns=False)
        await client.register(name="bob", handle_turns=False)
        channel = await alice.open("conversation", "bob")
        for _ in range(20):
            await channel.send("x" * 8_000)
        with pytest.raises(ProtocolError, match="more than the 65536-byte frame limit") as refused:
            await channel.read()
        assert refused.value.reason == "response_too_large"
        assert "page with 'since'" in str(refused.value)
        assert len(await channel.read(limit=5)) == 5  # the same connection, smaller pages


async def test_disconnect_unbinds_and_hello_replays_what_was_missed(hub: Hub, server: Any) -> None:
    async with HubClient(WsLink(server.url)) as alice_client:
        alice = await alice_client.register(name="alice", handle_turns=False)
        bob_client = HubClient(WsLink(server.url))
        bob = await bob_client.register(name="bob", handle_turns=False)
        channel = await alice.open("conversation", "bob")
        await bob_client.aclose()
        await wait_until(lambda: not hub.delivery.is_connected(bob.agent_id), what="bob to be unbound")
        missed = await channel.send("are you there, bob?")
        async with await raw(server.url) as ws:
            await send(ws, {"kind": "hello", "name": "bob", "since_envelope_id": ""})
            assert (await next_frame(ws))["kind"] == "welcome"
            while True:
                notify = await next_frame(ws, "notify")
                assert notify["recipient_id"] == bob.agent_id
                if notify["envelope"]["envelope_id"] == missed:
                    break
            envelope = Envelope(**notify["envelope"])
            assert (envelope.text, envelope.sender_id) == ("are you there, bob?", alice.agent_id)
            receipt = {
                "kind": "receipt",
                "envelope_id": missed,
                "status": "ack",
                "recipient_id": bob.agent_id,
                "channel_id": channel.id,
            }
            await send(ws, receipt)
            await wait_until(lambda: hub.delivery.cursor(bob.agent_id, channel.id) == missed, what="the ack")


async def test_closing_the_server_fails_what_outlives_the_grace_with_transport_error(hub: Hub) -> None:
    async with serve_ws(hub) as server:
        client = HubClient(WsLink(server.url, request_timeout=1 * TIME_UNIT))
        ada = await client.register(name="ada", handle_turns=False)
        await client.register_human("bob", auto_ack_invites=False)  # never answers the invite
        opening = asyncio.create_task(ada.open("conversation", "bob"))
        await wait_until(lambda: len(hub.list_channels()) == 1, what="the channel to be created")
        await server.aclose(grace=0.2 * TIME_UNIT)
    with pytest.raises(TransportError) as err:
        await opening
    assert "code 1001" in str(err.value)
    with pytest.raises(TransportError):
        await client.hub_status()
    await client.aclose()


async def test_closing_the_server_lets_running_requests_answer_and_refuses_new_ones(hub: Hub) -> None:
    local = HubClient(LocalLink(hub))
    bob = await local.register_human("bob", auto_ack_invites=False)
    async with serve_ws(hub) as server:
        client = HubClient(WsLink(server.url, reconnect=False))
        ada = await client.register(name="ada", handle_turns=False)
        opening = asyncio.create_task(ada.open("conversation", "bob"))
        invite = await bob.next_envelope(timeout=WAIT)
        closing = asyncio.create_task(server.aclose())
        with pytest.raises(TransportError, match="the hub is shutting down") as refused:
            await client.hub_status()  # a new request while it drains
        assert refused.value.reason == "shutting_down"
        await bob.accept(invite)
        channel = await opening  # answered before the connection closed
        assert hub.get_channel(channel.id).state.value == "active"
        await closing
    with pytest.raises(TransportError, match="code 1001"):
        await client.hub_status()
    await client.aclose()
    await local.aclose()


async def test_request_timeout_raises_hub_timeout_error(hub: Hub, server: Any) -> None:
    async with HubClient(WsLink(server.url, request_timeout=0.2 * TIME_UNIT)) as client:
        ada = await client.register(name="ada", handle_turns=False)
        await client.register_human("bob", auto_ack_invites=False)
        with pytest.raises(HubTimeoutError) as err:
            await ada.open("conversation", "bob")
        assert "no response to op 'create_channel'" in str(err.value)
        assert (await client.hub_status())["agents"] == 2  # the link still works


async def test_connecting_to_nothing_is_a_transport_error() -> None:
    async with serve_ws(Hub()) as server:
        url = server.url
    with pytest.raises(TransportError) as err:
        await HubClient(WsLink(url, open_timeout=WAIT)).connect()
    assert url in str(err.value)


async def test_the_outbox_must_hold_one_frame_of_the_largest_size(hub: Hub) -> None:
    with pytest.raises(UsageError, match=r"outbox_bytes \(50000\) must be at least max_frame_bytes"):
        async with serve_ws(hub, outbox_bytes=50_000, max_frame_bytes=65_536):
            pass


async def test_an_open_hub_is_not_served_beyond_loopback_unless_allowed(hub: Hub) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.7"):
        with pytest.raises(
            UsageError, match=f"refusing to serve on {re.escape(host)} without authentication"
        ):
            async with serve_ws(hub, host):
                pass
    async with serve_ws(hub, "localhost") as server:  # loopback names are fine
        assert server.port > 0


@pytest.mark.parametrize(
    ("op", "params", "code", "message"),
    [
        ("list_channels", {"agent_id": 7}, "protocol_error", "param 'agent_id' must be a string"),
        ("replay", {}, "protocol_error", "param 'agent_id' is required"),
        ("replay", {"agent_id": "{me}", "since_envelope_id": 5}, "protocol_error", "since_envelope_id"),
        ("list_channels", {"state": "sleepy"}, "protocol_error", "param 'state' must be one of pending"),
        ("read_wal", {"channel_id": "c", "limit": 10**30}, "protocol_error", "param 'limit' must be"),
        ("record_observation", {"owner_id": "{me}", "capability": "x", "outcome": [1]}, "protocol_error",
         "param 'outcome' must be one of"),
        ("create_channel", {"creator_id": "{me}", "manifest_type": "conversation", "participants": ["peer"],
                            "knobs": {"views": {"peer": "windowed"}, "window": "x"}},
         "channel_rule", "knob 'window' must be an integer of 0 or more, got 'x'"),
        ("create_channel", {"creator_id": "{me}", "manifest_type": "conversation", "participants": ["peer"],
                            "knobs": {"views": {"peer": "nosuch"}}},
         "channel_rule", "knob 'views': unknown view policy 'nosuch'"),
        ("create_channel", {"creator_id": "{me}", "manifest_type": "broadcast", "participants": ["peer"]},
         "protocol_error", "broadcast channels are opened by the hub: send the 'broadcast' op"),
        ("set_rule", {"agent_id": "{me}", "rule": {"limits": {"channel_ttl_default": "9999999999d"}}},
         "usage", "limits.channel_ttl_default must be at most a century"),
    ],
)  # fmt: skip
async def test_wrong_params_are_named_and_the_connection_carries_on(
    hub: Hub, server: Any, op: str, params: dict[str, Any], code: str, message: str
) -> None:
    async with await raw(server.url) as ws:
        me = await register(ws, "me")
        await register(ws, "peer")
        filled = {k: v.format(me=me) if isinstance(v, str) else v for k, v in params.items()}
        response = await call(ws, op, filled)
        assert not response["ok"]
        assert code in (
            response["error_code"],
            (response["result"] or {}).get("code"),
        )  # ag2's codes, and ours
        assert message in response["error_message"]
        assert (await call(ws, "hub_status", {}))["ok"]  # the same connection goes on


async def test_an_error_quoting_a_huge_input_is_cut_to_fit(hub: Hub) -> None:
    async with serve_ws(hub, max_frame_bytes=4 << 20) as server, await raw(server.url, max_size=None) as ws:
        huge = "A" * (3 << 20)
        await send(
            ws, {"kind": "request", "request_id": "big", "op": "get_resume", "params": {"agent_id": huge}}
        )
        response = await next_frame(ws, "response")
        assert not response["ok"]
        assert response["error_code"] == "not_found"
        assert len(response["error_message"]) < 3000
        assert "more characters)" in response["error_message"]
        assert (await call(ws, "hub_status", {}))["ok"]
