"""The Node.js example (examples/node/agent.js) against a live hub: a client in another language.

It speaks only what docs/protocol.md describes. ``scripts/test`` installs Node.js and the
example's ``ws`` dependency, so this test runs everywhere the suite runs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hubbub import EV_CHANNEL_CLOSED, EV_TEXT, ChannelState, Hub, HubClient, WsLink, serve_ws
from hubbub.transport.ws_server import WsServer
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node"
QUESTION = "What is 6 times 7?"


@pytest.fixture
async def server(hub: Hub) -> AsyncIterator[WsServer]:
    async with serve_ws(hub, port=0) as s:
        yield s


async def _finish(proc: asyncio.subprocess.Process, timeout: float) -> tuple[int, str]:
    """Wait for node to exit (kill it after ``timeout`` s); its exit code and everything it printed."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def test_node_agent_answers_a_consulting_question_and_exits(hub: Hub, server: WsServer) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is not installed: run scripts/test, which installs it"
    assert (NODE_DIR / "node_modules" / "ws").is_dir(), "run `npm ci` in examples/node (scripts/test does)"
    proc = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "agent.js"),
        server.url,
        "node-agent",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_AGENT_TIMEOUT_MS": str(int(40_000 * TIME_UNIT))},
    )
    try:
        await wait_until(
            lambda: hub.registry.id_for_name("node-agent") is not None or proc.returncode is not None,
            20 * TIME_UNIT,
            what="node-agent to register",
        )
        assert proc.returncode is None, await _finish(proc, 0)
        node_id = hub.registry.id_for_name("node-agent")
        assert node_id is not None
        assert hub.get_resume(node_id).claimed_capabilities == ["echo"]

        async with HubClient(WsLink(server.url)) as client:
            asker = await client.register(name="asker", handle_turns=False)
            channel = await asker.open("consulting", "node-agent")
            question_id = await channel.send(QUESTION)
            final = await channel.wait_closed(timeout=20 * TIME_UNIT)
            wal = await channel.read()

        assert final.state is ChannelState.CLOSED
        assert final.close_reason == "consulting_complete"
        texts = [(e.sender_id, e.text, e.causation_id) for e in wal if e.event_type == EV_TEXT]
        assert texts == [
            (asker.agent_id, QUESTION, None),
            (node_id, f"echo: {QUESTION}", question_id),
        ]
        code, output = await _finish(proc, 20 * TIME_UNIT)
        assert code == 0, output
        assert f'[node-agent] replied "echo: {QUESTION}"' in output.splitlines(), output
        assert f"[node-agent] channel {channel.id} closed (consulting_complete)" in output.splitlines()

        # It acked every delivery: its cursor stands at the close, the channel's last envelope.
        assert wal[-1].event_type == EV_CHANNEL_CLOSED
        closed_id = wal[-1].envelope_id
        await wait_until(
            lambda: hub.delivery.cursor(node_id, channel.id) == closed_id, what="node-agent's last ack"
        )
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
