"""Delegated tasks moving between workers (a worker leaving, declining, never acking; retries used
up) and how the hub picks the worker (load, track record, task caps, idempotency, listings)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hubbub import (
    FunctionAgent,
    Hub,
    HubClient,
    LimitsBlock,
    LocalLink,
    Resume,
    Rule,
)
from tests.conftest import TIME_UNIT
from tests.hub._delegation import (
    RecordingStore,
    another_client,
    answering,
    reply,
    silent,
    state_is,
)
from tests.hub._waiting import audit_records, wait_until

WAIT = 5 * TIME_UNIT


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub(RecordingStore(), invite_ack_timeout=5 * TIME_UNIT) as h:
        h.delegations.reassign_grace = 0.05  # a worker that left is not coming back in these tests
        yield h


def store(hub: Hub) -> RecordingStore:
    assert isinstance(hub.store, RecordingStore)
    return hub.store


# ── retries ──────────────────────────────────────────────────────────────────


async def test_worker_disconnect_hands_the_task_to_another_agent(hub: Hub, client: HubClient) -> None:
    leaving_client = another_client(client, hub)
    leaving = await silent(leaving_client, "a-leaving")  # sorts first: picked first among equals
    staying = await answering(client, "b-staying")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    assert hub.get_task(task.task_id).worker_id == leaving.agent_id
    first_channel = task.channel_id

    await leaving_client.aclose()
    done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.result, done.worker_id, done.attempts) == (
        "COMPLETED",
        "X",
        staying.agent_id,
        2,
    )
    assert done.channel_id != first_channel
    assert store(hub).path(task.task_id) == [
        "PENDING",
        "ASSIGNED",
        "IN_PROGRESS",
        "PENDING",
        "ASSIGNED",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assert hub.get_channel(first_channel or "").close_reason == "worker_gone"
    [moved] = await audit_records(hub, "task_reassigned")
    assert "a-leaving disconnected" in moved.reason
    await wait_until(lambda: "summarize" in hub.get_resume(leaving.agent_id).observed)
    assert hub.get_resume(leaving.agent_id).observed["summarize"].failed == 1


async def test_a_worker_back_within_the_grace_keeps_its_task(hub: Hub, client: HubClient) -> None:
    hub.delegations.reassign_grace = 30 * TIME_UNIT
    leaving_client = another_client(client, hub)
    await silent(leaving_client, "a-blip")
    await answering(client, "b-other")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    await leaving_client.aclose()
    back_client = another_client(client, hub)
    back = await back_client.attach(None, "a-blip", handle_turns=False)
    await reply(back_client, hub, back.agent_id, task.task_id, "done after a blip")
    done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.result, done.worker_id, done.attempts) == (
        "COMPLETED",
        "done after a blip",
        back.agent_id,
        1,
    )
    await back_client.aclose()


async def test_a_rejected_invite_goes_to_the_next_agent(hub: Hub, client: HubClient) -> None:
    no = await answering(client, "a-no", accept_invite=lambda invite: False)
    yes = await answering(client, "b-yes")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.worker_id, done.attempts) == ("COMPLETED", yes.agent_id, 2)
    assert store(hub).path(task.task_id) == ["PENDING", "ASSIGNED", "IN_PROGRESS", "COMPLETED"]
    assert hub.get_resume(no.agent_id).observed == {}  # declining is not failing


async def test_pending_then_failed_when_the_only_worker_declines(hub: Hub, client: HubClient) -> None:
    await answering(client, "no", accept_invite=lambda invite: False)
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x", max_retries=0)
    done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.worker_id, done.attempts) == ("FAILED", None, 1)
    assert "rejected the invite" in (done.error or "")
    assert store(hub).path(task.task_id) == ["PENDING", "FAILED"]


async def test_an_invite_never_acked_goes_to_the_next_agent() -> None:
    async with (
        Hub(RecordingStore(), invite_ack_timeout=0.2 * TIME_UNIT) as hub,
        HubClient(LocalLink(hub)) as client,
    ):
        await silent(client, "a-sleepy", ack=False)
        ok = await answering(client, "b-awake")
        alice = await client.register(name="alice")
        task = await alice.delegate("summarize", "x", max_retries=1)
        done = await client.wait_task(task.task_id, WAIT)
        assert (done.state, done.worker_id, done.attempts) == ("COMPLETED", ok.agent_id, 2)
        assert hub.get_channel(task.channel_id or "").close_reason == "invite_timeout"
        [moved] = await audit_records(hub, "task_reassigned")
        assert moved.reason == f"a-sleepy did not ack the invite within {0.2 * TIME_UNIT:g}s"


async def test_retries_stop_at_max_retries(hub: Hub, client: HubClient) -> None:
    leaving_client = another_client(client, hub)
    await silent(leaving_client, "a-leaving")
    await answering(client, "b-staying")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x", max_retries=0)
    await state_is(hub, task.task_id, "IN_PROGRESS")
    await leaving_client.aclose()
    done = await client.wait_task(task.task_id, WAIT)
    assert done.state == "FAILED"
    assert done.error == (
        "worker a-leaving disconnected before it replied; no retries left (1 agent(s) tried, max_retries=0)"
    )
    assert store(hub).path(task.task_id) == ["PENDING", "ASSIGNED", "IN_PROGRESS", "FAILED"]


async def test_no_other_capable_agent_fails_the_task(hub: Hub, client: HubClient) -> None:
    leaving_client = another_client(client, hub)
    await silent(leaving_client, "only")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    await leaving_client.aclose()
    done = await client.wait_task(task.task_id, WAIT)
    assert done.state == "FAILED"
    assert done.error is not None
    assert done.error.endswith("no other agent with capability 'summarize' is available")


# ── choosing the worker ──────────────────────────────────────────────────────


async def test_least_loaded_first_never_the_requester(hub: Hub, client: HubClient) -> None:
    one = await silent(client, "one")
    two = await silent(client, "two")
    boss = await client.register(
        FunctionAgent(lambda t: "me", name="boss", capabilities=["summarize"])
    )  # claims it too, but never gets its own task
    tasks = [await boss.delegate("summarize", f"t{i}") for i in range(4)]
    for task in tasks:
        await state_is(hub, task.task_id, "IN_PROGRESS")
    workers = [hub.get_task(t.task_id).worker_id for t in tasks]
    assert sorted(workers) == sorted([one.agent_id, one.agent_id, two.agent_id, two.agent_id])
    assert hub.delegations.attempts.load(one.agent_id) == 2


async def test_equal_load_goes_to_the_better_track_record(hub: Hub, client: HubClient) -> None:
    a = await silent(client, "a-shaky")
    b = await silent(client, "b-solid")
    for i, kind in enumerate(["failed", "succeeded"]):
        await hub.record_task_event(a.agent_id, f"m{i}", "started", capabilities=["summarize"])
        await hub.record_task_event(a.agent_id, f"m{i}", kind)
    await hub.record_task_event(b.agent_id, "m", "started", capabilities=["summarize"])
    await hub.record_task_event(b.agent_id, "m", "succeeded")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    assert hub.get_task(task.task_id).worker_id == b.agent_id


async def test_a_worker_at_its_task_cap_is_passed_over(hub: Hub, client: HubClient) -> None:
    capped = await client.register(
        name="a-capped",
        resume=Resume(claimed_capabilities=["summarize"]),
        rule=Rule(limits=LimitsBlock(max_concurrent_tasks=1)),
        handle_turns=False,
    )
    other = await silent(client, "b-other")
    alice = await client.register(name="alice")
    first = await alice.delegate("summarize", "1", target="a-capped")
    second = await alice.delegate("summarize", "2")
    await state_is(hub, second.task_id, "IN_PROGRESS")
    assert hub.get_task(first.task_id).worker_id == capped.agent_id
    assert hub.get_task(second.task_id).worker_id == other.agent_id


async def test_idempotency_key_returns_the_first_task(hub: Hub, client: HubClient) -> None:
    await answering(client, "ada")
    alice = await client.register(name="alice")
    first = await alice.delegate("summarize", "x", idempotency_key="job-1")
    again = await alice.delegate("summarize", "something else", idempotency_key="job-1")
    assert again.task_id == first.task_id
    assert len(hub.list_tasks()) == 1
    bob = await client.register(name="bob")
    other = await bob.delegate("summarize", "x", idempotency_key="job-1")  # keys are per requester
    assert other.task_id != first.task_id


async def test_list_and_filters_newest_first(hub: Hub, client: HubClient) -> None:
    ada = await answering(client, "ada")
    alice = await client.register(name="alice")
    bob = await client.register(name="bob")
    t1 = await alice.delegate("summarize", "1")
    t2 = await bob.delegate("summarize", "2")
    for task in (t1, t2):
        await client.wait_task(task.task_id, WAIT)
    t3 = await alice.cancel_task((await alice.delegate("summarize", "3", target="ada")).task_id)
    ids = [t.task_id for t in await client.list_tasks()]
    assert ids == [t3.task_id, t2.task_id, t1.task_id]
    assert [t.task_id for t in await client.list_tasks(requester_id=alice.agent_id)] == [
        t3.task_id,
        t1.task_id,
    ]
    assert [t.task_id for t in await client.list_tasks(state="COMPLETED", limit=1)] == [t2.task_id]
    assert [t.task_id for t in await client.list_tasks(worker_id=ada.agent_id)] == [t2.task_id, t1.task_id]
    assert await client.get_task(t1.task_id) == hub.get_task(t1.task_id)
