"""The whole in-process path: register, open each channel type, talk, close."""

from __future__ import annotations

import asyncio

import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_OPENED,
    EV_PACKET,
    EV_TEXT,
    AgentReply,
    ChannelState,
    Envelope,
    Finish,
    FunctionAgent,
    Handoff,
    Hub,
    HubbubError,
    HubClient,
    LocalLink,
    TransitionGraph,
    Turn,
    function_agent,
)
from hubbub.adapters.transitions import AgentTarget, FromSpeaker, Transition
from tests._peers import absent_peer
from tests.conftest import TIME_UNIT


def echo(name: str) -> FunctionAgent:
    return FunctionAgent(lambda turn: f"{name} heard: {turn.prompt}", name=name)


async def test_consulting_one_question_one_reply_then_closed(client: HubClient) -> None:
    alice = await client.register(echo("alice"))
    await client.register(echo("bob"))
    channel = await alice.open("consulting", "bob")
    assert channel.metadata.state is ChannelState.ACTIVE
    await channel.send("what is 2+2?")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.state is ChannelState.CLOSED
    assert final.close_reason == "consulting_complete"
    wal = await channel.read()
    kinds = [e.event_type for e in wal]
    assert kinds == [
        EV_CHANNEL_INVITE,
        EV_CHANNEL_INVITE_ACK,
        EV_CHANNEL_OPENED,
        EV_TEXT,
        EV_TEXT,
        EV_CHANNEL_CLOSED,
    ]
    question, answer = wal[3], wal[4]
    assert answer.text == "bob heard: what is 2+2?"
    assert answer.causation_id == question.envelope_id
    assert answer.sender_id != question.sender_id


async def test_open_with_a_first_message_asks_in_the_same_request(client: HubClient) -> None:
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(echo("bob"))
    channel = await alice.open("consulting", "bob", first="what is 2+2?")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.close_reason == "consulting_complete"
    wal = await channel.read()
    assert [e.event_type for e in wal][2:] == [EV_CHANNEL_OPENED, EV_TEXT, EV_TEXT, EV_CHANNEL_CLOSED]
    question, answer = wal[3], wal[4]
    assert (question.sender_id, question.text) == (alice.agent_id, "what is 2+2?")
    assert answer.text == "bob heard: what is 2+2?"
    assert answer.causation_id == question.envelope_id


async def test_wait_closed_gives_the_hubs_final_metadata_however_the_close_was_seen(
    client: HubClient,
) -> None:
    alice = await client.register(name="alice", handle_turns=False)
    await client.register(echo("bob"))
    # Waiting while it closes: the final metadata comes from the closing envelope itself.
    waited = await alice.open("consulting", "bob", first="one")
    final = await waited.wait_closed(timeout=5 * TIME_UNIT)
    assert final.state is ChannelState.CLOSED
    assert final == await client.get_channel(waited.id)
    # Returned once the close is durable: the WAL holds the answer and the close.
    assert [e.event_type for e in await waited.read()][-2:] == [EV_TEXT, EV_CHANNEL_CLOSED]
    # Waiting after alice processed the close: remembered, so the answer is at once and the same.
    seen = await alice.open("consulting", "bob", first="two")
    closing = await alice.wait_for_channel_event(
        seen.id, lambda e: e.event_type == EV_CHANNEL_CLOSED, timeout=5 * TIME_UNIT
    )
    final = await seen.wait_closed(timeout=0.001)
    assert (final.state, final.closed_at) == (ChannelState.CLOSED, closing.created_at)
    assert final == await client.get_channel(seen.id)
    # A close this client never saw (here: forgotten) is taken from the hub instead of waited for.
    unseen = await alice.open("consulting", "bob", first="three")
    await alice.wait_for_channel_event(
        unseen.id, lambda e: e.event_type == EV_CHANNEL_CLOSED, timeout=5 * TIME_UNIT
    )
    alice._endings.clear()
    final = await unseen.wait_closed(timeout=5 * TIME_UNIT)
    assert final == await client.get_channel(unseen.id)
    # Still open: wait_closed times out.
    open_ = await alice.open("conversation", "bob")
    with pytest.raises(TimeoutError):
        await open_.wait_closed(timeout=0.05 * TIME_UNIT)


async def test_a_refused_first_message_closes_the_channel_and_says_why(hub: Hub, client: HubClient) -> None:
    user = await client.register(name="user", handle_turns=False)
    clerk = await client.register(name="clerk", handle_turns=False)
    graph = TransitionGraph(initial_speaker=clerk.agent_id, transitions=[])
    with pytest.raises(HubbubError) as refused:
        await user.open("workflow", "clerk", knobs={"graph": graph.to_dict()}, first="me first")
    assert refused.value.channel_id is not None
    closed = hub.get_channel(refused.value.channel_id)
    assert (closed.state, closed.close_reason) == (ChannelState.CLOSED, "first_message_refused")
    texts = [e for e in await hub.read_wal(closed.channel_id) if e.event_type == EV_TEXT]
    assert texts == []


async def test_conversation_runs_until_max_turns(client: HubClient) -> None:
    a = await client.register(echo("a"))
    await client.register(echo("b"))
    channel = await a.open("conversation", "b", knobs={"max_turns": 4})
    await channel.send("hi")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.close_reason == "max_turns"
    texts = [e.text for e in await channel.read() if e.event_type == EV_TEXT]
    assert texts == ["hi", "b heard: hi", "a heard: b heard: hi", "b heard: a heard: b heard: hi"]


async def test_discussion_is_round_robin_in_join_order(client: HubClient) -> None:
    said: list[str] = []

    def speaker(name: str) -> FunctionAgent:
        def speak(turn: Turn) -> str:
            said.append(name)
            return f"{name}#{len(turn.transcript)}"

        return FunctionAgent(speak, name=name)

    lead = await client.register(speaker("lead"))
    await client.register(speaker("x"))
    await client.register(speaker("y"))
    channel = await lead.open("discussion", ["x", "y"], knobs={"max_turns": 7})
    await channel.send("topic")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.close_reason == "max_turns"
    assert said == ["x", "y", "lead", "x", "y", "lead"]


async def test_workflow_handoff_and_finish(client: HubClient) -> None:
    reviewed: list[str] = []

    def triage(turn: Turn) -> AgentReply:
        return AgentReply(text="billing issue", handoff=Handoff(target=turn.agent_named("billing")))

    def billing(turn: Turn) -> str:
        return "refund issued"

    def reviewer(turn: Turn) -> AgentReply:
        reviewed.append(turn.prompt)
        return AgentReply(text="approved", finish=Finish(reason="resolved"))

    user = await client.register(name="user")
    t = await client.register(FunctionAgent(triage, name="triage"))
    b = await client.register(FunctionAgent(billing, name="billing"))
    r = await client.register(FunctionAgent(reviewer, name="reviewer"))
    graph = TransitionGraph(
        initial_speaker=user.agent_id,
        transitions=[
            Transition(when=FromSpeaker(user.agent_id), then=AgentTarget(t.agent_id)),
            Transition(when=FromSpeaker(b.agent_id), then=AgentTarget(r.agent_id)),
        ],
    )
    channel = await user.open("workflow", ["triage", "billing", "reviewer"], knobs={"graph": graph.to_dict()})
    await channel.send("I was charged twice")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.close_reason == "resolved"
    packets = [e for e in await channel.read() if e.event_type == EV_PACKET]
    assert [p.event_data["routing"]["kind"] for p in packets] == ["handoff", "text", "finish"]
    assert [p.event_data["body"] for p in packets] == ["billing issue", "refund issued", "approved"]
    assert reviewed == ["refund issued"]


async def test_redelivered_envelope_gets_no_second_reply(hub: Hub, client: HubClient) -> None:
    calls = 0

    @function_agent(name="bob")
    def bob(turn: Turn) -> str:
        nonlocal calls
        calls += 1
        return "once"

    alice = await client.register(name="alice")
    bob_client = await client.register(bob)
    channel = await alice.open("conversation", "bob")
    question = await channel.send("ping")
    await channel.wait_for(2, timeout=5 * TIME_UNIT)
    assert await bob_client.take_turn(channel.id, question) is False
    await hub.replay(bob_client.agent_id, since=None)
    assert await bob_client.resume_pending_turns() == 0
    texts = [e.text for e in await channel.read() if e.event_type == EV_TEXT]
    assert texts == ["ping", "once"]
    assert calls == 1


async def test_on_envelope_sees_deliveries_and_acks_advance_cursor(hub: Hub, client: HubClient) -> None:
    seen: list[str] = []
    alice = await client.register(name="alice")
    bob = await client.register(name="bob", handle_turns=False)
    bob.on_envelope(lambda e: seen.append(e.event_type))
    channel = await alice.open("conversation", "bob")
    last = await channel.send("one")
    await bob.wait_for_channel_event(channel.id, lambda e: e.envelope_id == last, timeout=5 * TIME_UNIT)
    for _ in range(100):
        if hub.delivery.cursor(bob.agent_id, channel.id) == last:
            break
        await asyncio.sleep(0.01 * TIME_UNIT)
    assert hub.delivery.cursor(bob.agent_id, channel.id) == last
    assert seen == [EV_CHANNEL_INVITE, EV_CHANNEL_OPENED, EV_TEXT]


async def test_attach_replays_unacked_envelopes(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice")
    channel, _ = await absent_peer(hub, alice)
    first = await channel.send("while you were away")
    second = await channel.send("and this")
    got: list[str] = []
    done = asyncio.Event()

    def collect(envelope: Envelope) -> None:
        got.append(envelope.envelope_id)
        if len(got) >= 2:
            done.set()

    back = HubClient(LocalLink(hub))
    bob = await back.attach(None, "bob", handle_turns=False, since_envelope_id=None)
    bob.on_envelope(collect)
    assert await bob.replay() == 2
    try:
        await asyncio.wait_for(done.wait(), 5 * TIME_UNIT)
    finally:
        await back.aclose()
    assert got == [first, second]


@pytest.mark.parametrize("count", [50])
async def test_envelope_ids_strictly_increase_in_a_channel(client: HubClient, count: int) -> None:
    alice = await client.register(name="alice")
    await client.register(name="bob", handle_turns=False)
    channel = await alice.open("conversation", "bob")
    ids = await asyncio.gather(*(channel.send(f"m{i}") for i in range(count)))
    wal_ids = [e.envelope_id for e in await channel.read()]
    assert wal_ids == sorted(wal_ids)
    assert len(set(wal_ids)) == len(wal_ids)
    assert set(ids) <= set(wal_ids)


async def test_windowed_view_counts_what_it_leaves_out(client: HubClient) -> None:
    seen: list[list[str]] = []

    def bob(turn: Turn) -> str:
        seen.append([line.render() for line in turn.transcript])
        return f"ok {len(seen)}"

    alice = await client.register(name="alice")
    await client.register(FunctionAgent(bob, name="bob"))
    channel = await alice.open("conversation", "bob")
    for i in range(15):
        await channel.send(f"q{i}")
        await channel.wait_for(2 * (i + 1), timeout=5 * TIME_UNIT)
    last = seen[-1]
    assert len(last) == 11
    assert last[0] == "hub: [19 earlier messages not shown]"
    assert last[-1] == f"{alice.agent_id}: q14"
    assert last[-2].endswith(": ok 14")


async def test_view_policy_can_be_overridden_per_participant(client: HubClient) -> None:
    seen: dict[str, list[str]] = {}

    def recorder(name: str) -> FunctionAgent:
        def speak(turn: Turn) -> str:
            seen[name] = [line.render() for line in turn.transcript]
            return f"{name} spoke"

        return FunctionAgent(speak, name=name)

    lead = await client.register(name="lead")
    await client.register(recorder("x"))
    await client.register(recorder("y"))
    knobs = {"max_turns": 3, "views": {"x": "full_transcript", "y": "named_full_transcript"}}
    channel = await lead.open("discussion", ["x", "y"], knobs=knobs)
    await channel.send("topic")
    await channel.wait_for(3, timeout=5 * TIME_UNIT)
    assert seen["x"] == [f"{lead.agent_id}: topic"]
    assert seen["y"] == ["lead: topic", "x: x spoke"]
