"""Running ``hubbub mcp``: a hub that is down or stuck, the identity it acts as (second runs, API
keys), refusals at the command line, and the SDK missing."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
import websockets

from hubbub import EV_TEXT, ApiKeyAuth, AuthRegistry, Hub, HubClient, WsLink, serve_ws
from tests.conftest import TIME_UNIT

from ._servers import ENV, MCP, error_text, mcp_client, start_http, stop, structured

KEY = "mcp-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_hub_that_is_down_gives_tool_errors_and_is_found_once_it_is_up() -> None:
    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    async with mcp_client("stdio", "--url", url) as mcp:
        down = error_text(await mcp.call_tool("hub_status", {}))
        assert down.startswith(f"could not connect to the hub at {url}: ")
        assert down.endswith("start a hub with `hubbub serve`, or point `hubbub mcp --url` at yours")
        async with Hub() as hub, serve_ws(hub, port=port):
            status = structured(await mcp.call_tool("hub_status", {}))
            assert status["hub_id"] == hub.hub_id
            # The identity is taken by the first tool that acts as it.
            missing = error_text(await mcp.call_tool("read_channel", {"channel_id": "nope"}))
            assert missing == "no channel 'nope' on this hub; open one with AgentClient.open()"
            assert hub.get_agent("mcp").name == "mcp"


async def test_a_hub_that_never_answers_times_out_instead_of_hanging() -> None:
    async def mute(ws: websockets.ServerConnection) -> None:
        await ws.wait_closed()

    async with websockets.serve(mute, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}"
        async with mcp_client("stdio", "--url", url, "--timeout", str(TIME_UNIT)) as mcp:
            message = error_text(await mcp.call_tool("list_agents", {}))
    assert message == (
        f"no answer from the hub at {url} within {TIME_UNIT:g}s; "
        "is it running (`hubbub serve`) and reachable?"
    )


@pytest.fixture
async def hub_url(hub: Hub) -> AsyncIterator[str]:
    async with serve_ws(hub) as server:
        yield server.url


async def test_two_servers_can_act_under_one_name(hub: Hub, hub_url: str) -> None:
    async with (
        mcp_client("stdio", "--url", hub_url, "--name", "ops") as first,
        mcp_client("http", "--url", hub_url, "--name", "ops") as second,
        HubClient(WsLink(hub_url)) as client,
    ):
        chatty = await client.register(name="chatty", handle_turns=False)
        channel = await chatty.open("conversation", "ops")
        await channel.send("for ops")
        for mcp in (first, second):
            status = structured(await mcp.call_tool("hub_status", {}))
            assert status["acting_as"] == "ops"
            read = structured(await mcp.call_tool("read_channel", {"channel_id": channel.id}))
            assert [e["text"] for e in read["envelopes"] if e["event_type"] == EV_TEXT] == ["for ops"]
        listed = structured(await first.call_tool("list_agents", {}))
    assert sorted(a["name"] for a in listed["agents"]) == ["chatty", "ops"]


@pytest.fixture
async def keyed_hub_url() -> AsyncIterator[str]:
    auth = AuthRegistry([ApiKeyAuth({"mcp": KEY, "chatty": "chatty-0123456789abcdef"})])
    async with Hub(auth=auth, invite_ack_timeout=5 * TIME_UNIT) as hub, serve_ws(hub) as server:
        yield server.url


async def test_on_a_hub_with_api_keys_the_server_acts_with_its_key(keyed_hub_url: str) -> None:
    async with mcp_client("stdio", "--url", keyed_hub_url, "--name", "mcp") as keyless:
        refused = error_text(await keyless.call_tool("read_channel", {"channel_id": "any"}))
    assert refused == "auth scheme 'none' is not accepted by this hub; it accepts ['api_key']"
    async with mcp_client("http", "--url", keyed_hub_url, "--key", "wrong-0123456789abcdef") as wrong:
        assert error_text(await wrong.call_tool("read_channel", {"channel_id": "any"})) == (
            "wrong API key for mcp"
        )
    for run in range(2):  # the first run registers, the second attaches with the same key
        async with mcp_client("stdio", "--url", keyed_hub_url, "--key", KEY) as keyed:
            missing = error_text(await keyed.call_tool("read_channel", {"channel_id": "nope"}))
            assert missing == "no channel 'nope' on this hub; open one with AgentClient.open()", run


def test_http_refuses_a_public_address_unless_told() -> None:
    result = subprocess.run(
        [*MCP, "--http", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("hubbub mcp: refusing to serve MCP over HTTP on 0.0.0.0")
    assert "--allow-remote" in result.stderr


def test_a_port_out_of_range_is_a_clear_error() -> None:
    result = subprocess.run(
        [*MCP, "--http", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "hubbub mcp: --port must be 0 (any free port) to 65535, got 70000\n"


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*MCP, "--http", "--port", str(port), "--url", "ws://127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **ENV},
            check=False,
        )
    assert result.returncode == 2
    assert f"hubbub mcp: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


def _post(url: str, headers: dict[str, str]) -> int:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_http_refuses_foreign_hosts_and_origins_and_stops_cleanly_on_sigterm(hub_url: str) -> None:
    proc, url = await asyncio.to_thread(start_http, "--url", hub_url)
    assert url.endswith("/mcp")
    json_post = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    # DNS rebinding: a page elsewhere that resolves its name to 127.0.0.1 must not reach the tools.
    assert await asyncio.to_thread(_post, url, {**json_post, "Host": "evil.example"}) == 421
    assert await asyncio.to_thread(_post, url, {**json_post, "Origin": "http://evil.example"}) == 403
    status, err = await asyncio.to_thread(stop, proc)
    assert status == 0, err


def test_without_the_sdk_the_command_says_what_to_install() -> None:
    code = "import sys; sys.modules['mcp'] = None; from hubbub.cli import main; sys.exit(main(['mcp']))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "hubbub mcp needs the MCP SDK (mcp is missing): pip install 'hubbub[mcp]'\n"
