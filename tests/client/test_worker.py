"""The worker SDK: decorator and class styles register their capabilities, answer delegated tasks
over both links, turn exceptions into FAILED, and stop their handlers when a task ends early."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hubbub import (
    Hub,
    HubClient,
    LocalLink,
    NotFoundError,
    TaskInput,
    UsageError,
    Worker,
    WorkerAgent,
    WsLink,
    capability,
    serve_ws,
)
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until
from tests.transport.test_reconnect import Restartable, failed_tries, fast_link, outage

WAIT = 5 * TIME_UNIT


async def test_decorator_style_async_and_sync_handlers(hub: Hub, client: HubClient) -> None:
    worker = Worker("textsmith", summary="small text jobs")

    @worker.on_task("Summarize")
    async def summarize(task: TaskInput) -> dict[str, str]:
        return {"summary": task.input["text"][:5], "by": task.capability}

    @worker.on_task("count")
    def count(task: TaskInput) -> int:
        return len(task.text.split())

    assert worker.capabilities == ["summarize", "count"]
    async with worker.connected(client) as agent:
        resume = hub.get_resume(agent.agent_id)
        assert (resume.claimed_capabilities, resume.summary) == (["summarize", "count"], "small text jobs")
        alice = await client.register(name="alice")
        first = await alice.delegate("summarize", {"text": "hello world"})
        second = await alice.delegate("count", "one two three")
        one = await client.wait_task(first.task_id, WAIT)
        two = await client.wait_task(second.task_id, WAIT)
    assert (one.state, one.result) == ("COMPLETED", {"summary": "hello", "by": "summarize"})
    assert (two.state, two.result) == ("COMPLETED", 3)
    assert one.worker_id == two.worker_id == agent.agent_id


class Linguist(WorkerAgent):
    def __init__(self, suffix: str) -> None:
        super().__init__(summary="words")
        self.suffix = suffix

    @capability("translate")
    async def translate(self, task: TaskInput) -> str:
        return f"{task.input}{self.suffix}"

    @capability("spell")
    def spell(self, task: TaskInput) -> list[str]:
        return list(task.input)

    def helper(self) -> None:  # not a capability
        pass


async def test_class_style(hub: Hub, client: HubClient) -> None:
    linguist = Linguist("-ish")
    assert linguist.name == "linguist"
    assert sorted(linguist.capabilities) == ["spell", "translate"]
    async with linguist.connected(client):
        alice = await client.register(name="alice")
        t = await alice.delegate("translate", "english")
        s = await alice.delegate("spell", "abc")
        assert (await client.wait_task(t.task_id, WAIT)).result == "english-ish"
        assert (await client.wait_task(s.task_id, WAIT)).result == ["a", "b", "c"]


async def test_an_exception_fails_the_task_with_its_message(hub: Hub, client: HubClient) -> None:
    worker = Worker("strict")

    @worker.on_task("check")
    def check(task: TaskInput) -> None:
        raise ValueError(f"{task.input!r} is not valid")

    @worker.on_task("bare")
    def bare(task: TaskInput) -> None:
        raise KeyError

    @worker.on_task("odd")
    def odd(task: TaskInput) -> object:
        return object()  # not a JSON value

    async with worker.connected(client):
        alice = await client.register(name="alice")
        results = [await alice.delegate(cap, "x") for cap in ("check", "bare", "odd")]
        done = [await client.wait_task(t.task_id, WAIT) for t in results]
    assert [t.state for t in done] == ["FAILED"] * 3
    assert done[0].error == "'x' is not valid"
    assert done[1].error == "KeyError"
    assert "Encoding objects of type object is unsupported" in (done[2].error or "")


async def test_a_cancelled_task_cancels_its_handler(hub: Hub, client: HubClient) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()
    worker = Worker("patient")

    @worker.on_task("wait")
    async def wait(task: TaskInput) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        return "never"

    async with worker.connected(client):
        alice = await client.register(name="alice")
        task = await alice.delegate("wait", "x")
        await asyncio.wait_for(started.wait(), WAIT)
        assert (await alice.cancel_task(task.task_id)).state == "CANCELLED"
        await asyncio.wait_for(stopped.wait(), WAIT)
    assert hub.get_task(task.task_id).state == "CANCELLED"


async def test_stop_claims_nothing_so_nothing_is_sent_its_way(hub: Hub, client: HubClient) -> None:
    worker = Worker("parttime")

    @worker.on_task("summarize")
    def summarize(task: TaskInput) -> str:
        return "ok"

    agent = await worker.start(client)
    await worker.stop()
    assert hub.get_resume(agent.agent_id).claimed_capabilities == []
    alice = await client.register(name="alice")
    with pytest.raises(NotFoundError) as err:
        await alice.delegate("summarize", "x")
    assert err.value.reason == "no_capable_agent"
    # Back again under the same identity, with its capabilities.
    async with worker.connected(client, attach=True) as again:
        assert again.agent_id == agent.agent_id
        task = await alice.delegate("summarize", "x")
        assert (await client.wait_task(task.task_id, WAIT)).result == "ok"


async def test_run_answers_until_cancelled(hub: Hub, client: HubClient) -> None:
    worker = Worker("daemon")

    @worker.on_task("ping")
    def ping(task: TaskInput) -> str:
        return "pong"

    running = asyncio.ensure_future(worker.run(client))
    await wait_until(lambda: bool(hub.discover("ping")), what="the worker registered")
    alice = await client.register(name="alice")
    task = await alice.delegate("ping", None)
    assert (await client.wait_task(task.task_id, WAIT)).result == "pong"
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert hub.get_resume("daemon").claimed_capabilities == []


def test_misuse_is_a_usage_error() -> None:
    worker = Worker("w")
    worker.on_task("a")(lambda task: None)
    with pytest.raises(UsageError, match="already has a handler for capability 'a'"):
        worker.on_task("A")(lambda task: None)
    with pytest.raises(UsageError, match="non-empty string"):
        worker.on_task("")
    with pytest.raises(UsageError, match="non-empty name"):
        Worker("")


async def test_a_worker_without_handlers_cannot_start(client: HubClient) -> None:
    with pytest.raises(UsageError, match="has no task handlers"):
        await Worker("idle").start(client)


async def test_a_worker_hears_broadcasts_and_a_none_result_completes(hub: Hub, client: HubClient) -> None:
    worker = Worker("listener")

    @worker.on_task("noop")
    def noop(task: TaskInput) -> None:
        return None

    async with worker.connected(client) as agent:
        heard: list[str] = []
        agent.on_envelope(lambda e: heard.append(e.text) if e.event_type == "ag2.msg.text" else None)
        alice = await client.register(name="alice")
        assert await alice.broadcast("news", capability="noop") == 1
        await wait_until(lambda: heard == ["news"], what="the broadcast heard")
        task = await alice.delegate("noop", [1, 2])
        done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.result) == ("COMPLETED", None)


async def test_a_worker_that_comes_back_mid_task_runs_it_again_from_its_checkpoint(hub: Hub) -> None:
    # Its question was acked when the handler started, so no replay brings it back: the worker
    # asks the hub which tasks it still holds.
    seen: list[object] = []

    def worker(hang: bool) -> Worker:
        made = Worker("a")

        @made.on_task("steps")
        async def steps(task: TaskInput) -> object:
            checkpoint = await made.checkpoints.load(task.task_id)
            seen.append(checkpoint)
            await made.checkpoints.save(task.task_id, {"step": 1})
            if hang:
                await asyncio.Event().wait()
            return {"resumed": checkpoint}

        return made

    async with serve_ws(hub) as server, HubClient(LocalLink(hub)) as local:
        alice = await local.register(name="alice", handle_turns=False)
        first = HubClient(WsLink(server.url, reconnect=False))
        gone = worker(hang=True)
        await gone.start(first)
        task = await alice.delegate("steps", "go", ttl=30 * TIME_UNIT)
        await wait_until(lambda: len(seen) == 1, what="the first run")
        await gone.stop()  # the process dies (its handler with it)...
        await first.aclose()
        async with HubClient(WsLink(server.url)) as second:
            back = worker(hang=False)
            await back.start(second, attach=True)  # ...and comes back within the handoff grace
            done = await local.wait_task(task.task_id, 10 * TIME_UNIT)
            await back.stop()
        assert (done.state, done.result, done.attempts) == ("COMPLETED", {"resumed": {"step": 1}}, 1)
        assert seen == [None, {"step": 1}]


async def test_a_result_ready_while_the_hub_is_away_is_posted_when_it_is_back(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.client")
    release, started = asyncio.Event(), asyncio.Event()
    worker = Worker("a")

    @worker.on_task("slow")
    async def slow(task: TaskInput) -> str:
        started.set()
        await release.wait()
        return "done"

    served = Restartable(hub)
    await served.start()
    try:
        async with (
            HubClient(LocalLink(hub)) as local,
            HubClient(fast_link(served.url, request_timeout=0.3 * TIME_UNIT)) as remote,
        ):
            await worker.start(remote)
            alice = await local.register(name="alice", handle_turns=False)
            task = await alice.delegate("slow", "go", ttl=30 * TIME_UNIT)
            await asyncio.wait_for(started.wait(), WAIT)
            await outage(served, worker.agent.agent_id if worker.agent else "")
            release.set()  # done while the hub is away; posting it fails more than twice
            await wait_until(lambda: failed_tries(caplog, "post_envelope") > 2, 10 * TIME_UNIT, what="tries")
            await served.start()
            done = await local.wait_task(task.task_id, 10 * TIME_UNIT)
            assert (done.state, done.result, done.attempts) == ("COMPLETED", "done", 1)
            await worker.stop()
    finally:
        await served.stop()
