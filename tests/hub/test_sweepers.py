"""Sweepers run on the hub's deadlines: user sweepers repeat, channel TTLs expire channels."""

from __future__ import annotations

import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    AgentClient,
    ChannelClosedError,
    ChannelState,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    UsageError,
)
from tests.conftest import TIME_UNIT
from tests.hub._waiting import audit_records, wait_until

TICK = 0.01 * TIME_UNIT
TTL = 0.1 * TIME_UNIT


async def quiet(client: HubClient, name: str) -> AgentClient:
    return await client.register(name=name, handle_turns=False)


# user sweepers


async def test_a_sweeper_runs_again_and_again(hub: Hub) -> None:
    runs = 0

    async def sweep() -> None:
        nonlocal runs
        runs += 1

    hub.register_sweeper("count", TICK, sweep)
    await wait_until(lambda: runs >= 3, what="three sweeps")


async def test_a_failing_sweeper_keeps_running(hub: Hub) -> None:
    runs = 0

    async def sweep() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("sweep failed")

    hub.register_sweeper("flaky", TICK, sweep)
    await wait_until(lambda: runs >= 3, what="three sweeps despite failures")


@pytest.mark.parametrize("interval", [0, -1, -0.5])
async def test_a_sweeper_needs_a_positive_interval(hub: Hub, interval: float) -> None:
    async def sweep() -> None:
        raise AssertionError("never scheduled")

    with pytest.raises(UsageError) as err:
        hub.register_sweeper("bad", interval, sweep)
    assert str(err.value) == f"sweeper 'bad' needs an interval above 0 seconds, got {interval}"


# channel TTLs


async def test_a_channel_expires_at_its_ttl(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    got: list[Envelope] = []
    bob.on_envelope(got.append)
    channel = await alice.open("conversation", "bob", ttl=TTL)
    assert channel.metadata.expires_at is not None
    await wait_until(
        lambda: EV_CHANNEL_EXPIRED in [e.event_type for e in got], what="bob to get EV_CHANNEL_EXPIRED"
    )
    [expired] = [e for e in got if e.event_type == EV_CHANNEL_EXPIRED]
    assert expired.sender_id == "hub"
    assert expired.event_data == {"reason": "ttl_expired", "state": "expired"}
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.state is ChannelState.EXPIRED
    assert final.close_reason == "ttl_expired"
    [record] = await audit_records(hub, "channel_expired", channel_id=channel.id)
    assert record.reason == "ttl_expired"
    with pytest.raises(ChannelClosedError) as err:
        await channel.send("anyone?")
    assert err.value.reason == "expired"


async def test_a_channel_closed_before_its_ttl_does_not_expire(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    early = await alice.open("conversation", "bob", ttl=TTL)
    await early.close("done early")
    # Opened after the first, so its TTL runs out later: once it expired, the first one's had passed too.
    later = await alice.open("conversation", "bob", ttl=TTL)
    assert (await later.wait_closed(timeout=5 * TIME_UNIT)).state is ChannelState.EXPIRED
    meta = hub.get_channel(early.id)
    assert (meta.state, meta.close_reason) == (ChannelState.CLOSED, "done early")
    ends = [
        e.event_type for e in await early.read() if e.event_type in (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED)
    ]
    assert ends == [EV_CHANNEL_CLOSED]
    await audit_records(hub, "channel_expired", channel_id=later.id)
    assert await hub.audit.query(kind="channel_expired", channel_id=early.id) == []


async def test_a_channel_its_adapter_ends_holds_no_deadline_and_no_inbox_entry(
    hub: Hub, client: HubClient
) -> None:
    # A consultation closes itself on the answer: its 2 h TTL must not stay armed (one timer and
    # its closure per consultation, for hours), nor its acked inbox queues stay counted.
    asker = await quiet(client, "asker")
    await client.register(FunctionAgent(lambda turn: "42", name="oracle"))
    for _ in range(3):
        channel = await asker.open("consulting", "oracle", first="why?")
        assert (await channel.wait_closed(timeout=5 * TIME_UNIT)).close_reason == "consulting_complete"
    await wait_until(lambda: not hub.governance.inbox.pending_channels(), what="every delivery acked")
    assert len(hub._deadlines) == 0
    assert hub.governance.inbox.tracked() == 0
