"""TaskMirror: an agent's sub-tasks reach the hub, build its track record, and steer discovery."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from hubbub import (
    AccessDeniedError,
    AgentClient,
    FunctionAgent,
    Hub,
    HubClient,
    LimitsBlock,
    NotFoundError,
    ObservedStat,
    Rule,
    TaskMirror,
    Turn,
    UsageError,
    current_agent,
)
from tests.conftest import TIME_UNIT


async def worker(client: HubClient, name: str = "ada", rule: Rule | None = None) -> AgentClient:
    return await client.register(
        FunctionAgent(lambda t: None, name=name, capabilities=["summarize"]), rule=rule, handle_turns=False
    )


async def test_tasks_is_one_mirror_per_agent(client: HubClient) -> None:
    ada = await worker(client)
    assert isinstance(ada.tasks, TaskMirror)
    assert ada.tasks is ada.tasks


async def test_track_reports_success_with_the_measured_duration(hub: Hub, client: HubClient) -> None:
    ada = await worker(client)
    async with ada.tasks.track("summarize") as task:
        assert hub.tasks.open_tasks(ada.agent_id) == [task.id]
        assert task.outcome is None
    assert task.outcome == "succeeded"
    assert task.id.startswith("summarize-")
    assert task.capabilities == ["summarize"]
    assert isinstance(task.duration_ms, int)
    assert hub.tasks.open_tasks(ada.agent_id) == []
    assert hub.get_resume(ada.agent_id).observed == {
        "summarize": ObservedStat(n=1, completed=1, p50_latency_ms=task.duration_ms)
    }


async def test_track_reports_the_error_and_reraises_it(hub: Hub, client: HubClient) -> None:
    ada = await worker(client)
    with pytest.raises(ValueError, match="model refused"):
        async with ada.tasks.track("summarize", capabilities=["summarize", "legal"], task_id="job-1") as task:
            raise ValueError("model refused")
    assert (task.outcome, task.error) == ("failed", "ValueError: model refused")
    observed = hub.get_resume(ada.agent_id).observed
    assert observed == {
        "summarize": ObservedStat(n=1, failed=1),
        "legal": ObservedStat(n=1, failed=1),
    }


async def test_fail_marks_the_task_failed_without_raising(hub: Hub, client: HubClient) -> None:
    ada = await worker(client)
    async with ada.tasks.track("summarize") as task:
        task.fail("input too long")
    assert (task.outcome, task.error) == ("failed", "input too long")
    assert hub.get_resume(ada.agent_id).observed["summarize"] == ObservedStat(n=1, failed=1)


async def test_cancelled_block_is_reported_failed(hub: Hub, client: HubClient) -> None:
    ada = await worker(client)
    inside = asyncio.Event()

    async def work() -> None:
        async with ada.tasks.track("summarize", task_id="long"):
            inside.set()
            await asyncio.Event().wait()

    job = asyncio.create_task(work())
    await asyncio.wait_for(inside.wait(), 5 * TIME_UNIT)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert hub.get_resume(ada.agent_id).observed["summarize"] == ObservedStat(n=1, failed=1)
    assert hub.tasks.open_tasks(ada.agent_id) == []


async def test_a_lost_failure_report_does_not_hide_the_blocks_error(hub: Hub, client: HubClient) -> None:
    ada = await worker(client)

    async def work() -> None:
        async with ada.tasks.track("summarize") as task:
            await ada.tasks.succeeded(task.id, duration_ms=4)
            raise RuntimeError("original")

    with pytest.raises(RuntimeError, match="original"):
        await work()
    assert hub.get_resume(ada.agent_id).observed["summarize"] == ObservedStat(
        n=1, completed=1, p50_latency_ms=4
    )


async def test_explicit_calls_with_and_without_durations(hub: Hub, client: HubClient) -> None:
    ada = await worker(client)
    started = await ada.tasks.started("a", ["summarize"])
    assert (started.kind, started.capabilities, started.agent_id) == ("started", ["summarize"], ada.agent_id)
    done = await ada.tasks.succeeded("a", duration_ms=250)
    assert (done.kind, done.duration_ms) == ("succeeded", 250)
    await ada.tasks.started("b", ["summarize"])
    failed = await ada.tasks.failed("b", "timeout upstream")
    assert (failed.kind, failed.error) == ("failed", "timeout upstream")
    assert isinstance(failed.duration_ms, int)
    assert hub.get_resume(ada.agent_id).observed["summarize"] == ObservedStat(
        n=2, completed=1, failed=1, p50_latency_ms=250
    )


async def test_mirror_errors_come_back_typed(client: HubClient) -> None:
    ada = await worker(client, rule=Rule(limits=LimitsBlock(max_concurrent_tasks=1)))
    with pytest.raises(NotFoundError, match="ada has no open task 'never'"):
        await ada.tasks.succeeded("never")
    await ada.tasks.started("one", ["summarize"])
    ran = False
    with pytest.raises(AccessDeniedError) as err:
        async with ada.tasks.track("summarize"):
            ran = True
    assert not ran
    assert err.value.reason == "max_concurrent_tasks"
    assert "limits.max_concurrent_tasks=1" in str(err.value)
    await ada.tasks.failed("one", "gave up")
    with pytest.raises(UsageError, match="already failed"):
        await ada.tasks.succeeded("one")
    with pytest.raises(UsageError, match="needs a task name"):
        ada.tasks.track("")


async def test_current_agent_outside_a_turn() -> None:
    with pytest.raises(UsageError, match="outside an agent's turn"):
        current_agent()


async def test_current_agent_is_the_client_running_the_turn(client: HubClient) -> None:
    seen: list[AgentClient] = []

    def bob(turn: Turn) -> str:
        seen.append(current_agent())
        return "ok"

    alice = await client.register(name="alice")
    bob_client = await client.register(FunctionAgent(bob, name="bob"))
    channel = await alice.open("consulting", "bob")
    await channel.send("hi")
    await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert seen == [bob_client]


async def test_discovery_follows_the_mirrored_track_record(hub: Hub, client: HubClient) -> None:
    plans: dict[str, deque[bool]] = {"alpha": deque(), "beta": deque()}

    def summarizer(name: str) -> FunctionAgent:
        async def summarize(turn: Turn) -> str:
            try:
                async with current_agent().tasks.track("summarize"):
                    if not plans[name].popleft():
                        raise RuntimeError("model refused")
                    return f"{name}: summary"
            except RuntimeError:
                return f"{name}: sorry"

        return FunctionAgent(summarize, name=name, capabilities=["summarize"])

    user = await client.register(name="user")
    alpha = await client.register(summarizer("alpha"))
    beta = await client.register(summarizer("beta"))

    async def ask(name: str, times: int) -> None:
        for _ in range(times):
            channel = await user.open("consulting", name)
            await channel.send("summarize this")
            final = await channel.wait_closed(timeout=5 * TIME_UNIT)
            assert final.close_reason == "consulting_complete"

    async def ranking() -> list[str]:
        return [p.name for p in await client.discover("summarize")]

    assert await ranking() == ["alpha", "beta"]  # no record yet: by name

    plans["alpha"].extend([False, False, False, True])
    plans["beta"].extend([True] * 4)
    await ask("alpha", 4)
    await ask("beta", 4)
    a = hub.get_resume(alpha.agent_id).observed["summarize"]
    b = hub.get_resume(beta.agent_id).observed["summarize"]
    assert (a.n, a.completed, a.failed, a.success_rate) == (4, 1, 3, 0.25)
    assert (b.n, b.completed, b.failed, b.success_rate) == (4, 4, 0, 1.0)
    assert await ranking() == ["beta", "alpha"]

    plans["alpha"].extend([True] * 8)
    plans["beta"].extend([False] * 12)
    await ask("alpha", 8)
    await ask("beta", 12)
    a = hub.get_resume(alpha.agent_id).observed["summarize"]
    b = hub.get_resume(beta.agent_id).observed["summarize"]
    assert (a.n, a.completed, a.failed, a.success_rate) == (12, 9, 3, 0.75)
    assert (b.n, b.completed, b.failed, b.success_rate) == (16, 4, 12, 0.25)
    assert await ranking() == ["alpha", "beta"]
    assert plans == {"alpha": deque(), "beta": deque()}
