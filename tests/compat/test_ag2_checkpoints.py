"""ag2 1.2.1's own ``HubBackedCheckpointStore`` over ``ag2.network.HubClient(WsLink(url))`` against a
hubbub hub on a SqliteStore: it writes and reads checkpoints (``checkpoint_task`` /
``read_task_checkpoint``), they survive a hub restart, another agent cannot read them, and a hubbub
client acting as the same agent reads the same checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ag2.network as ag2net
import pytest
from ag2 import Agent
from ag2.testing import TestConfig

from hubbub import Hub, HubBackedCheckpointStore, HubClient, SqliteStore, WsLink, serve_ws
from tests.conftest import TIME_UNIT

WAIT = 5 * TIME_UNIT


def agent(name: str) -> Agent[Any]:
    return Agent(name, config=TestConfig("unused"))


async def test_ag2_checkpoints_round_trip_and_survive_a_hub_restart(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Hub(SqliteStore(db)) as hub, serve_ws(hub) as server:
        client = ag2net.HubClient(ag2net.WsLink(server.url), rpc_timeout=WAIT)
        try:
            alice = await client.register(agent("alice"), attach_plugin=False)
            store = ag2net.HubBackedCheckpointStore(client)
            assert await store.read("task-1") is None
            await store.write("task-1", {"step": 1})
            await store.write("task-1", {"step": 2, "notes": ["x"]})
            assert await store.read("task-1") == {"step": 2, "notes": ["x"]}
        finally:
            await client.close()

        other = ag2net.HubClient(ag2net.WsLink(server.url), rpc_timeout=WAIT)
        try:
            await other.register(agent("mallory"), attach_plugin=False)
            with pytest.raises(ag2net.AccessDeniedError):
                await ag2net.HubBackedCheckpointStore(other).read("task-1")
            with pytest.raises(ag2net.AccessDeniedError):
                await ag2net.HubBackedCheckpointStore(other).write("task-1", {"step": 99})
        finally:
            await other.close()

    async with Hub(SqliteStore(db)) as again, serve_ws(again) as server:
        client = ag2net.HubClient(ag2net.WsLink(server.url), rpc_timeout=WAIT)
        try:
            await client.attach(agent("alice"), "alice", attach_plugin=False)
            assert await ag2net.HubBackedCheckpointStore(client).read("task-1") == {"step": 2, "notes": ["x"]}
        finally:
            await client.close()
        async with HubClient(WsLink(server.url)) as ours:
            await ours.attach(None, "alice")
            checkpoint = await HubBackedCheckpointStore(ours).get("task-1")
            assert checkpoint is not None
            assert (checkpoint.state, checkpoint.version, checkpoint.owner_id) == (
                {"step": 2, "notes": ["x"]},
                2,
                alice.agent_id,
            )


async def test_ag2_bad_checkpoint_input_gets_clear_errors(hub: Hub) -> None:
    hub.checkpoints.max_bytes = 100
    async with serve_ws(hub) as server:
        client = ag2net.HubClient(ag2net.WsLink(server.url), rpc_timeout=WAIT)
        try:
            await client.register(agent("alice"), attach_plugin=False)
            store = ag2net.HubBackedCheckpointStore(client)
            with pytest.raises(ag2net.ProtocolError, match="over this hub's limit of 100 bytes"):
                await store.write("big", {"text": "x" * 200})
            with pytest.raises(ag2net.ProtocolError, match="task_id must be"):
                await store.write("../etc", {})
        finally:
            await client.close()
