"""Turn contexts delivered with the envelope (``push_turns``): the same turns, one request fewer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hubbub import EV_TEXT, FunctionAgent, Hub, HubClient, ProtocolError, serve_ws
from hubbub.hub.session import Session
from hubbub.model.turn import TurnContext
from tests.conftest import TIME_UNIT
from tests.transport.test_ws import accept_invite, call, next_frame, raw, register, send

WAIT = 5 * TIME_UNIT


def count_asked(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Envelope ids the hub was asked the turn context of (the request the push saves)."""
    asked: list[str] = []
    ask: Callable[..., Awaitable[TurnContext]] = hub.turn_context

    async def counting(channel_id: str, agent_id: str, envelope_id: str) -> TurnContext:
        asked.append(envelope_id)
        return await ask(channel_id, agent_id, envelope_id)

    monkeypatch.setattr(hub, "turn_context", counting)
    return asked


async def test_a_turn_taker_answers_without_asking_for_its_turn(
    hub: Hub, client: HubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = count_asked(hub, monkeypatch)
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(FunctionAgent(lambda turn: f"seen {turn.prompt}", name="bob"))
    channel = await alice.open("consulting", "bob", first="two plus two?")
    assert (await channel.wait_closed(timeout=WAIT)).close_reason == "consulting_complete"
    texts = [e.text for e in await channel.read() if e.event_type == EV_TEXT]
    assert texts == ["two plus two?", "seen two plus two?"]
    assert asked == []


async def test_without_a_pushed_turn_the_client_asks(
    hub: Hub, client: HubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = count_asked(hub, monkeypatch)
    monkeypatch.setattr(hub, "turn_context_now", lambda envelope, agent_id: None)  # as if not in memory
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(FunctionAgent(lambda turn: "asked, then answered", name="bob"))
    channel = await alice.open("consulting", "bob", first="anyone?")
    await channel.wait_closed(timeout=WAIT)
    question = next(e for e in await channel.read() if e.event_type == EV_TEXT)
    assert asked == [question.envelope_id]


async def test_a_discussion_pushes_each_member_whether_it_is_its_turn(
    hub: Hub, client: HubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = count_asked(hub, monkeypatch)
    host = await client.register(name="host", handle_turns=False)
    for name in ("ann", "ben"):
        await client.register(FunctionAgent(lambda turn, n=name: f"{n} says hi", name=name))
    panel = await host.open("discussion", ["ann", "ben"], knobs={"max_turns": 3})
    await panel.send("topic")
    final = await panel.wait_closed(timeout=WAIT)
    assert final.close_reason == "max_turns"
    texts = [e.text for e in await panel.read() if e.event_type == EV_TEXT]
    assert texts == ["topic", "ann says hi", "ben says hi"]
    assert asked == []  # not-your-turn answers came pushed too


async def test_only_clients_that_ask_get_a_turn_in_their_notify_frames(hub: Hub) -> None:
    async with serve_ws(hub) as server:
        asker, pushed, plain = await raw(server.url), await raw(server.url), await raw(server.url)
        try:
            alice = await register(asker, "alice")
            bob = await register(pushed, "bob", push_turns=True)
            carol = await register(plain, "carol")
            for target, ws, agent_id in (("bob", pushed, bob), ("carol", plain, carol)):
                opened = await send_open(asker, alice, target)
                await accept_invite(ws, agent_id)
                channel_id = (await opened)["result"]["channel_id"]
                question = {"channel_id": channel_id, "sender_id": alice, "event_data": {"text": "q"}}
                assert (await call(asker, "post_envelope", {"envelope": question}, "q-" + target))["ok"]
                notify = await next_text(ws)
                if ws is pushed:
                    assert notify["turn"]["is_turn"] is True
                    assert notify["turn"]["prompt"] == "q"
                else:
                    assert "turn" not in notify
        finally:
            for ws in (asker, pushed, plain):
                await ws.close()


async def send_open(ws: Any, creator_id: str, target: str) -> Awaitable[dict[str, Any]]:
    """Ask to open a consulting channel; the response comes once the invite is acked."""
    params = {"creator_id": creator_id, "manifest_type": "consulting", "participants": [target]}
    request = {"kind": "request", "request_id": f"open-{target}", "op": "create_channel", "params": params}
    await send(ws, request)

    async def response() -> dict[str, Any]:
        return await next_frame_with(ws, lambda f: f.get("request_id") == f"open-{target}")

    return response()


async def next_frame_with(ws: Any, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        frame = await next_frame(ws)
        if matches(frame):
            return frame


async def next_text(ws: Any) -> dict[str, Any]:
    return await next_frame_with(
        ws, lambda f: f["kind"] == "notify" and f["envelope"]["event_type"] == EV_TEXT
    )


async def test_push_turns_must_be_true_or_false(hub: Hub) -> None:
    session = Session(hub, endpoint=_Nowhere())
    with pytest.raises(ProtocolError, match="param 'push_turns' must be true or false, got 'yes'"):
        await session.call("register", {"passport": {"name": "bob"}, "push_turns": "yes"})
    assert hub.status()["agents"] == 0  # refused before anything was registered


class _Nowhere:
    endpoint_id = "nowhere"

    def deliver(self, envelope: Any, recipient_id: str) -> None:
        pass
