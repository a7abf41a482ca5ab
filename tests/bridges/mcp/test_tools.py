"""The MCP tools over both transports (stdio, streamable HTTP) against a live hub on a WebSocket.

Each test launches ``hubbub mcp --url <hub>`` as a subprocess and drives it
with the MCP SDK's own ``Client``; the worker agents run in this process,
connected to the same hub over WebSocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hubbub import EV_TEXT, FunctionAgent, Hub, HubClient, WsLink, serve_ws

from ._servers import error_text, mcp_client, structured

TOOLS = {
    "hub_status",
    "list_agents",
    "discover_agents",
    "read_channel",
    "delegate_task",
    "get_task_result",
    "list_tasks",
    "cancel_task",
    "broadcast_message",
}


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def hub_url(hub: Hub) -> AsyncIterator[str]:
    async with serve_ws(hub) as server:
        yield server.url


@pytest.fixture
async def workers(hub_url: str) -> AsyncIterator[HubClient]:
    """Three agents: two claim "summarize" (one with a track record), one "translate"."""
    async with HubClient(WsLink(hub_url)) as client:
        await client.register(FunctionAgent(lambda t: "short", name="brief", capabilities=["summarize"]))
        seasoned = await client.register(
            FunctionAgent(lambda t: "long", name="seasoned", capabilities=["summarize", "summarize-legal"])
        )
        await client.register(FunctionAgent(lambda t: "hola", name="polyglot", capabilities=["translate"]))
        async with seasoned.tasks.track("summarize"):
            pass
        yield client


async def test_tools_are_listed_with_input_and_output_schemas(transport: str, hub_url: str) -> None:
    async with mcp_client(transport, "--url", hub_url) as mcp:
        tools = {t.name: t for t in (await mcp.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        assert tool.description
    assert tools["discover_agents"].input_schema["required"] == ["capability"]
    assert set(tools["read_channel"].input_schema["properties"]) == {"channel_id", "since", "limit"}
    assert "agents" in tools["list_agents"].output_schema["properties"]
    assert tools["hub_status"].annotations is not None
    assert tools["hub_status"].annotations.read_only_hint is True
    assert tools["delegate_task"].input_schema["required"] == ["capability", "input"]
    assert tools["get_task_result"].input_schema["properties"]["wait_seconds"]["maximum"] == 600
    assert tools["cancel_task"].annotations is not None
    assert tools["cancel_task"].annotations.destructive_hint is True


async def test_status_listing_and_discovery(transport: str, hub_url: str, workers: HubClient) -> None:
    async with mcp_client(transport, "--url", hub_url) as mcp:
        status = structured(await mcp.call_tool("hub_status", {}))
        listed = structured(await mcp.call_tool("list_agents", {}))
        summarizers = structured(await mcp.call_tool("list_agents", {"capability": "summar", "limit": 10}))
        found = structured(await mcp.call_tool("discover_agents", {"capability": "summarize"}))
        legal = structured(await mcp.call_tool("discover_agents", {"capability": "legal"}))
        nobody = structured(await mcp.call_tool("discover_agents", {"capability": "juggle"}))

    assert status["agents"] == 4  # three workers and the MCP server's own identity
    assert status["acting_as"] == "mcp"
    assert status["hub_url"] == hub_url
    assert status["channels"] == 0
    assert status["adapters"] == ["broadcast", "consulting", "conversation", "discussion", "workflow"]

    agents = {a["name"]: a for a in listed["agents"]}
    assert set(agents) == {"brief", "seasoned", "polyglot", "mcp"}
    assert listed["count"] == 4
    assert agents["polyglot"]["capabilities"] == ["translate"]
    assert agents["mcp"]["summary"].startswith("MCP bridge")
    assert agents["seasoned"]["observed"]["summarize"]["tasks"] == 1
    assert agents["seasoned"]["observed"]["summarize"]["success_rate"] == 1.0
    assert agents["brief"]["observed"] == {}
    assert agents["brief"]["agent_id"] == (await workers.get_agent("brief")).agent_id

    assert sorted(a["name"] for a in summarizers["agents"]) == ["brief", "seasoned"]
    # Both claim it exactly; the one with a successful track record ranks first.
    assert [a["name"] for a in found["agents"]] == ["seasoned", "brief"]
    assert [a["name"] for a in legal["agents"]] == ["seasoned"]
    assert nobody == {"agents": [], "count": 0}


async def test_read_channel_pages_through_a_channel_the_server_takes_part_in(
    transport: str, hub_url: str, workers: HubClient
) -> None:
    chatty = await workers.register(name="chatty", handle_turns=False)
    async with mcp_client(transport, "--url", hub_url) as mcp:
        channel = await chatty.open("conversation", "mcp")  # the MCP identity acks the invite itself
        for text in ("one", "two", "three"):
            await channel.send(text)
        everything = structured(await mcp.call_tool("read_channel", {"channel_id": channel.id}))
        texts = [e for e in everything["envelopes"] if e["event_type"] == EV_TEXT]
        first = structured(await mcp.call_tool("read_channel", {"channel_id": channel.id, "limit": 2}))
        rest = structured(
            await mcp.call_tool(
                "read_channel", {"channel_id": channel.id, "since": first["next_since"], "limit": 50}
            )
        )
        after_all = structured(
            await mcp.call_tool("read_channel", {"channel_id": channel.id, "since": rest["next_since"]})
        )

    info = everything["channel"]
    assert info["type"] == "conversation"
    assert info["state"] == "active"
    assert info["creator"] == "chatty"
    assert info["participants"] == ["chatty", "mcp"]
    assert [(e["sender"], e["text"]) for e in texts] == [("chatty", t) for t in ("one", "two", "three")]
    assert everything["more"] is False
    all_ids = [e["envelope_id"] for e in everything["envelopes"]]
    assert first["more"] is True
    assert [e["envelope_id"] for e in first["envelopes"]] == all_ids[:2]
    assert first["next_since"] == all_ids[1]
    assert [e["envelope_id"] for e in rest["envelopes"]] == all_ids[2:]
    assert rest["more"] is False
    assert after_all["envelopes"] == []
    assert after_all["next_since"] == all_ids[-1]


async def test_hub_errors_come_back_as_tool_errors_with_the_hubs_message(
    transport: str, hub_url: str, workers: HubClient
) -> None:
    brief = await workers.get_agent("brief")
    chatty = await workers.register(name="chatty", handle_turns=False)
    private = await chatty.open("conversation", brief.name)
    async with mcp_client(transport, "--url", hub_url) as mcp:
        unknown = error_text(await mcp.call_tool("read_channel", {"channel_id": "nope"}))
        not_mine = error_text(await mcp.call_tool("read_channel", {"channel_id": private.id}))
        empty = error_text(await mcp.call_tool("discover_agents", {"capability": "  "}))
        bad_limit = error_text(await mcp.call_tool("list_agents", {"limit": 0}))
        still_fine = structured(await mcp.call_tool("hub_status", {}))
    assert unknown == "no channel 'nope' on this hub; open one with AgentClient.open()"
    assert not_mine == f"none of this connection's agents takes part in channel {private.id}"
    assert empty == "discover needs a capability keyword, got an empty string"
    assert "limit" in bad_limit
    assert "greater than or equal to 1" in bad_limit
    assert still_fine["channels"] == 1
