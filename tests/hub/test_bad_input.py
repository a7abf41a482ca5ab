"""Every refused action raises a typed error naming the channel, the agent and the rule,
and the hub keeps serving every other channel afterwards."""

from __future__ import annotations

import pytest

from hubbub import (
    EV_CHANNEL_OPENED,
    EV_TEXT,
    AccessDeniedError,
    AgentClient,
    ChannelClosedError,
    ChannelRuleError,
    ChannelState,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    HubTimeoutError,
    LocalLink,
    NotFoundError,
    ProtocolError,
    UsageError,
    WorkflowGraphError,
)
from tests.conftest import TIME_UNIT


async def quiet(client: HubClient, name: str) -> AgentClient:
    return await client.register(name=name, handle_turns=False)


async def assert_hub_still_works(client: HubClient) -> None:
    a = await client.register(FunctionAgent(lambda t: "still here", name="after_a"))
    b = await client.register(FunctionAgent(lambda t: "still here", name="after_b"))
    channel = await a.open("consulting", b.name)
    await channel.send("are you there?")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.close_reason == "consulting_complete"


async def test_unknown_channel_type(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    with pytest.raises(NotFoundError) as err:
        await alice.open("debate", "bob")
    assert "unknown channel type 'debate'" in str(err.value)
    assert "consulting, conversation, discussion, workflow" in str(err.value)
    await assert_hub_still_works(client)


async def test_unknown_target(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    with pytest.raises(NotFoundError) as err:
        await alice.open("consulting", "nobody")
    assert "'nobody'" in str(err.value)
    assert hub.list_channels() == []
    await assert_hub_still_works(client)


async def test_target_that_rejects_closes_the_channel(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await client.register(FunctionAgent(lambda t: "no", name="grumpy", accept_invite=lambda invite: False))
    with pytest.raises(AccessDeniedError) as err:
        await alice.open("conversation", "grumpy")
    assert err.value.reason == "invite_rejected"
    assert "grumpy rejected the invite" in str(err.value)
    [meta] = hub.list_channels()
    assert meta.state is ChannelState.CLOSED
    assert meta.close_reason == "invite_rejected"
    assert meta.channel_id == err.value.channel_id
    await assert_hub_still_works(client)


async def test_target_that_never_acks_times_out(client: HubClient) -> None:
    async with Hub(invite_ack_timeout=0.2 * TIME_UNIT) as hub:
        local = HubClient(LocalLink(hub))
        alice = await quiet(local, "alice")
        await hub.register(__import__("hubbub").Passport(name="offline"))
        with pytest.raises(HubTimeoutError) as err:
            await alice.open("consulting", "offline")
        assert "offline did not ack" in str(err.value)
        assert hub.get_channel(err.value.channel_id or "").close_reason == "invite_timeout"
        await local.aclose()


async def test_out_of_turn_send(client: HubClient) -> None:
    lead = await quiet(client, "lead")
    x = await quiet(client, "x")
    await quiet(client, "y")
    channel = await lead.open("discussion", ["x", "y"])
    with pytest.raises(ChannelRuleError) as err:
        await x.channel(channel.metadata).send("me first")
    message = str(err.value)
    assert channel.id in message
    assert x.agent_id in message
    assert "out of turn" in message
    assert err.value.channel_id == channel.id
    assert err.value.agent_id == x.agent_id
    await channel.send("the topic")
    await assert_hub_still_works(client)


async def test_send_to_closed_channel(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await channel.close("done talking")
    with pytest.raises(ChannelClosedError) as err:
        await channel.send("hello?")
    assert "closed (done talking)" in str(err.value)
    assert err.value.channel_id == channel.id
    await assert_hub_still_works(client)


async def test_audience_outside_the_channel(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    carol = await quiet(client, "carol")
    channel = await alice.open("conversation", "bob")
    with pytest.raises(AccessDeniedError) as err:
        await channel.send("psst", audience=["carol"])
    assert carol.agent_id in str(err.value)
    assert err.value.reason == "audience_outside_channel"
    assert [e.event_type for e in await channel.read()][-1] == EV_CHANNEL_OPENED
    await assert_hub_still_works(client)


async def test_sender_that_is_not_the_caller(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    other = HubClient(LocalLink(hub))
    await other.register(name="mallory", handle_turns=False)
    forged = Envelope(channel_id=channel.id, sender_id=bob.agent_id, event_data={"text": "I am bob"})
    with pytest.raises(AccessDeniedError) as err:
        await other.request("post_envelope", {"envelope": forged})
    assert "does not act as agent" in str(err.value)
    assert err.value.agent_id == bob.agent_id
    assert all(e.event_type != EV_TEXT for e in await channel.read())
    await other.aclose()
    await assert_hub_still_works(client)


async def test_non_participant_cannot_send(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    carol = await quiet(client, "carol")
    channel = await alice.open("conversation", "bob")
    with pytest.raises(AccessDeniedError) as err:
        await carol.channel(channel.metadata).send("let me in")
    assert "is not a participant" in str(err.value)
    await assert_hub_still_works(client)


async def test_invalid_transition_graph(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    bad = {"initial_speaker": "ghost", "transitions": [], "default_target": None, "max_turns": None}
    with pytest.raises(WorkflowGraphError) as err:
        await alice.open("workflow", "bob", knobs={"graph": bad})
    assert "ghost" in str(err.value)
    unknown = {
        "initial_speaker": alice.agent_id,
        "transitions": [{"when": {"name": "whenever"}, "then": None}],
    }
    with pytest.raises(WorkflowGraphError) as err2:
        await alice.open("workflow", "bob", knobs={"graph": unknown})
    assert "whenever" in str(err2.value)
    assert hub.list_channels() == []
    await assert_hub_still_works(client)


async def test_unknown_event_in_strict_adapter(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("consulting", "bob")
    with pytest.raises(ChannelRuleError) as err:
        await channel.send(event_type="acme.custom", event_data={"x": 1})
    assert "acme.custom" in str(err.value)
    assert channel.id in str(err.value)
    assert alice.agent_id in str(err.value)
    await assert_hub_still_works(client)


async def test_clients_cannot_post_lifecycle_events(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    with pytest.raises(ProtocolError) as err:
        await channel.send(event_type="ag2.channel.closed", event_data={})
    assert "close_channel" in str(err.value)
    assert (await channel.info()).state is ChannelState.ACTIVE


async def test_inviting_yourself_is_a_usage_error(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    with pytest.raises(UsageError) as err:
        await alice.open("consulting", "alice")
    assert "cannot invite itself" in str(err.value)


async def test_duplicate_name_is_refused(client: HubClient) -> None:
    await quiet(client, "alice")
    with pytest.raises(UsageError) as err:
        await quiet(client, "alice")
    assert "already registered" in str(err.value)
    assert "attach" in str(err.value)


async def test_idempotency_key_returns_the_first_id_and_writes_once(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    first = await channel.send("pay 10", idempotency_key="k1")
    again = await channel.send("pay 10", idempotency_key="k1")
    other = await channel.send("pay 10", idempotency_key="k2")
    assert again == first
    assert other != first
    texts = [e for e in await channel.read() if e.event_type == EV_TEXT]
    assert [e.envelope_id for e in texts] == [first, other]
