"""Checkpoints: MemoryCheckpointStore and HubBackedCheckpointStore behave alike; through the hub they
survive a restart of the hub (SqliteStore) and of the client; owners, sizes and ids are checked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hubbub import (
    AccessDeniedError,
    CheckpointStore,
    Hub,
    HubBackedCheckpointStore,
    HubClient,
    LocalLink,
    MemoryCheckpointStore,
    NotFoundError,
    ProtocolError,
    SqliteStore,
    TaskInput,
    UsageError,
    Worker,
    WsLink,
    serve_ws,
)
from tests.conftest import TIME_UNIT
from tests.hub._delegation import another_client, silent, state_is

WAIT = 5 * TIME_UNIT


@pytest.fixture(params=["memory", "hub"])
async def store(request: pytest.FixtureRequest, client: HubClient) -> CheckpointStore:
    if request.param == "memory":
        return MemoryCheckpointStore()
    alice = await client.register(name="alice")
    return HubBackedCheckpointStore(client, agent_id=alice.agent_id)


async def test_round_trip_keeps_only_the_latest(store: CheckpointStore) -> None:
    assert await store.load("job-1") is None
    first = await store.save("job-1", {"step": 1, "seen": ["a"]})
    assert (first.task_id, first.version, first.kind) == ("job-1", 1, "json")
    second = await store.save("job-1", {"step": 2, "seen": ["a", "b"]})
    assert second.version == 2
    assert second.size == len(b'{"step":2,"seen":["a","b"]}')
    assert await store.load("job-1") == {"step": 2, "seen": ["a", "b"]}
    raw = await store.save("job-2", b"\x00\xffbinary")
    assert (raw.kind, raw.size) == ("bytes", 8)
    assert await store.load("job-2") == b"\x00\xffbinary"
    assert [(i.task_id, i.version) for i in await store.list()] == [("job-1", 2), ("job-2", 1)]
    assert await store.delete("job-1") is True
    assert await store.delete("job-1") is False
    assert await store.load("job-1") is None
    assert [i.task_id for i in await store.list()] == ["job-2"]


async def test_bad_task_ids_are_refused(store: CheckpointStore) -> None:
    for bad in ["", "-x", "a/b", "x" * 129, "sp ace"]:
        with pytest.raises(ProtocolError, match="task_id must be") as caught:
            await store.save(bad, {})
        assert caught.value.reason == "bad_task_id"


async def test_an_oversize_checkpoint_is_refused_and_the_last_one_kept(client: HubClient, hub: Hub) -> None:
    alice = await client.register(name="alice")
    store = HubBackedCheckpointStore(client, agent_id=alice.agent_id)
    hub.checkpoints.max_bytes = 1000
    await store.save("big", {"ok": True})
    with pytest.raises(ProtocolError, match=r"is 1001 bytes, over this hub's limit of 1000 bytes") as caught:
        await store.save("big", b"x" * 1001)
    assert caught.value.reason == "checkpoint_too_large"
    assert await store.load("big") == {"ok": True}


async def test_only_the_owner_may_read_or_change_a_checkpoint(client: HubClient) -> None:
    alice = await client.register(name="alice")
    mallory = await client.register(name="mallory")
    mine = HubBackedCheckpointStore(client, agent_id=alice.agent_id)
    theirs = HubBackedCheckpointStore(client, agent_id=mallory.agent_id)
    info = await mine.save("job", {"secret": 1})
    assert info.owner_id == alice.agent_id
    for attempt in (theirs.load("job"), theirs.save("job", {"secret": 2}), theirs.delete("job")):
        with pytest.raises(AccessDeniedError, match=f"belongs to agent {alice.agent_id}") as caught:
            await attempt
        assert caught.value.reason == "not_owner"
    assert await theirs.list() == []
    assert await mine.load("job") == {"secret": 1}


async def test_acting_as_an_agent_not_bound_here_is_refused(hub: Hub) -> None:
    async with serve_ws(hub) as server, HubClient(WsLink(server.url)) as one:
        two = await HubClient(WsLink(server.url)).connect()
        alice = await one.register(name="alice")
        with pytest.raises(AccessDeniedError, match="does not act as agent"):
            await HubBackedCheckpointStore(two, agent_id=alice.agent_id).save("job", {})
        with pytest.raises(AccessDeniedError, match="register or attach one first") as caught:
            await HubBackedCheckpointStore(two).save("job", {})
        assert caught.value.reason == "not_bound"
        await two.aclose()


async def test_deleting_a_task_without_checkpoint_is_not_found(client: HubClient) -> None:
    alice = await client.register(name="alice")
    with pytest.raises(NotFoundError, match="task nothing-here has no checkpoint") as caught:
        await client.request("checkpoint_delete", {"agent_id": alice.agent_id, "task_id": "nothing-here"})
    assert caught.value.reason == "no_checkpoint"


async def test_malformed_params_are_protocol_errors(client: HubClient) -> None:
    alice = await client.register(name="alice")
    cases: list[tuple[dict[str, object], str]] = [
        ({"task_id": "t"}, "exactly one of 'state'"),
        ({"task_id": "t", "state": {}, "blob": "AA=="}, "exactly one of 'state'"),
        ({"task_id": "t", "state": [1]}, "'state' must be a JSON object"),
        ({"task_id": "t", "blob": "not base64!"}, "'blob' is not valid base64"),
        ({"task_id": 5, "state": {}}, "task_id must be 1 to 128"),
    ]
    for params, message in cases:
        with pytest.raises(ProtocolError, match=message):
            await client.request("checkpoint_put", {"agent_id": alice.agent_id, **params})


async def test_a_delegated_tasks_checkpoint_is_its_requesters_and_workers(
    client: HubClient, hub: Hub
) -> None:
    worker = await silent(client, "worker", "crunch")
    alice = await client.register(name="alice")
    bob = await client.register(name="bob")
    task = await alice.delegate("crunch", {"n": 1}, ttl=60)
    await state_is(hub, task.task_id, "IN_PROGRESS")
    by_worker = HubBackedCheckpointStore(client, agent_id=worker.agent_id)
    by_requester = HubBackedCheckpointStore(client, agent_id=alice.agent_id)
    await by_worker.save(task.task_id, {"done": 10})
    assert await by_requester.load(task.task_id) == {"done": 10}
    await by_requester.save(task.task_id, {"done": 11})
    assert await by_worker.load(task.task_id) == {"done": 11}
    with pytest.raises(AccessDeniedError, match="only the requester or the worker") as caught:
        await HubBackedCheckpointStore(client, agent_id=bob.agent_id).load(task.task_id)
    assert caught.value.reason == "not_task_party"


async def test_a_hub_given_directly_acts_as_itself(hub: Hub, client: HubClient) -> None:
    alice = await client.register(name="alice")
    await HubBackedCheckpointStore(client, agent_id=alice.agent_id).save("job", {"a": 1})
    trusted = HubBackedCheckpointStore(hub)
    assert await trusted.load("job") == {"a": 1}
    assert [i.owner_id for i in await trusted.list()] == [alice.agent_id]
    with pytest.raises(AccessDeniedError):
        await HubBackedCheckpointStore(hub, agent_id="someone-else").load("job")


async def test_checkpoints_survive_a_hub_restart_and_a_new_connection(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Hub(SqliteStore(db)) as hub, serve_ws(hub) as server, HubClient(WsLink(server.url)) as c:
        alice = await c.register(name="alice")
        store = HubBackedCheckpointStore(c, agent_id=alice.agent_id)
        await store.save("long-job", {"step": 41})
        await store.save("long-job", {"step": 42})
        await store.save("blob-job", b"\x01\x02")

    async with Hub(SqliteStore(db)) as again, serve_ws(again) as server:
        async with HubClient(WsLink(server.url)) as later:
            alice_again = await later.attach(None, "alice")
            store = HubBackedCheckpointStore(later, agent_id=alice_again.agent_id)
            checkpoint = await store.get("long-job")
            assert checkpoint is not None
            assert checkpoint.state == {"step": 42}
            assert (checkpoint.version, checkpoint.owner_id) == (2, alice.agent_id)
            assert await store.load("blob-job") == b"\x01\x02"
        async with HubClient(LocalLink(again)) as local:
            await local.register(name="eve")
            with pytest.raises(AccessDeniedError, match="belongs to agent"):
                await HubBackedCheckpointStore(local).load("long-job")


async def test_a_worker_taking_a_task_over_resumes_from_its_checkpoint(hub: Hub, client: HubClient) -> None:
    hub.delegations.reassign_grace = 0.05  # the first worker is not coming back
    saved = asyncio.Event()
    first, second = Worker("a-first"), Worker("b-second")

    @first.on_task("crunch")
    async def start_then_vanish(task: TaskInput) -> None:
        await first.checkpoints.save(task.task_id, {"done": 3})
        saved.set()
        await asyncio.Event().wait()  # cancelled when its connection goes

    @second.on_task("crunch")
    async def resume(task: TaskInput) -> dict[str, object]:
        state = await second.checkpoints.load(task.task_id)
        assert isinstance(state, dict)
        return {"resumed_from": state["done"], "by": "b-second"}

    leaving = another_client(client, hub)
    await first.start(leaving)
    await second.start(client)
    alice = await client.register(name="alice")
    task = await alice.delegate("crunch", {"n": 10})
    await asyncio.wait_for(saved.wait(), WAIT)
    assert first.agent is not None
    assert hub.get_task(task.task_id).worker_id == first.agent.agent_id
    await leaving.aclose()
    done = await client.wait_task(task.task_id, WAIT)
    assert (done.state, done.result, done.attempts) == ("COMPLETED", {"resumed_from": 3, "by": "b-second"}, 2)
    # The requester sees it too; the worker that left no longer may.
    assert await alice.checkpoints.load(task.task_id) == {"done": 3}
    with pytest.raises(AccessDeniedError, match="only the requester or the worker"):
        await HubBackedCheckpointStore(hub, agent_id=first.agent.agent_id).load(task.task_id)
    await second.stop()
    with pytest.raises(UsageError, match="b-second is not running"):
        second.checkpoints  # noqa: B018
