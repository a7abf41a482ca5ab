"""Delegated tasks through the hub: every state transition, retries, TTLs, results routed back,
the track record they feed, and late or foreign results refused without overwriting anything."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_TEXT,
    AccessDeniedError,
    ChannelClosedError,
    Envelope,
    Hub,
    HubClient,
    LimitsBlock,
    ObservedStat,
    Passport,
    RateBlock,
    Rule,
    TaskInput,
    Worker,
)
from tests.conftest import TIME_UNIT
from tests.hub._delegation import (
    RecordingStore,
    answering,
    question_of,
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


# ── the happy path, and what it leaves behind ───────────────────────────────


async def test_a_task_goes_pending_assigned_in_progress_completed(hub: Hub, client: HubClient) -> None:
    worker = await answering(client, "ada")
    alice = await client.register(name="alice")
    seen: list[Envelope] = []
    alice.on_envelope(seen.append)

    task = await alice.delegate("summarize", "make it short", ttl=30 * TIME_UNIT)
    assert (task.state, task.worker_id, task.attempts, task.requester_id) == (
        "PENDING",
        None,
        1,
        alice.agent_id,
    )
    assert task.channel_id is not None
    assert hub.get_channel(task.channel_id).labels == {
        "task_id": task.task_id,
        "capability": "summarize",
        "intent": "delegation",
    }

    done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.result, done.error) == ("COMPLETED", "MAKE IT SHORT", None)
    assert done.worker_id == worker.agent_id
    assert store(hub).path(task.task_id) == ["PENDING", "ASSIGNED", "IN_PROGRESS", "COMPLETED"]

    # The exchange is an ordinary consulting channel, in the WAL, with the task id on both texts.
    wal = await hub.read_wal(task.channel_id)
    question, reply = [e for e in wal if e.event_type == EV_TEXT]
    assert (question.sender_id, question.task_id, question.text) == (
        alice.agent_id,
        task.task_id,
        "make it short",
    )
    assert question.event_data["input"] == "make it short"
    assert question.event_data["capability"] == "summarize"
    assert (reply.sender_id, reply.causation_id, reply.task_id) == (
        worker.agent_id,
        question.envelope_id,
        task.task_id,
    )
    assert hub.get_channel(task.channel_id).close_reason == "consulting_complete"
    status = hub.status()
    assert (status["tasks"], status["tasks_by_state"]) == (1, {"COMPLETED": 1})
    # The result reached the requester as a delivery too.
    await wait_until(
        lambda: any(e.envelope_id == reply.envelope_id for e in seen), what="the reply delivered"
    )

    stat = hub.get_resume(worker.agent_id).observed["summarize"]
    assert (stat.n, stat.completed, stat.failed, stat.expired) == (1, 1, 0, 0)
    [delegated] = await audit_records(hub, "task_delegated")
    [finished] = await audit_records(hub, "task_finished")
    assert delegated.data["task_id"] == finished.data["task_id"] == task.task_id
    assert finished.reason == "COMPLETED"


async def test_structured_input_and_result(hub: Hub, client: HubClient) -> None:
    worker = Worker("counter")

    @worker.on_task("count")
    def count(task: TaskInput) -> dict[str, int]:
        return {"n": len(task.input["words"])}

    async with worker.connected(client):
        alice = await client.register(name="alice")
        task = await alice.delegate("count", {"words": ["a", "b", "c"]})
        done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.input, done.result) == ("COMPLETED", {"words": ["a", "b", "c"]}, {"n": 3})
    wal = await hub.read_wal(done.channel_id or "")
    [question] = [e for e in wal if e.sender_id == alice.agent_id and e.event_type == EV_TEXT]
    assert question.text == '{"words":["a","b","c"]}'


async def test_an_error_reply_fails_the_task_with_its_message(hub: Hub, client: HubClient) -> None:
    worker = Worker("grump")

    @worker.on_task("summarize")
    async def refuse(task: TaskInput) -> str:
        raise ValueError("too long to read")

    async with worker.connected(client) as agent:
        alice = await client.register(name="alice")
        task = await alice.delegate("summarize", "x")
        done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.error, done.result) == ("FAILED", "too long to read", None)
    assert store(hub).path(task.task_id) == ["PENDING", "ASSIGNED", "IN_PROGRESS", "FAILED"]
    await wait_until(lambda: "summarize" in hub.get_resume(agent.agent_id).observed)
    assert hub.get_resume(agent.agent_id).observed["summarize"].failed == 1


async def test_a_failed_turn_fails_the_task(hub: Hub, client: HubClient) -> None:
    def crash(turn: object) -> str:
        raise RuntimeError("model unavailable")

    await answering(client, "flaky", crash)
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    done = await client.wait_task(task.task_id, WAIT)
    assert done.state == "FAILED"
    assert done.error is not None
    assert done.error.startswith("flaky's turn failed: ")
    assert "model unavailable" in done.error
    assert hub.get_channel(done.channel_id or "").close_reason == "task_failed"


async def test_assigned_then_failed_when_the_input_cannot_be_posted(hub: Hub, client: HubClient) -> None:
    await answering(client, "ada")
    # The requester's own rate allows one text: the second task's question is refused.
    limits = LimitsBlock(rate=RateBlock(per_minute=1, burst=1))
    alice = await client.register(name="alice", rule=Rule(limits=limits))
    first = await alice.delegate("summarize", "one")
    assert (await client.wait_task(first.task_id, WAIT)).state == "COMPLETED"
    second = await alice.delegate("summarize", "two")
    done = await client.wait_task(second.task_id, WAIT)
    assert done.state == "FAILED"
    assert "could not post the task's input" in (done.error or "")
    assert store(hub).path(second.task_id) == ["PENDING", "ASSIGNED", "FAILED"]


# ── cancel and TTL ───────────────────────────────────────────────────────────


async def test_cancel_while_pending(hub: Hub, client: HubClient) -> None:
    await silent(client, "sleepy", ack=False)
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    cancelled = await alice.cancel_task(task.task_id)
    assert (cancelled.state, cancelled.error) == ("CANCELLED", "cancelled by alice")
    assert store(hub).path(task.task_id) == ["PENDING", "CANCELLED"]
    assert hub.get_channel(task.channel_id or "").close_reason == "task_cancelled"
    assert (await client.wait_task(task.task_id, WAIT)) == cancelled


async def test_cancel_while_in_progress_tells_both_sides(hub: Hub, client: HubClient) -> None:
    worker = await silent(client, "slow")
    alice = await client.register(name="alice")
    closed: list[Envelope] = []
    worker.on_envelope(lambda e: closed.append(e) if e.event_type == EV_CHANNEL_CLOSED else None)
    alice.on_envelope(lambda e: closed.append(e) if e.event_type == EV_CHANNEL_CLOSED else None)
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    cancelled = await alice.cancel_task(task.task_id)
    assert cancelled.state == "CANCELLED"
    assert store(hub).path(task.task_id) == ["PENDING", "ASSIGNED", "IN_PROGRESS", "CANCELLED"]
    await wait_until(lambda: len(closed) == 2, what="both sides told")
    assert {e.event_data["reason"] for e in closed} == {"task_cancelled"}
    assert "summarize" not in hub.get_resume(worker.agent_id).observed  # a cancel is nobody's failure


async def test_ttl_while_in_progress_times_out_and_tells_the_requester(hub: Hub, client: HubClient) -> None:
    worker = await silent(client, "slow")
    alice = await client.register(name="alice")
    told: list[Envelope] = []
    alice.on_envelope(lambda e: told.append(e) if e.event_type == EV_CHANNEL_CLOSED else None)
    task = await alice.delegate("summarize", "x", ttl=0.3 * TIME_UNIT)
    done = await client.wait_task(task.task_id, WAIT)
    assert done.state == "TIMEOUT"
    assert done.error == f"no result within its ttl of {0.3 * TIME_UNIT:g}s"
    assert store(hub).path(task.task_id) == ["PENDING", "ASSIGNED", "IN_PROGRESS", "TIMEOUT"]
    await wait_until(lambda: bool(told), what="the requester told")
    assert told[0].event_data["reason"] == "task_timeout"
    await wait_until(lambda: "summarize" in hub.get_resume(worker.agent_id).observed)
    assert hub.get_resume(worker.agent_id).observed["summarize"] == ObservedStat(n=1, expired=1)


async def test_ttl_while_pending_times_out(hub: Hub, client: HubClient) -> None:
    await silent(client, "sleepy", ack=False)
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x", ttl=0.2 * TIME_UNIT)
    done = await client.wait_task(task.task_id, WAIT)
    assert done.state == "TIMEOUT"
    assert store(hub).path(task.task_id) == ["PENDING", "TIMEOUT"]
    assert hub.get_channel(task.channel_id or "").close_reason == "task_timeout"


async def test_wait_returns_the_current_record_when_its_timeout_passes(hub: Hub, client: HubClient) -> None:
    await silent(client, "slow")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    waited = await client.wait_task(task.task_id, 0.05)
    assert waited.state == "IN_PROGRESS"
    assert waited == hub.get_task(task.task_id)


# ── results that must not count ──────────────────────────────────────────────


@pytest.mark.parametrize("ending", ["TIMEOUT", "CANCELLED"])
async def test_a_late_result_is_refused_audited_and_changes_nothing(
    hub: Hub, client: HubClient, ending: str
) -> None:
    worker = await silent(client, "slow")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x", ttl=(0.3 if ending == "TIMEOUT" else 30) * TIME_UNIT)
    await question_of(hub, task.task_id)
    if ending == "CANCELLED":
        await alice.cancel_task(task.task_id)
    finished = await client.wait_task(task.task_id, WAIT)
    assert finished.state == ending
    with pytest.raises(ChannelClosedError):
        await reply(client, hub, worker.agent_id, task.task_id, "too late")
    assert hub.get_task(task.task_id) == finished
    [refused] = await audit_records(hub, "task_result_refused")
    assert (refused.agent_id, refused.data["task_id"], refused.data["state"]) == (
        worker.agent_id,
        task.task_id,
        ending,
    )


async def test_a_second_result_is_refused(hub: Hub, client: HubClient) -> None:
    worker = await silent(client, "slow")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    await reply(client, hub, worker.agent_id, task.task_id, "first")
    done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.result) == ("COMPLETED", "first")
    with pytest.raises(ChannelClosedError):
        await reply(client, hub, worker.agent_id, task.task_id, "second")
    assert hub.get_task(task.task_id) == done


async def test_a_result_from_an_agent_that_does_not_own_the_task_is_refused(
    hub: Hub, client: HubClient
) -> None:
    await silent(client, "slow")
    mallory = await client.register(name="mallory")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "x")
    await state_is(hub, task.task_id, "IN_PROGRESS")
    with pytest.raises(AccessDeniedError) as err:
        await reply(client, hub, mallory.agent_id, task.task_id, "forged")
    assert err.value.reason == "not_a_participant"
    assert hub.get_task(task.task_id).state == "IN_PROGRESS"
    assert hub.get_task(task.task_id).result is None
    [refused] = await audit_records(hub, "task_result_refused")
    assert refused.agent_id == mallory.agent_id


async def test_the_input_is_kept_as_the_json_it_travels_as(hub: Hub, client: HubClient) -> None:
    await answering(client, "ada")
    alice = await hub.register(Passport(name="alice"))
    payload = {"pair": (1, 2), "nested": {"x": [True, None]}}
    task = await hub.delegate(alice.agent_id or "", "summarize", payload)
    payload["nested"]["x"].append("changed later")  # type: ignore[index]
    assert task.input == {"pair": [1, 2], "nested": {"x": [True, None]}}
    assert (await hub.wait_task(task.task_id, WAIT)).state == "COMPLETED"
