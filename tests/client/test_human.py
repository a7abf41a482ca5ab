"""HumanClient: a person in channels, reading by push and pull, sending, and answering invites."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_INVITE_REJECT,
    EV_CHANNEL_OPENED,
    EV_TEXT,
    AccessDeniedError,
    ChannelClosedError,
    ChannelState,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    HubTimeoutError,
    HumanClient,
    LocalLink,
    NotFoundError,
    Passport,
    ProtocolError,
    UsageError,
)
from tests.conftest import TIME_UNIT

WAIT = 5 * TIME_UNIT


def echo(name: str) -> FunctionAgent:
    return FunctionAgent(lambda turn: f"{name} heard: {turn.prompt}", name=name)


def summary(envelopes: list[Envelope]) -> list[tuple[str, str]]:
    return [(e.event_type, e.text) for e in envelopes]


async def pull(human: HumanClient, count: int) -> list[Envelope]:
    return [await human.next_envelope(timeout=WAIT) for _ in range(count)]


async def until(condition: Callable[[], bool]) -> None:
    """Wait (polling briefly) until ``condition()`` holds; fail after ``WAIT``."""
    # Polling: the conditions are hub state (cursors, queue sizes) with no event to await.
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005 * TIME_UNIT)


@pytest.fixture
async def slow_hub() -> AsyncIterator[Hub]:
    async with Hub(invite_ack_timeout=0.3 * TIME_UNIT) as h:
        yield h


# ── identity ────────────────────────────────────────────────────────────────


async def test_register_human_gives_a_human_passport(hub: Hub, client: HubClient) -> None:
    ada = await client.register_human("ada")
    assert isinstance(ada, HumanClient)
    assert ada.name == "ada"
    assert ada.passport.kind == "human"
    assert hub.get_agent("ada").kind == "human"
    assert ada.agent_id == hub.get_agent("ada").agent_id
    grace = await client.register_human(Passport(name="grace", owner="navy"))
    assert (hub.get_agent("grace").kind, hub.get_agent("grace").owner) == ("human", "navy")
    assert [p.name for p in hub.list_agents(kind="human")] == ["ada", "grace"]
    assert grace.agent_id != ada.agent_id


async def test_register_human_refuses_an_agent_passport_and_bad_arguments(client: HubClient) -> None:
    with pytest.raises(UsageError, match="has kind 'agent'"):
        await client.register_human(Passport(name="bot", kind="agent"))
    with pytest.raises(UsageError, match="non-empty name"):
        await client.register_human("")
    with pytest.raises(UsageError, match="max_queued must be 0"):
        await client.register_human("ada", max_queued=-1)
    await client.register(name="robot", handle_turns=False)
    with pytest.raises(UsageError, match="'robot' is registered as kind 'agent', not 'human'"):
        await client.attach_human("robot")


# ── receiving: pull and push ────────────────────────────────────────────────


async def test_pull_and_push_see_the_same_deliveries_in_order(hub: Hub, client: HubClient) -> None:
    ada = await client.register_human("ada")
    pushed: list[Envelope] = []
    ada.on_envelope(pushed.append)
    await client.register(echo("bob"))
    channel = await ada.open("conversation", "bob")
    assert channel.metadata.state is ChannelState.ACTIVE
    assert ada.channel(channel.id).metadata is channel.metadata
    await ada.send(channel.id, "hello")
    got = await pull(ada, 3)
    assert summary(got) == [
        (EV_CHANNEL_INVITE_ACK, ""),
        (EV_CHANNEL_OPENED, ""),
        (EV_TEXT, "bob heard: hello"),
    ]
    closed = await ada.close_channel(channel.id, "done talking")
    assert (closed.state, closed.close_reason) == (ChannelState.CLOSED, "done talking")
    last = await ada.next_envelope(timeout=WAIT)
    assert (last.event_type, last.event_data["reason"]) == (EV_CHANNEL_CLOSED, "done talking")
    assert ada.channel(channel.id).type == "unknown"  # forgotten once closed
    assert (await ada.channel(channel.id).info()).close_reason == "done talking"
    assert [e.envelope_id for e in pushed] == [e.envelope_id for e in [*got, last]]
    texts = [(e.sender_id, e.text) for e in await channel.read() if e.event_type == EV_TEXT]
    bob_id = hub.get_agent("bob").agent_id
    assert texts == [(ada.agent_id, "hello"), (bob_id, "bob heard: hello")]


async def test_envelopes_iterates_until_the_human_closes(client: HubClient) -> None:
    ada = await client.register_human("ada")
    bob = await client.register(name="bob", handle_turns=False)
    seen: list[str] = []

    async def read_all() -> None:
        async for envelope in ada.envelopes():
            seen.append(envelope.text or envelope.event_type)

    reader = asyncio.create_task(read_all())
    channel = await bob.open("conversation", "ada")
    for i in range(3):
        await channel.send(f"m{i}")
    await until(lambda: len(seen) == 5)
    await ada.aclose()
    await asyncio.wait_for(reader, WAIT)
    assert seen == [EV_CHANNEL_INVITE, EV_CHANNEL_OPENED, "m0", "m1", "m2"]
    with pytest.raises(UsageError, match="is closed"):
        await ada.next_envelope(timeout=WAIT)


async def test_next_envelope_times_out_when_nothing_arrives(client: HubClient) -> None:
    ada = await client.register_human("ada")
    with pytest.raises(TimeoutError):
        await ada.next_envelope(timeout=0.05 * TIME_UNIT)


async def test_the_pull_queue_is_bounded_and_deliveries_are_acked_once_queued(
    hub: Hub, client: HubClient
) -> None:
    ada = await client.register_human("ada", max_queued=2)
    bob = await client.register(name="bob", handle_turns=False)
    channel = await ada.open("conversation", "bob")
    sent = [await bob.channel(channel.metadata).send(f"m{i}") for i in range(3)]
    # Invite ack and opened fill the queue; m0 waits, unacked, for room.
    await until(lambda: ada.queued == 2)
    wal = await channel.read()
    opened = next(e.envelope_id for e in wal if e.event_type == EV_CHANNEL_OPENED)
    await until(lambda: hub.delivery.cursor(ada.agent_id, channel.id) == opened)
    assert ada.queued == 2
    got = await pull(ada, 5)
    assert summary(got) == [
        (EV_CHANNEL_INVITE_ACK, ""),
        (EV_CHANNEL_OPENED, ""),
        (EV_TEXT, "m0"),
        (EV_TEXT, "m1"),
        (EV_TEXT, "m2"),
    ]
    await until(lambda: hub.delivery.cursor(ada.agent_id, channel.id) == sent[-1])


async def test_push_only_human_has_no_pull_queue(client: HubClient) -> None:
    ada = await client.register_human("ada", max_queued=0)
    pushed: list[str] = []
    ada.on_envelope(lambda e: pushed.append(e.event_type))
    bob = await client.register(name="bob", handle_turns=False)
    channel = await bob.open("conversation", "ada")
    await channel.send("hi")
    await until(lambda: len(pushed) == 3)
    assert pushed == [EV_CHANNEL_INVITE, EV_CHANNEL_OPENED, EV_TEXT]
    assert ada.queued == 0
    with pytest.raises(UsageError, match="push only"):
        await ada.next_envelope(timeout=WAIT)


async def test_attach_human_replays_what_was_not_acked(hub: Hub, client: HubClient) -> None:
    bob = await client.register(name="bob", handle_turns=False)
    away = HubClient(LocalLink(hub))
    await away.register_human("ada")
    channel = await bob.open("conversation", "ada")
    await away.aclose()
    first = await channel.send("while you were away")
    second = await channel.send("and this")
    async with HubClient(LocalLink(hub)) as back:
        ada = await back.attach_human("ada")
        got = await pull(ada, 2)
    assert [e.envelope_id for e in got] == [first, second]


# ── sending ─────────────────────────────────────────────────────────────────


async def test_send_with_audience_and_event_data(hub: Hub, client: HubClient) -> None:
    ada = await client.register_human("ada")
    await client.register(name="bob", handle_turns=False)
    await client.register(name="cy", handle_turns=False)
    channel = await ada.open("discussion", ["bob", "cy"])
    envelope_id = await ada.send(channel.id, "for bob only", audience=["bob"], event_data={"mood": "calm"})
    [envelope] = [e for e in await channel.read() if e.envelope_id == envelope_id]
    assert envelope.audience == [hub.get_agent("bob").agent_id]
    assert envelope.event_data == {"mood": "calm", "text": "for bob only"}
    assert envelope.sender_id == ada.agent_id


@pytest.fixture
async def other(hub: Hub) -> AsyncIterator[HubClient]:
    """A second connection (a connection may act for every agent bound to it)."""
    async with HubClient(LocalLink(hub)) as c:
        yield c


async def test_a_human_cannot_send_to_a_channel_it_is_not_in(
    hub: Hub, client: HubClient, other: HubClient
) -> None:
    ada = await other.register_human("ada")
    bob = await client.register(name="bob", handle_turns=False)
    await client.register(name="cy", handle_turns=False)
    channel = await bob.open("conversation", "cy")
    with pytest.raises(AccessDeniedError) as err:
        await ada.send(channel.id, "let me in")
    assert err.value.reason == "not_a_participant"
    assert err.value.channel_id == channel.id
    with pytest.raises(AccessDeniedError):
        await ada.close_channel(channel.id, "nope")
    with pytest.raises(NotFoundError):
        await ada.send("no-such-channel", "hello?")
    assert [e.event_type for e in await channel.read()] == [
        EV_CHANNEL_INVITE,
        EV_CHANNEL_INVITE_ACK,
        EV_CHANNEL_OPENED,
    ]
    assert hub.get_channel(channel.id).state is ChannelState.ACTIVE


# ── invites answered by the human ───────────────────────────────────────────


async def test_human_accepts_an_invite_and_answers_a_consultation(hub: Hub, client: HubClient) -> None:
    ada = await client.register_human("ada", auto_ack_invites=False)
    alice = await client.register(name="alice", handle_turns=False)
    opening = asyncio.create_task(alice.open("consulting", "ada"))
    invite = await ada.next_envelope(timeout=WAIT)
    assert invite.event_type == EV_CHANNEL_INVITE
    assert invite.event_data["creator_name"] == "alice"
    assert hub.get_channel(invite.channel_id).state is ChannelState.PENDING
    assert ada.channel(invite.channel_id).type == "consulting"
    channel = await ada.accept(invite)
    assert channel.id == invite.channel_id
    assert channel.metadata.state is ChannelState.ACTIVE
    asked = await asyncio.wait_for(opening, WAIT)
    assert asked.metadata.state is ChannelState.ACTIVE
    await asked.send("what is 6 times 7?")
    opened, question = await pull(ada, 2)
    assert (opened.event_type, question.text) == (EV_CHANNEL_OPENED, "what is 6 times 7?")
    await ada.send(channel.id, "42", causation_id=question.envelope_id)
    final = await asked.wait_closed(timeout=WAIT)
    assert (final.state, final.close_reason) == (ChannelState.CLOSED, "consulting_complete")
    closed = await ada.next_envelope(timeout=WAIT)
    assert closed.event_type == EV_CHANNEL_CLOSED


async def test_human_rejects_an_invite(hub: Hub, client: HubClient) -> None:
    ada = await client.register_human("ada", auto_ack_invites=False)
    alice = await client.register(name="alice", handle_turns=False)
    opening = asyncio.create_task(alice.open("conversation", "ada"))
    invite = await ada.next_envelope(timeout=WAIT)
    meta = await ada.reject(invite, "in a meeting")
    assert (meta.state, meta.close_reason, meta.rejected_by) == (
        ChannelState.CLOSED,
        "invite_rejected",
        [ada.agent_id],
    )
    with pytest.raises(AccessDeniedError) as err:
        await asyncio.wait_for(opening, WAIT)
    assert err.value.reason == "invite_rejected"
    assert "ada rejected the invite" in str(err.value)
    wal = await hub.read_wal(invite.channel_id)
    reject = next(e for e in wal if e.event_type == EV_CHANNEL_INVITE_REJECT)
    assert (reject.sender_id, reject.causation_id) == (ada.agent_id, invite.envelope_id)
    assert reject.event_data == {"reason": "in a meeting"}


async def test_an_unanswered_invite_times_out(slow_hub: Hub) -> None:
    async with HubClient(LocalLink(slow_hub)) as client:
        ada = await client.register_human("ada", auto_ack_invites=False)
        alice = await client.register(name="alice", handle_turns=False)
        with pytest.raises(HubTimeoutError) as err:
            await alice.open("consulting", "ada")
        assert err.value.reason == "invite_timeout"
        invite = await ada.next_envelope(timeout=WAIT)
        meta = slow_hub.get_channel(invite.channel_id)
        assert (meta.state, meta.close_reason) == (ChannelState.CLOSED, "invite_timeout")
        with pytest.raises(ChannelClosedError):
            await ada.accept(invite)


async def test_auto_ack_is_the_default_and_accept_takes_only_invites(client: HubClient) -> None:
    ada = await client.register_human("ada")
    alice = await client.register(name="alice", handle_turns=False)
    channel = await alice.open("conversation", "ada")
    assert channel.metadata.state is ChannelState.ACTIVE
    invite, opened = await pull(ada, 2)
    assert (invite.event_type, opened.event_type) == (EV_CHANNEL_INVITE, EV_CHANNEL_OPENED)
    with pytest.raises(UsageError, match="take an invite envelope"):
        await ada.accept(opened)
    with pytest.raises(ProtocolError, match="no pending invite"):
        await ada.accept(invite)
