"""The whole path as a user runs it: ``hubbub serve`` in one process, ``hubbub mcp --http`` in
another, worker agents in a third (this one), and the MCP SDK's ``Client`` driving the tools."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hubbub import FunctionAgent, HubClient, WsLink
from tests.bridges.mcp._servers import ENV, mcp_client, structured


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


async def test_an_mcp_client_sees_the_hub_served_by_hubbub_serve(hub_url: str, workers: HubClient) -> None:
    async with mcp_client("http", "--url", hub_url) as mcp:
        status = structured(await mcp.call_tool("hub_status", {}))
        found = structured(await mcp.call_tool("discover_agents", {"capability": "shout"}))
        listed = structured(await mcp.call_tool("list_agents", {}))
    assert status["agents"] == 3
    assert status["acting_as"] == "mcp"
    assert [a["name"] for a in found["agents"]] == ["shouter"]
    assert sorted(a["name"] for a in listed["agents"]) == ["echo", "mcp", "shouter"]
