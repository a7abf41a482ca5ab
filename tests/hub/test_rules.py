"""Every rule field is enforced: each test fails if its check is removed."""

from __future__ import annotations

import asyncio

import pytest

from hubbub import (
    EV_TEXT,
    AccessBlock,
    AccessDeniedError,
    AgentClient,
    ChannelTypeAccess,
    Envelope,
    Hub,
    HubClient,
    InboxBlock,
    InboxFull,
    LimitsBlock,
    RateBlock,
    Rule,
    UsageError,
)
from hubbub.errors import RateLimitedError
from tests.conftest import TIME_UNIT


def rule(**limits: object) -> Rule:
    return Rule(limits=LimitsBlock(**limits))  # type: ignore[arg-type]


async def quiet(client: HubClient, name: str, r: Rule | None = None) -> AgentClient:
    return await client.register(name=name, rule=r, handle_turns=False)


async def texts_in(channel_id: str, hub: Hub) -> list[str]:
    return [e.text for e in await hub.read_wal(channel_id) if e.event_type == EV_TEXT]


class Stall:
    """An on_envelope callback that holds the agent's lane (so nothing gets acked) until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[str] = []

    async def __call__(self, envelope: Envelope) -> None:
        self.seen.append(envelope.text)
        if envelope.event_type == EV_TEXT:
            await self.release.wait()


# access


async def test_outbound_to_refuses_opening_to_an_unlisted_agent(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice", Rule(access=AccessBlock(outbound_to=["b*"])))
    await quiet(client, "bob")
    await quiet(client, "carol")
    with pytest.raises(AccessDeniedError) as err:
        await alice.open("consulting", "carol")
    assert err.value.reason == "access.outbound_to"
    assert "alice may not reach carol" in str(err.value)
    assert hub.list_channels() == []
    assert (await alice.open("consulting", "bob")).metadata.state.value == "active"


async def test_outbound_to_refuses_an_explicit_audience_in_a_channel(hub: Hub, client: HubClient) -> None:
    lead = await quiet(client, "lead")
    await quiet(client, "x")
    await quiet(client, "y")
    channel = await lead.open("discussion", ["x", "y"])
    await hub.set_rule(lead.agent_id, Rule(access=AccessBlock(outbound_to=["x"])))
    with pytest.raises(AccessDeniedError) as err:
        await channel.send("just for y", audience=["y"])
    assert err.value.reason == "access.outbound_to"
    assert await texts_in(channel.id, hub) == []
    await channel.send("for x", audience=["x"])
    assert await texts_in(channel.id, hub) == ["for x"]


async def test_inbound_from_fails_the_open_fast_and_leaks_no_channel(hub: Hub, client: HubClient) -> None:
    mallory = await quiet(client, "mallory")
    await quiet(client, "bob", Rule(access=AccessBlock(inbound_from=["alice", "a*"])))
    with pytest.raises(AccessDeniedError) as err:
        await mallory.open("conversation", "bob")
    assert err.value.reason == "access.inbound_from"
    assert "bob does not accept inbound from mallory" in str(err.value)
    assert hub.list_channels() == []
    await hub.listeners.flush()
    [denied] = await hub.audit.query(kind="open_denied")
    assert denied.reason == "access.inbound_from"
    assert denied.agent_id == mallory.agent_id


async def test_inbound_from_skips_and_audits_delivery_to_a_refusing_recipient(
    hub: Hub, client: HubClient
) -> None:
    alice = await quiet(client, "alice")
    stall = Stall()
    bob = await quiet(client, "bob")
    bob.on_envelope(stall)
    channel = await alice.open("conversation", "bob")
    await hub.set_rule(bob.agent_id, Rule(access=AccessBlock(inbound_from=["nobody"])))
    sent = await channel.send("you will not see this")
    assert await texts_in(channel.id, hub) == ["you will not see this"]
    await hub.listeners.flush()
    [skipped] = await hub.audit.query(kind="delivery_skipped")
    assert skipped.agent_id == bob.agent_id
    assert skipped.data["envelope_id"] == sent
    assert skipped.reason == "access.inbound_from"
    assert "you will not see this" not in stall.seen
    assert hub.governance.inbox.count(bob.agent_id) == 0
    assert await hub.replay(bob.agent_id, since=None) == 0


async def test_channel_type_initiate_allowlist(client: HubClient) -> None:
    alice = await quiet(
        client, "alice", Rule(access=AccessBlock(channel_types=ChannelTypeAccess(initiate=["consult*"])))
    )
    await quiet(client, "bob")
    with pytest.raises(AccessDeniedError) as err:
        await alice.open("conversation", "bob")
    assert err.value.reason == "access.channel_types.initiate"
    assert (await alice.open("consulting", "bob")).type == "consulting"


async def test_channel_type_accept_allowlist(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(
        client, "bob", Rule(access=AccessBlock(channel_types=ChannelTypeAccess(accept=["conversation"])))
    )
    with pytest.raises(AccessDeniedError) as err:
        await alice.open("consulting", "bob")
    assert err.value.reason == "access.channel_types.accept"
    assert "bob does not accept consulting channels" in str(err.value)
    assert (await alice.open("conversation", "bob")).type == "conversation"


# limits


async def test_delegation_depth(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice", rule(delegation_depth=2))
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await channel.send("depth two", depth=2)
    with pytest.raises(AccessDeniedError) as err:
        await channel.send("depth three", depth=3)
    assert err.value.reason == "limits.delegation_depth"
    assert "depth 3 is past alice's delegation_depth 2" in str(err.value)
    assert await texts_in(channel.id, hub) == ["depth two"]


async def test_max_concurrent_channels(client: HubClient) -> None:
    alice = await quiet(client, "alice", rule(max_concurrent_channels=1))
    await quiet(client, "bob")
    first = await alice.open("conversation", "bob")
    with pytest.raises(AccessDeniedError) as err:
        await alice.open("conversation", "bob")
    assert err.value.reason == "limits.max_concurrent_channels"
    await first.close()
    assert (await alice.open("conversation", "bob")).metadata.state.value == "active"


async def test_max_concurrent_channels_of_the_invitee(client: HubClient) -> None:
    alice = await quiet(client, "alice")
    carol = await quiet(client, "carol")
    await quiet(client, "bob", rule(max_concurrent_channels=1))
    await alice.open("conversation", "bob")
    with pytest.raises(AccessDeniedError) as err:
        await carol.open("conversation", "bob")
    assert "bob already takes part in 1 open channels" in str(err.value)


async def test_rate_limit_refuses_with_retry_after(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice", rule(rate=RateBlock(per_minute=60, burst=2)))
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await channel.send("one")
    await channel.send("two")
    with pytest.raises(RateLimitedError) as err:
        await channel.send("three")
    assert err.value.reason == "limits.rate"
    assert 0.5 < err.value.retry_after <= 1.0
    assert "retry after" in str(err.value)
    assert await texts_in(channel.id, hub) == ["one", "two"]
    await hub.set_rule(alice.agent_id, Rule())
    await channel.send("three")
    assert await texts_in(channel.id, hub) == ["one", "two", "three"]


async def test_inbox_cap_rejects_until_an_ack_frees_a_slot(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    stall = Stall()
    bob = await quiet(client, "bob", rule(inbox=InboxBlock(max_pending=2)))
    bob.on_envelope(stall)
    channel = await alice.open("conversation", "bob")
    await channel.send("one")
    await channel.send("two")
    with pytest.raises(InboxFull) as err:
        await channel.send("three")
    assert err.value.agent_id == bob.agent_id
    assert "bob's inbox holds 2 unacked envelopes" in str(err.value)
    other = await alice.open("conversation", "bob")
    assert other.metadata.state.value == "active"
    stall.release.set()
    await _wait(lambda: hub.governance.inbox.count(bob.agent_id) == 0)
    await channel.send("three")
    assert await texts_in(channel.id, hub) == ["one", "two", "three"]


async def test_inbox_overflow_drop_newest_skips_the_recipient(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    stall = Stall()
    bob = await quiet(client, "bob", rule(inbox=InboxBlock(max_pending=1, overflow="drop_newest")))
    bob.on_envelope(stall)
    channel = await alice.open("conversation", "bob")
    await channel.send("kept")
    dropped = await channel.send("dropped")
    assert await texts_in(channel.id, hub) == ["kept", "dropped"]
    assert hub.governance.inbox.count(bob.agent_id) == 1
    await hub.listeners.flush()
    [overflow] = await hub.audit.query(kind="inbox_overflow")
    assert overflow.data["envelope_id"] == dropped
    stall.release.set()
    await _wait(lambda: hub.governance.inbox.count(bob.agent_id) == 0)
    assert "dropped" not in stall.seen


async def test_inbox_overflow_drop_oldest_discards_the_oldest(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    stall = Stall()
    bob = await quiet(client, "bob", rule(inbox=InboxBlock(max_pending=1, overflow="drop_oldest")))
    bob.on_envelope(stall)
    channel = await alice.open("conversation", "bob")
    first = await channel.send("old")
    await channel.send("new")
    assert hub.governance.inbox.count(bob.agent_id) == 1
    assert (bob.agent_id, first) in hub.governance.inbox.dropped
    await hub.listeners.flush()
    [overflow] = await hub.audit.query(kind="inbox_overflow")
    assert overflow.reason == "drop_oldest"
    assert overflow.data["dropped"] == first


async def test_set_rule_takes_effect_at_once_and_is_audited(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await hub.set_rule(alice.agent_id, rule(delegation_depth=1))
    with pytest.raises(AccessDeniedError):
        await channel.send("deep", depth=2)
    await hub.listeners.flush()
    [record] = await hub.audit.query(kind="rule_set", agent_id=alice.agent_id)
    assert record.data["rule"]["limits"]["delegation_depth"] == 1


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (rule(max_concurrent_channels=-1), "limits.max_concurrent_channels"),
        (rule(inbox=InboxBlock(max_pending=0)), "limits.inbox.max_pending"),
        (rule(rate=RateBlock(per_minute=-5)), "limits.rate.per_minute"),
        (rule(channel_ttl_default="soon"), "limits.channel_ttl_default"),
        (Rule(access=AccessBlock(inbound_from=["[abc"])), "access.inbound_from"),
    ],
)
async def test_malformed_rules_are_refused_naming_the_field(
    hub: Hub, client: HubClient, bad: Rule, field: str
) -> None:
    with pytest.raises(UsageError) as err:
        await quiet(client, "alice", bad)
    assert field in str(err.value)
    assert hub.list_agents() == []
    ok = await quiet(client, "bob")
    with pytest.raises(UsageError) as err2:
        await hub.set_rule(ok.agent_id, bad)
    assert field in str(err2.value)
    assert hub.get_rule(ok.agent_id) == Rule()


async def test_denied_sends_reach_no_inbox_and_no_wal(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice", rule(delegation_depth=1))
    seen: list[Envelope] = []
    bob = await quiet(client, "bob")
    bob.on_envelope(seen.append)
    channel = await alice.open("conversation", "bob")
    before = len(await hub.read_wal(channel.id))
    for _ in range(3):
        with pytest.raises(AccessDeniedError):
            await channel.send("too deep", depth=5)
    assert len(await hub.read_wal(channel.id)) == before
    assert hub.governance.inbox.count(bob.agent_id) == 0
    assert all(e.text != "too deep" for e in seen)
    await hub.listeners.flush()
    assert len(await hub.audit.query(kind="send_denied", agent_id=alice.agent_id)) == 3


async def _wait(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout * TIME_UNIT
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.005)
