"""Client resilience on real sockets: the hub's server goes away and comes back on the same
port, and a ``HubClient(WsLink)`` reconnects by itself, re-attaches its agents and resumes their
cursors; heartbeats find a peer that stopped reading, on both sides."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import ServerConnection

from hubbub import (
    EV_TEXT,
    AuthBlock,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    HubTimeoutError,
    InboxBlock,
    LimitsBlock,
    LocalLink,
    Passport,
    Rule,
    TransportError,
    Turn,
    WsLink,
    serve_ws,
)
from hubbub.auth import ApiKeyAuth, AuthRegistry
from hubbub.transport.ws_server import WsServer
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until

WAIT = 5 * TIME_UNIT
KEY = "k-0123456789abcdef"


class Restartable:
    """``serve_ws(hub)`` that can be stopped and started again on the same port."""

    def __init__(self, hub: Hub, **options: Any) -> None:
        self.hub = hub
        self.options = options
        self.port = 0
        self._stack: contextlib.AsyncExitStack | None = None
        self.server: WsServer | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> WsServer:
        self._stack = contextlib.AsyncExitStack()
        self.server = await self._stack.enter_async_context(
            serve_ws(self.hub, port=self.port, **self.options)
        )
        self.port = self.server.port
        return self.server

    async def stop(self) -> None:
        """An outage: connections close at once (no grace for requests still running)."""
        if self.server is not None:
            await self.server.aclose(grace=0)
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = self.server = None


@pytest.fixture
async def served(hub: Hub) -> AsyncIterator[Restartable]:
    server = Restartable(hub)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def fast_link(url: str, **options: Any) -> WsLink:
    return WsLink(url, backoff_initial=0.01 * TIME_UNIT, backoff_max=0.05 * TIME_UNIT, **options)


async def outage(served: Restartable, *agent_ids: str) -> None:
    """Stop the server and wait until the hub has unbound every one of ``agent_ids``."""
    await served.stop()
    hub = served.hub
    await wait_until(lambda: not any(hub.delivery.is_connected(a) for a in agent_ids), what="unbinding")


async def test_the_client_reconnects_and_gets_what_was_posted_meanwhile_exactly_once(
    hub: Hub, served: Restartable
) -> None:
    received: list[str] = []
    async with HubClient(LocalLink(hub)) as local, HubClient(fast_link(served.url)) as remote:
        bob = await remote.register(name="bob", handle_turns=False)
        bob.on_envelope(lambda e: received.append(e.envelope_id) if e.event_type == EV_TEXT else None)
        alice = await local.register(name="alice", handle_turns=False)
        channel = await alice.open("conversation", "bob")
        sent = [await channel.send("before")]
        await wait_until(lambda: received == sent, what="the first text")

        await outage(served, bob.agent_id)
        sent += [await channel.send(f"while away {i}") for i in range(3)]
        during = asyncio.ensure_future(remote.get_agent("alice"))  # waits for the new connection
        await served.start()

        assert await asyncio.wait_for(during, WAIT) == hub.get_agent("alice")
        await wait_until(lambda: hub.delivery.is_connected(bob.agent_id), what="bob bound again")
        await wait_until(lambda: len(received) >= len(sent), what="the texts posted meanwhile")
        # A marker sent after the replay: any duplicate would arrive before it.
        sent.append(await channel.send("after"))
        await wait_until(lambda: len(received) >= len(sent), what="the marker")
        assert received == sent
        assert isinstance(remote.link, WsLink)
        assert remote.link.reconnects == 1
        await wait_until(lambda: hub.delivery.cursor(bob.agent_id, channel.id) == sent[-1], what="acks")


async def test_a_turn_interrupted_by_a_drop_is_answered_exactly_once(hub: Hub, served: Restartable) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    turns: list[str] = []

    async def answer(turn: Turn) -> str:
        turns.append(turn.envelope.envelope_id)
        started.set()
        await release.wait()
        return "4"

    async with HubClient(LocalLink(hub)) as local, HubClient(fast_link(served.url)) as remote:
        bob = await remote.register(FunctionAgent(answer, name="bob"))
        alice = await local.register(name="alice", handle_turns=False)
        channel = await alice.open("consulting", "bob")
        question = await channel.send("2+2?")
        await asyncio.wait_for(started.wait(), WAIT)

        await outage(served, bob.agent_id)
        release.set()  # the reply is posted while disconnected: it waits for the new connection
        await served.start()

        final = await channel.wait_closed(timeout=WAIT)
        assert final.close_reason == "consulting_complete"
        wal = await channel.read()
        assert [(e.sender_id, e.text) for e in wal if e.event_type == EV_TEXT] == [
            (alice.agent_id, "2+2?"),
            (bob.agent_id, "4"),
        ]
        assert turns == [question]


async def test_a_request_in_flight_when_the_connection_drops_fails_with_transport_error(
    hub: Hub, served: Restartable
) -> None:
    async with HubClient(LocalLink(hub)) as local, HubClient(fast_link(served.url)) as remote:
        await local.register(name="carol", auto_answer_invites=False)  # never answers: open() hangs
        bob = await remote.register(name="bob")
        opening = asyncio.ensure_future(bob.open("consulting", "carol"))
        await wait_until(lambda: hub.status()["channels"], what="the channel to be created")
        await served.stop()
        with pytest.raises(TransportError) as err:
            await asyncio.wait_for(opening, WAIT)
        assert not isinstance(err.value, HubTimeoutError)
        await served.start()
        await wait_until(lambda: hub.delivery.is_connected(bob.agent_id), what="bob bound again")
        assert (await remote.get_agent("carol")).name == "carol"


async def test_backoff_doubles_up_to_its_cap_and_resets_after_a_reconnect(served: Restartable) -> None:
    delays: list[tuple[int, float]] = []
    link = WsLink(
        served.url,
        backoff_initial=0.01,
        backoff_max=0.04,
        jitter=lambda: 1.0,
        on_backoff=lambda *d: delays.append(d),
    )
    async with HubClient(link) as client:
        bob = await client.register(name="bob")
        await outage(served, bob.agent_id)
        await wait_until(lambda: len(delays) >= 5, what="five reconnect attempts")
        assert delays[:5] == [(1, 0.01), (2, 0.02), (3, 0.04), (4, 0.04), (5, 0.04)]
        await served.start()
        await wait_until(lambda: link.reconnects == 1, what="the reconnect")
        delays.clear()
        await outage(served, bob.agent_id)
        await wait_until(lambda: len(delays) >= 1, what="a reconnect attempt")
        assert delays[0] == (1, 0.01)


async def test_jitter_scales_each_delay_within_its_window(served: Restartable) -> None:
    delays: list[float] = []
    link = WsLink(
        served.url,
        backoff_initial=0.01,
        backoff_max=1.0,
        jitter=lambda: 0.5,
        on_backoff=lambda _, d: delays.append(d),
    )
    async with HubClient(link) as client:
        bob = await client.register(name="bob")
        await outage(served, bob.agent_id)
        await wait_until(lambda: len(delays) >= 3, what="three reconnect attempts")
        assert delays[:3] == [0.005, 0.01, 0.02]


async def test_without_reconnect_a_drop_fails_fast(hub: Hub, served: Restartable) -> None:
    link = WsLink(served.url, reconnect=False, request_timeout=60 * TIME_UNIT)
    async with HubClient(link) as client:
        bob = await client.register(name="bob")
        await outage(served, bob.agent_id)
        await served.start()  # back, but this link does not come back to it
        async with asyncio.timeout(WAIT):  # far below request_timeout
            with pytest.raises(TransportError) as err:
                await client.get_agent("bob")
        assert not isinstance(err.value, HubTimeoutError)
        assert "connect a new HubClient and re-attach" in str(err.value)
        assert not hub.delivery.is_connected(bob.agent_id)
        assert link.reconnects == 0


async def test_api_key_agents_reattach_with_their_keys() -> None:
    """alice registered through this client, bob attached through it: both come back with their keys."""
    alice_key = AuthBlock(scheme="api_key", claim={"api_key": KEY})
    bob_key = AuthBlock(scheme="api_key", claim={"api_key": "b-0123456789abcdef"})
    async with Hub(auth=AuthRegistry([ApiKeyAuth({"alice": KEY, "bob": "b-0123456789abcdef"})])) as hub:
        served = Restartable(hub)
        await served.start()
        try:
            async with HubClient(fast_link(served.url)) as elsewhere:
                await elsewhere.register(passport=Passport(name="bob", auth=bob_key))
            async with HubClient(fast_link(served.url)) as client:
                alice = await client.register(passport=Passport(name="alice", auth=alice_key))
                bob = await client.attach(None, "bob", auth=bob_key)
                await outage(served, alice.agent_id, bob.agent_id)
                await served.start()
                await wait_until(
                    lambda: all(hub.delivery.is_connected(a.agent_id) for a in (alice, bob)),
                    what="alice and bob bound again",
                )
                assert (await client.get_agent("bob")).auth.scheme == "api_key"
        finally:
            await served.stop()


# ── heartbeats ──────────────────────────────────────────────────────────────

BEAT = 0.1 * TIME_UNIT


async def test_the_hub_unbinds_the_agents_of_a_peer_that_stopped_reading(hub: Hub) -> None:
    async with serve_ws(hub, ping_interval=BEAT, ping_timeout=BEAT, close_timeout=BEAT) as server:
        ws = await websockets.connect(server.url, compression=None, ping_interval=None)
        try:
            frame = {
                "kind": "request",
                "request_id": "r",
                "op": "register",
                "params": {"passport": {"name": "zed"}},
            }
            await ws.send(json.dumps(frame))
            response = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            agent_id = response["result"]["agent_id"]
            assert hub.delivery.is_connected(agent_id)
            ws.transport.pause_reading()  # alive as far as TCP knows, but never answers a ping
            await wait_until(lambda: not hub.delivery.is_connected(agent_id), what="the hub to unbind zed")
            await wait_until(lambda: server.connection_count == 0, what="the hub to drop the connection")
        finally:
            ws.transport.abort()


async def test_the_client_notices_a_hub_that_stopped_reading() -> None:
    """A hub that accepted the connection, then went silent: the request fails by heartbeat, long
    before its own timeout."""
    connected = asyncio.Event()

    async def silent(ws: ServerConnection) -> None:
        ws.transport.pause_reading()
        connected.set()
        await ws.wait_closed()

    async with websockets.serve(silent, "127.0.0.1", 0, ping_interval=None, close_timeout=BEAT) as server:
        port = server.sockets[0].getsockname()[1]
        link = WsLink(
            f"ws://127.0.0.1:{port}",
            reconnect=False,
            request_timeout=60 * TIME_UNIT,
            ping_interval=BEAT,
            ping_timeout=BEAT,
            close_timeout=BEAT,
        )
        async with HubClient(link) as client:
            await asyncio.wait_for(connected.wait(), WAIT)
            async with asyncio.timeout(WAIT):
                with pytest.raises(TransportError) as err:
                    await client.hub_status()
            assert not isinstance(err.value, HubTimeoutError)
            assert "1011" in str(err.value) or "no close frame" in str(err.value)


async def test_work_done_while_the_hub_was_away_runs_once_and_its_acks_land_after(
    hub: Hub, served: Restartable
) -> None:
    # More than a lane used to remember: every ack fails while the link is down, the replay
    # then brings all of them again, and none may run twice or be left unacked.
    count = 1100
    roomy = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=100_000)))
    ran: list[str] = []
    gate = asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        if envelope.event_type == EV_TEXT:
            await gate.wait()
            ran.append(envelope.envelope_id)

    async with HubClient(LocalLink(hub)) as local, HubClient(fast_link(served.url)) as remote:
        bob = await remote.register(name="bob", handle_turns=False, rule=roomy)
        bob.on_envelope(handler)
        alice = await local.register(name="alice", handle_turns=False)
        channel = await alice.open("conversation", "bob")
        sent = [await channel.send(f"m{i}") for i in range(count)]
        # All of it in bob's queue (the first in its handler) before the hub goes away.
        await wait_until(
            lambda: len(bob._lanes[channel.id].items) == count - 1, 10 * TIME_UNIT, what="queued"
        )
        await outage(served, bob.agent_id)
        gate.set()  # bob works through it offline
        await wait_until(lambda: len(ran) == count, 20 * TIME_UNIT, what="the backlog processed")
        await served.start()
        await wait_until(lambda: hub.delivery.cursor(bob.agent_id, channel.id) == sent[-1], 20 * TIME_UNIT)
        assert ran == sent  # each once, in order
        assert hub.governance.inbox.count(bob.agent_id) == 0


async def test_a_reply_ready_while_the_hub_is_away_is_posted_when_it_is_back(
    hub: Hub, served: Restartable, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.client")
    started, release = asyncio.Event(), asyncio.Event()
    asks: list[str] = []

    async def answer(turn: Turn) -> str:
        asks.append(turn.prompt)
        started.set()
        await release.wait()
        return "4"

    async with (
        HubClient(LocalLink(hub)) as local,
        HubClient(fast_link(served.url, request_timeout=0.3 * TIME_UNIT)) as remote,
    ):
        bob = await remote.register(FunctionAgent(answer, name="bob"))
        alice = await local.register(name="alice", handle_turns=False)
        channel = await alice.open("consulting", "bob")
        await channel.send("2+2?")
        await asyncio.wait_for(started.wait(), WAIT)
        await outage(served, bob.agent_id)
        release.set()  # the answer is ready while the hub is away, and fails more than twice
        await wait_until(lambda: failed_tries(caplog, "post_reply") > 2, 10 * TIME_UNIT, what="failed tries")
        await served.start()
        final = await channel.wait_closed(timeout=WAIT)
        assert final.close_reason == "consulting_complete"
        assert [e.text for e in await channel.read() if e.event_type == EV_TEXT] == ["2+2?", "4"]
        assert asks == ["2+2?"]


def failed_tries(caplog: pytest.LogCaptureFixture, op: str) -> int:
    """How many times the client logged that ``op`` waits for the hub (a try that failed)."""
    return sum(f"{op} in" in r.getMessage() and "waits for the hub" in r.getMessage() for r in caplog.records)


def held_reattach(remote: HubClient, started: asyncio.Event, proceed: asyncio.Event) -> None:
    """Hold the reconnect hook (re-attach, then replay) until ``proceed``, as with many agents to
    attach; ``started`` is set once the new connection is up and the hook waits."""
    link = remote.link
    original = link._hook  # type: ignore[attr-defined]

    async def hook() -> None:
        started.set()
        await proceed.wait()
        await original()

    link._hook = hook  # type: ignore[attr-defined]


@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
async def test_an_ack_the_hub_refused_while_reattaching_is_sent_again(
    hub: Hub, served: Restartable, closed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The handler finishes while the hook has not attached bob yet: the hub refuses that ack.
    # The replay's copy shows it; bob acks again, runs nothing twice, and a closed channel's
    # lane still ends.
    ran: list[str] = []
    gate, hooking, proceed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handler(envelope: Envelope) -> None:
        if envelope.event_type == EV_TEXT:
            await gate.wait()
            ran.append(envelope.envelope_id)

    async with HubClient(LocalLink(hub)) as local, HubClient(fast_link(served.url)) as remote:
        bob = await remote.register(name="bob", handle_turns=False)
        bob.on_envelope(handler)
        alice = await local.register(name="alice", handle_turns=False)
        channel = await alice.open("conversation", "bob")
        sent = await channel.send("m")
        if closed:
            await channel.close()
        end = (await hub.read_wal(channel.id))[-1].envelope_id  # the text, or the close
        await wait_until(lambda: hub.governance.inbox.count(bob.agent_id) == 1, what="the text delivered")
        held_reattach(remote, hooking, proceed)
        await outage(served, bob.agent_id)
        await served.start()
        await asyncio.wait_for(hooking.wait(), WAIT)
        gate.set()  # the handler finishes, and acks, before bob is attached again: refused
        await wait_until(lambda: "does not act as agent" in caplog.text, what="the hub to refuse the ack")
        assert ran == [sent]
        proceed.set()
        await wait_until(lambda: hub.delivery.cursor(bob.agent_id, channel.id) == end, 10 * TIME_UNIT)
        assert ran == [sent]
        assert hub.governance.inbox.count(bob.agent_id) == 0
        if closed:
            await wait_until(lambda: not bob._lanes, what="the closed channel's lane to end")
