"""The task tools and broadcast, over stdio and streamable HTTP, against a live hub whose workers
(FunctionAgents and a Worker, claiming their capabilities in their Resume) do the work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hubbub import EV_TEXT, Envelope, FunctionAgent, Hub, HubClient, Turn, WsLink, serve_ws
from hubbub.worker import TaskInput, Worker
from tests.conftest import TIME_UNIT

from ._servers import error_text, mcp_client, structured

WAIT = 10 * TIME_UNIT


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def hub_url(hub: Hub) -> AsyncIterator[str]:
    async with serve_ws(hub) as server:
        yield server.url


class Workers:
    """The agents doing the work, and the messages (outside tasks) that reached them."""

    def __init__(self, client: HubClient) -> None:
        self.client = client
        self.release = asyncio.Event()
        self.heard: dict[str, list[str]] = {}
        self._changed = asyncio.Event()

    async def ponder(self, turn: Turn) -> str:
        await self.release.wait()
        return "pondered"

    def listen(self, name: str) -> Any:
        def record(envelope: Envelope) -> None:
            if envelope.event_type == EV_TEXT and envelope.task_id is None:
                self.heard.setdefault(name, []).append(envelope.text)
                self._changed.set()

        return record

    async def until_heard(self, expected: dict[str, list[str]]) -> None:
        while {name: self.heard.get(name, []) for name in expected} != expected:
            self._changed.clear()
            await self._changed.wait()


def _explode(turn: Turn) -> str:
    raise RuntimeError("cannot do it")


@pytest.fixture
async def workers(hub_url: str) -> AsyncIterator[Workers]:
    async with HubClient(WsLink(hub_url)) as client:
        crew = Workers(client)
        shouter = await client.register(
            FunctionAgent(lambda turn: turn.prompt.upper(), name="shouter", capabilities=["shout"])
        )
        sloth = await client.register(FunctionAgent(crew.ponder, name="sloth", capabilities=["ponder"]))
        await client.register(FunctionAgent(_explode, name="boom", capabilities=["explode"]))
        shouter.on_envelope(crew.listen("shouter"))
        sloth.on_envelope(crew.listen("sloth"))
        counter = Worker("counter")

        @counter.on_task("count")
        def count(task: TaskInput) -> dict[str, int]:
            return {"words": len(str(task.input["text"]).split())}

        async with counter.connected(client):
            yield crew
            crew.release.set()


async def test_delegate_then_get_the_result(transport: str, hub_url: str, workers: Workers) -> None:
    async with mcp_client(transport, "--url", hub_url) as mcp:
        task = structured(await mcp.call_tool("delegate_task", {"capability": "shout", "input": "hello"}))
        done = structured(
            await mcp.call_tool("get_task_result", {"task_id": task["task_id"], "wait_seconds": WAIT})
        )
        counted = structured(
            await mcp.call_tool(
                "delegate_task", {"capability": "count", "input": {"text": "one two three"}, "ttl": 30}
            )
        )
        counted_done = structured(
            await mcp.call_tool("get_task_result", {"task_id": counted["task_id"], "wait_seconds": WAIT})
        )
        log = structured(await mcp.call_tool("read_channel", {"channel_id": done["channel_id"]}))

    assert task["state"] == "PENDING"
    assert task["done"] is False
    assert task["requester"] == "mcp"
    assert task["input"] == "hello"
    assert (done["state"], done["done"], done["result"], done["error"]) == ("COMPLETED", True, "HELLO", None)
    assert (done["worker"], done["requester"], done["attempts"]) == ("shouter", "mcp", 1)
    assert done["task_id"] == task["task_id"]
    assert counted["ttl"] == 30
    assert (counted_done["state"], counted_done["result"]) == ("COMPLETED", {"words": 3})
    assert counted_done["worker"] == "counter"
    # The exchange is in the task's consulting channel, which the MCP identity opened.
    assert log["channel"]["type"] == "consulting"
    assert log["channel"]["participants"] == ["mcp", "shouter"]
    texts = [(e["sender"], e["text"]) for e in log["envelopes"] if e["event_type"] == EV_TEXT]
    assert texts == [("mcp", "hello"), ("shouter", "HELLO")]
    assert {e["task_id"] for e in log["envelopes"] if e["event_type"] == EV_TEXT} == {task["task_id"]}


async def test_an_idempotency_key_makes_a_retry_return_the_first_task(
    transport: str, hub_url: str, workers: Workers
) -> None:
    args = {"capability": "shout", "input": "once", "idempotency_key": "job-7"}
    async with mcp_client(transport, "--url", hub_url) as mcp:
        first = structured(await mcp.call_tool("delegate_task", args))
        await mcp.call_tool("get_task_result", {"task_id": first["task_id"], "wait_seconds": WAIT})
        again = structured(await mcp.call_tool("delegate_task", args))
        listed = structured(await mcp.call_tool("list_tasks", {"worker": "shouter"}))
    assert again["task_id"] == first["task_id"]
    assert again["idempotency_key"] == "job-7"
    assert (again["state"], again["result"]) == ("COMPLETED", "ONCE")
    assert [t["task_id"] for t in listed["tasks"]] == [first["task_id"]]


async def test_a_wait_ends_at_wait_seconds_and_a_running_task_can_be_cancelled(
    transport: str, hub_url: str, workers: Workers
) -> None:
    async with mcp_client(transport, "--url", hub_url) as mcp:
        task = structured(await mcp.call_tool("delegate_task", {"capability": "ponder", "input": "deep"}))
        running = structured(
            await mcp.call_tool("get_task_result", {"task_id": task["task_id"], "wait_seconds": 0.2})
        )
        while running["state"] != "IN_PROGRESS":  # the worker acked, the question is on its way
            running = structured(
                await mcp.call_tool("get_task_result", {"task_id": task["task_id"], "wait_seconds": 0.2})
            )
        cancelled = structured(await mcp.call_tool("cancel_task", {"task_id": task["task_id"]}))
        twice = error_text(await mcp.call_tool("cancel_task", {"task_id": task["task_id"]}))
        log = structured(await mcp.call_tool("read_channel", {"channel_id": task["channel_id"]}))
    assert (running["done"], running["worker"], running["result"]) == (False, "sloth", None)
    assert (cancelled["state"], cancelled["done"], cancelled["error"]) == (
        "CANCELLED",
        True,
        "cancelled by mcp",
    )
    assert twice == f"task {task['task_id']} is already CANCELLED; a finished task cannot be cancelled"
    assert (log["channel"]["state"], log["channel"]["close_reason"]) == ("closed", "task_cancelled")


async def test_failures_and_refusals_are_tool_errors_or_failed_tasks(
    transport: str, hub_url: str, workers: Workers
) -> None:
    async with mcp_client(transport, "--url", hub_url) as mcp:
        failing = structured(await mcp.call_tool("delegate_task", {"capability": "explode", "input": "x"}))
        failed = structured(
            await mcp.call_tool("get_task_result", {"task_id": failing["task_id"], "wait_seconds": WAIT})
        )
        nobody = error_text(await mcp.call_tool("delegate_task", {"capability": "juggle", "input": "x"}))
        no_target = error_text(
            await mcp.call_tool("delegate_task", {"capability": "shout", "input": "x", "target": "ghost"})
        )
        unknown = error_text(await mcp.call_tool("get_task_result", {"task_id": "nope"}))
        too_long = error_text(
            await mcp.call_tool("get_task_result", {"task_id": "nope", "wait_seconds": 601})
        )
        bad_ttl = error_text(
            await mcp.call_tool("delegate_task", {"capability": "shout", "input": "x", "ttl": 0})
        )
        bad_state = error_text(await mcp.call_tool("list_tasks", {"state": "DONE"}))
        ghost = error_text(await mcp.call_tool("list_tasks", {"requester": "ghost"}))
    assert (failed["state"], failed["worker"]) == ("FAILED", "boom")
    assert failed["error"] == "boom's turn failed: RuntimeError('cannot do it')"
    assert nobody == (
        "no agent claims capability 'juggle'; a worker lists it in its Resume's claimed_capabilities "
        "(Worker.on_task does this for you)"
    )
    assert (
        no_target
        == "no agent named or with id 'ghost' is registered on this hub; list agents to see who is here"
    )
    assert unknown == "no delegated task 'nope' on this hub; list them with task_list"
    for refused, argument in ((too_long, "wait_seconds"), (bad_ttl, "ttl"), (bad_state, "state")):
        assert refused.startswith("Error executing tool "), refused
        assert argument in refused
    assert (
        ghost == "no agent named or with id 'ghost' is registered on this hub; list agents to see who is here"
    )


async def test_list_tasks_filters_by_state_requester_and_worker(
    transport: str, hub_url: str, workers: Workers
) -> None:
    async with mcp_client(transport, "--url", hub_url) as mcp:
        ids = []
        for capability, text in (("shout", "a"), ("count", "b c"), ("shout", "d")):
            task = structured(
                await mcp.call_tool(
                    "delegate_task",
                    {"capability": capability, "input": text if capability == "shout" else {"text": text}},
                )
            )
            await mcp.call_tool("get_task_result", {"task_id": task["task_id"], "wait_seconds": WAIT})
            ids.append(task["task_id"])
        everything = structured(await mcp.call_tool("list_tasks", {}))
        shouted = structured(await mcp.call_tool("list_tasks", {"worker": "shouter", "state": "COMPLETED"}))
        mine = structured(await mcp.call_tool("list_tasks", {"requester": "mcp", "limit": 2}))
        failed = structured(await mcp.call_tool("list_tasks", {"state": "FAILED"}))
    newest_first = list(reversed(ids))
    assert [t["task_id"] for t in everything["tasks"]] == newest_first
    assert everything["count"] == 3
    assert [t["task_id"] for t in shouted["tasks"]] == [ids[2], ids[0]]
    assert [t["result"] for t in shouted["tasks"]] == ["D", "A"]
    assert [t["task_id"] for t in mine["tasks"]] == newest_first[:2]
    assert failed == {"tasks": [], "count": 0}


async def test_broadcast_reaches_every_agent_or_those_with_a_capability(
    transport: str, hub_url: str, workers: Workers
) -> None:
    async with mcp_client(transport, "--url", hub_url) as mcp:
        everyone = structured(await mcp.call_tool("broadcast_message", {"text": "hub going down at noon"}))
        shouters = structured(
            await mcp.call_tool("broadcast_message", {"text": "LOUDER", "capability": "shout"})
        )
        nobody = structured(await mcp.call_tool("broadcast_message", {"text": "hi", "capability": "juggle"}))
        empty = error_text(await mcp.call_tool("broadcast_message", {"text": ""}))
    assert everyone == {"recipients": 4, "capability": None}  # shouter, sloth, boom, counter
    assert shouters == {"recipients": 1, "capability": "shout"}
    assert nobody == {"recipients": 0, "capability": "juggle"}
    assert "text" in empty
    expected = {"shouter": ["hub going down at noon", "LOUDER"], "sloth": ["hub going down at noon"]}
    async with asyncio.timeout(WAIT):
        await workers.until_heard(expected)
