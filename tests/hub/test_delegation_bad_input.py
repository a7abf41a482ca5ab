"""Bad delegations, cancels, waits and listings: each gets a clear typed error naming what was
wrong, changes nothing (no task, no channel, no state change), and the hub keeps serving."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hubbub import (
    AccessBlock,
    AccessDeniedError,
    ChannelClosedError,
    Envelope,
    Hub,
    HubClient,
    NotFoundError,
    Passport,
    ProtocolError,
    Resume,
    Rule,
    UsageError,
)
from tests.conftest import TIME_UNIT
from tests.hub._delegation import answering, silent, state_is

WAIT = 5 * TIME_UNIT


async def still_delegates(hub: Hub, client: HubClient) -> None:
    """Nothing was written by the refusal, and a good delegation still completes."""
    assert hub.list_tasks() == []
    assert [c for c in hub.list_channels() if c.labels.get("intent") == "delegation"] == []
    await answering(client, "helper-after", None, "still-works")
    asker = await client.register(name="asker-after")
    task = await asker.delegate("still-works", "still there?")
    assert (await client.wait_task(task.task_id, WAIT)).state == "COMPLETED"


async def test_a_capability_nobody_claims(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice")
    with pytest.raises(NotFoundError) as err:
        await alice.delegate("teleport", "x")
    assert err.value.reason == "no_capable_agent"
    assert "no agent claims capability 'teleport'" in str(err.value)
    await still_delegates(hub, client)


async def test_a_capability_only_the_requester_claims(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice", resume=Resume(claimed_capabilities=["summarize"]))
    with pytest.raises(NotFoundError) as err:
        await alice.delegate("summarize", "x")
    assert err.value.reason == "no_capable_agent"
    await still_delegates(hub, client)


async def test_a_capability_whose_agents_are_all_offline(hub: Hub, client: HubClient) -> None:
    await hub.register(Passport(name="offline"), Resume(claimed_capabilities=["summarize"]))
    alice = await client.register(name="alice")
    with pytest.raises(NotFoundError) as err:
        await alice.delegate("summarize", "x")
    assert err.value.reason == "no_available_agent"
    assert (
        "1 agent(s) claim capability 'summarize' but none can take the task now: offline is not connected"
        in str(err.value)
    )
    await still_delegates(hub, client)


async def test_a_capability_the_rules_keep_from_the_requester(hub: Hub, client: HubClient) -> None:
    await client.register(
        name="private",
        resume=Resume(claimed_capabilities=["summarize"]),
        rule=Rule(access=AccessBlock(inbound_from=["friends-*"])),
        handle_turns=False,
    )
    alice = await client.register(name="alice")
    with pytest.raises(NotFoundError) as err:
        await alice.delegate("summarize", "x")
    assert err.value.reason == "no_available_agent"
    assert "private does not accept inbound from alice" in str(err.value)


async def test_an_unknown_target(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice")
    with pytest.raises(NotFoundError) as err:
        await alice.delegate("summarize", "x", target="nobody")
    assert err.value.reason == "unknown_agent"
    assert "'nobody'" in str(err.value)
    await still_delegates(hub, client)


async def test_oneself_as_target(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice", resume=Resume(claimed_capabilities=["summarize"]))
    with pytest.raises(UsageError) as err:
        await alice.delegate("summarize", "x", target="alice")
    assert err.value.reason == "self_delegation"
    assert "alice cannot delegate a task to itself" in str(err.value)
    await still_delegates(hub, client)


async def test_a_target_without_the_capability(hub: Hub, client: HubClient) -> None:
    await answering(client, "ada", None, "translate")
    alice = await client.register(name="alice")
    with pytest.raises(UsageError) as err:
        await alice.delegate("summarize", "x", target="ada")
    assert err.value.reason == "target_lacks_capability"
    assert "ada does not claim capability 'summarize' (it claims ['translate'])" in str(err.value)
    await still_delegates(hub, client)


async def test_a_target_that_is_not_connected(hub: Hub, client: HubClient) -> None:
    await hub.register(Passport(name="offline"), Resume(claimed_capabilities=["summarize"]))
    alice = await client.register(name="alice")
    with pytest.raises(NotFoundError) as err:
        await alice.delegate("summarize", "x", target="offline")
    assert err.value.reason == "not_connected"
    await still_delegates(hub, client)


async def test_a_target_the_rules_refuse(hub: Hub, client: HubClient) -> None:
    await client.register(
        name="private",
        resume=Resume(claimed_capabilities=["summarize"]),
        rule=Rule(access=AccessBlock(inbound_from=["friends-*"])),
        handle_turns=False,
    )
    alice = await client.register(name="alice")
    with pytest.raises(AccessDeniedError) as err:
        await alice.delegate("summarize", "x", target="private")
    assert err.value.reason == "access.inbound_from"
    await still_delegates(hub, client)


@pytest.mark.parametrize("ttl", [0, -1, 1e12, True])
async def test_a_bad_ttl(hub: Hub, client: HubClient, ttl: Any) -> None:
    await answering(client, "ada")
    alice = await client.register(name="alice")
    with pytest.raises((UsageError, ProtocolError)) as err:
        await alice.delegate("summarize", "x", ttl=ttl)
    assert "ttl" in str(err.value)
    await still_delegates(hub, client)


@pytest.mark.parametrize("ttl", [math.nan, math.inf, "30s"])
async def test_a_ttl_that_is_not_a_finite_number_on_the_hub_api(hub: Hub, ttl: Any) -> None:
    alice = await hub.register(Passport(name="alice"))
    with pytest.raises(UsageError) as err:
        await hub.delegate(alice.agent_id or "", "summarize", "x", ttl=ttl)
    assert err.value.reason == "bad_ttl"
    assert hub.list_tasks() == []


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("max_retries", -1, "bad_max_retries"),
        ("max_retries", 11, "bad_max_retries"),
        ("priority", 1.5, "bad_priority"),
        ("idempotency_key", "", "bad_idempotency_key"),
        ("capability", "   ", "bad_capability"),
    ],
)
async def test_bad_options(hub: Hub, option: str, value: Any, reason: str) -> None:
    alice = await hub.register(Passport(name="alice"))
    args: dict[str, Any] = {"capability": "summarize", option: value}
    capability = args.pop("capability")
    with pytest.raises(UsageError) as err:
        await hub.delegate(alice.agent_id or "", capability, "x", **args)
    assert err.value.reason == reason
    assert hub.list_tasks() == []


async def test_an_input_that_is_not_json(hub: Hub) -> None:
    alice = await hub.register(Passport(name="alice"))
    with pytest.raises(UsageError) as err:
        await hub.delegate(alice.agent_id or "", "summarize", {"when": object()})
    assert err.value.reason == "bad_input"
    assert hub.list_tasks() == []


async def test_an_unknown_requester(hub: Hub) -> None:
    with pytest.raises(NotFoundError):
        await hub.delegate("ghost", "summarize", "x")
    assert hub.list_tasks() == []


async def test_cancelling_a_finished_task(hub: Hub, client: HubClient) -> None:
    await answering(client, "ada")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    done = await client.wait_task(task.task_id, WAIT)
    with pytest.raises(UsageError) as err:
        await alice.cancel_task(task.task_id)
    assert err.value.reason == "task_finished"
    assert f"task {task.task_id} is already COMPLETED; a finished task cannot be cancelled" in str(err.value)
    assert hub.get_task(task.task_id) == done


async def test_cancelling_someone_elses_task(hub: Hub, client: HubClient) -> None:
    await silent(client, "slow")
    alice = await client.register(name="alice")
    mallory = await client.register(name="mallory")
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    with pytest.raises(AccessDeniedError) as err:
        await mallory.cancel_task(task.task_id)
    assert err.value.reason == "not_requester"
    assert "only the requester alice may cancel" in str(err.value)
    assert hub.get_task(task.task_id).state == "IN_PROGRESS"


async def test_unknown_tasks(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice")
    for call in (client.get_task("nope"), client.wait_task("nope", 1), alice.cancel_task("nope")):
        with pytest.raises(NotFoundError) as err:
            await call
        assert err.value.reason == "unknown_task"


async def test_bad_waits_and_listings(hub: Hub, client: HubClient) -> None:
    with pytest.raises(UsageError):
        await client.wait_task("anything", -1)
    with pytest.raises(UsageError) as err:
        await client.list_tasks(state="DONE")
    assert err.value.reason == "bad_state"
    assert "PENDING, ASSIGNED, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMEOUT" in str(err.value)
    with pytest.raises(UsageError) as err:
        await client.list_tasks(limit=0)
    assert err.value.reason == "bad_limit"


# ── on the wire: params of the wrong type, agents not bound to the connection ─


@pytest.mark.parametrize(
    ("op", "params", "problem"),
    [
        ("delegate", {"capability": "summarize", "input": "x", "ttl": "30s"}, "param 'ttl' must be a number"),
        (
            "delegate",
            {"capability": "summarize", "input": "x", "max_retries": 1.5},
            "'max_retries' must be an",
        ),
        ("delegate", {"capability": 7, "input": "x"}, "param 'capability' must be a non-empty string"),
        ("task_wait", {"task_id": "t", "timeout": 301}, "param 'timeout' must be at most 300"),
        ("task_list", {"limit": "ten"}, "param 'limit' must be an integer"),
        ("broadcast", {"text": 5}, "param 'text' must be a string"),
    ],
)
async def test_params_of_the_wrong_type(
    client: HubClient, op: str, params: dict[str, Any], problem: str
) -> None:
    alice = await client.register(name="alice")
    with pytest.raises(ProtocolError) as err:
        await client.request(op, {"agent_id": alice.agent_id, **params})
    assert problem in str(err.value)


@pytest.mark.parametrize("op", ["delegate", "task_cancel", "broadcast"])
async def test_agent_scoped_ops_act_only_as_a_bound_agent(hub: Hub, client: HubClient, op: str) -> None:
    other = await hub.register(Passport(name="someone-else"))
    with pytest.raises(AccessDeniedError) as err:
        await client.request(
            op, {"agent_id": other.agent_id, "capability": "c", "input": 1, "task_id": "t", "text": "hi"}
        )
    assert err.value.reason == "not_bound"
    assert hub.list_tasks() == []


async def test_a_result_before_the_invite_is_acked(hub: Hub, client: HubClient) -> None:
    lazy = await silent(client, "lazy", ack=False)
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    early = Envelope(
        channel_id=task.channel_id or "",
        sender_id=lazy.agent_id,
        event_data={"text": "done!"},
        task_id=task.task_id,
    )
    with pytest.raises(ChannelClosedError) as err:
        await client.request("post_envelope", {"envelope": early})
    assert err.value.reason == "not_active"
    assert hub.get_task(task.task_id) == task
