"""The whole path as a user runs it: ``hubbub serve`` in one process, ``hubbub mcp --http`` in
another, worker agents in a third (this one), and the MCP SDK's ``Client`` driving the tools:
see the hub, find agents by capability, delegate and get results, broadcast."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hubbub import FunctionAgent, HubClient, WsLink
from tests.bridges.mcp._servers import ENV, mcp_client, structured
from tests.conftest import TIME_UNIT


@pytest.fixture
def hub_url(tmp_path: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubbub.cli", "serve", "--port", "0", "--db", str(tmp_path / "hub.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("hubbub serving on ws://127.0.0.1:"), first
        yield first.split()[3]
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


@pytest.fixture
async def workers(hub_url: str) -> AsyncIterator[HubClient]:
    async with HubClient(WsLink(hub_url)) as client:
        await client.register(
            FunctionAgent(lambda turn: turn.prompt.upper(), name="shouter", capabilities=["shout"])
        )
        await client.register(FunctionAgent(lambda turn: "ok", name="echo", capabilities=["echo"]))
        yield client


async def test_an_mcp_client_works_a_hub_served_by_hubbub_serve(hub_url: str, workers: HubClient) -> None:
    async with mcp_client("http", "--url", hub_url) as mcp:
        status = structured(await mcp.call_tool("hub_status", {}))
        listed = structured(await mcp.call_tool("list_agents", {}))
        found = structured(await mcp.call_tool("discover_agents", {"capability": "shout"}))
        [shouter] = found["agents"]
        task = structured(
            await mcp.call_tool(
                "delegate_task", {"capability": "shout", "input": "hello from mcp", "target": shouter["name"]}
            )
        )
        result = structured(
            await mcp.call_tool(
                "get_task_result", {"task_id": task["task_id"], "wait_seconds": 10 * TIME_UNIT}
            )
        )
        sent = structured(await mcp.call_tool("broadcast_message", {"text": "thanks, all"}))
        tasks = structured(await mcp.call_tool("list_tasks", {"state": "COMPLETED"}))
    assert status["agents"] == 3
    assert status["acting_as"] == "mcp"
    assert sorted(a["name"] for a in listed["agents"]) == ["echo", "mcp", "shouter"]
    assert shouter["name"] == "shouter"
    assert (result["state"], result["result"], result["worker"]) == ("COMPLETED", "HELLO FROM MCP", "shouter")
    assert sent == {"recipients": 2, "capability": None}
    assert [t["task_id"] for t in tasks["tasks"]] == [task["task_id"]]
