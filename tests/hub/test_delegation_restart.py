"""Delegated tasks are durable: a hub restarted on the same SqliteStore keeps every record,
resumes the TTLs, and unfinished tasks carry on where they stopped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from hubbub import (
    EV_CHANNEL_CLOSED,
    Envelope,
    Hub,
    HubClient,
    LocalLink,
    SqliteStore,
    TaskInput,
    Worker,
    WsLink,
    serve_ws,
)
from hubbub.hub._attempts import TRIED_PREFIX
from hubbub.hub._task_records import DTASK_PREFIX
from hubbub.model._time import from_iso
from tests.conftest import TIME_UNIT
from tests.hub._delegation import answering, question_of, silent, state_is
from tests.hub._waiting import wait_until

WAIT = 5 * TIME_UNIT


async def test_records_survive_and_the_ttl_resumes(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    hub = await Hub(SqliteStore(db)).start()
    client = HubClient(LocalLink(hub))
    await answering(client, "ada")
    await silent(client, "slow", "slowcap")
    alice = await client.register(name="alice")
    finished = await alice.delegate("summarize", {"text": "kept"}, idempotency_key="k1")
    assert (await client.wait_task(finished.task_id, WAIT)).state == "COMPLETED"
    open_task = await alice.delegate("slowcap", "y", ttl=1.0 * TIME_UNIT)
    await state_is(hub, open_task.task_id, "IN_PROGRESS")
    before = {t.task_id: t for t in hub.list_tasks()}
    await hub.aclose()  # the hub stops first: its connections closing must not move any task
    await client.aclose()

    async with Hub(SqliteStore(db)) as again:
        assert {t.task_id: t for t in again.list_tasks()} == before
        alice_id = again.get_agent("alice").agent_id or ""
        # Still the same task for the same idempotency key.
        assert (await again.delegate(alice_id, "summarize", "other", idempotency_key="k1")) == before[
            finished.task_id
        ]
        done = await again.wait_task(open_task.task_id, WAIT)
        assert done.state == "TIMEOUT"
        wal = await again.read_wal(done.channel_id or "")
        assert wal[-1].event_type == EV_CHANNEL_CLOSED
        assert wal[-1].event_data["reason"] == "task_timeout"
        timed_out = again.get_task(open_task.task_id)

    async with Hub(SqliteStore(db)) as third:
        assert third.get_task(open_task.task_id) == timed_out
        assert third.get_task(finished.task_id) == before[finished.task_id]


async def test_a_task_past_its_deadline_while_the_hub_was_down_times_out_at_start(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    hub = await Hub(SqliteStore(db)).start()
    client = HubClient(LocalLink(hub))
    await silent(client, "slow")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "y", ttl=0.2 * TIME_UNIT)
    await state_is(hub, task.task_id, "IN_PROGRESS")
    hub._deadlines.cancel(("dtask", task.task_id))  # as if the hub died before the deadline fired
    await hub.aclose()
    await client.aclose()
    deadline = from_iso(task.deadline_at)
    await wait_until(lambda: time.time() > deadline, what="the deadline passing while nothing runs")

    async with Hub(SqliteStore(db)) as again:
        await wait_until(lambda: again.get_task(task.task_id).state == "TIMEOUT", what="TIMEOUT at start")
        assert again.get_channel(task.channel_id or "").close_reason == "task_timeout"


async def test_a_worker_answers_after_it_reattaches_to_the_restarted_hub(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    hub = await Hub(SqliteStore(db)).start()
    client = HubClient(LocalLink(hub))
    await silent(client, "slow")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "y", ttl=30 * TIME_UNIT)
    await state_is(hub, task.task_id, "IN_PROGRESS")
    await hub.aclose()
    await client.aclose()

    async with Hub(SqliteStore(db)) as again, HubClient(LocalLink(again)) as worker_client:
        assert again.get_task(task.task_id).state == "IN_PROGRESS"
        worker = await worker_client.attach(None, "slow", handle_turns=False)
        question = await question_of(again, task.task_id)
        await again.post_envelope(
            Envelope(
                channel_id=question.channel_id,
                sender_id=worker.agent_id,
                event_data={"text": "done", "result": {"ok": True}},
                causation_id=question.envelope_id,
            )
        )
        done = await again.wait_task(task.task_id, WAIT)
        assert (done.state, done.result, done.attempts) == ("COMPLETED", {"ok": True}, 1)


async def test_an_invite_acked_after_the_restart_carries_the_task_on(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    hub = await Hub(SqliteStore(db), invite_ack_timeout=30 * TIME_UNIT).start()
    client = HubClient(LocalLink(hub))
    late = await silent(client, "late", ack=False)
    await late.aclose()  # connected, but processes nothing: the invite stays unacked
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "hello", ttl=30 * TIME_UNIT)
    await hub.aclose()
    await client.aclose()

    async with Hub(SqliteStore(db), invite_ack_timeout=30 * TIME_UNIT) as again:
        assert again.get_task(task.task_id).state == "PENDING"
        worker = Worker("late")

        @worker.on_task("summarize")
        def shout(job: TaskInput) -> str:
            return str(job.input).upper()

        async with HubClient(LocalLink(again)) as worker_client, worker.connected(worker_client, attach=True):
            done = await again.wait_task(task.task_id, WAIT)
        assert (done.state, done.result, done.attempts) == ("COMPLETED", "HELLO", 1)


async def test_a_worker_mid_task_survives_a_hub_restart_over_websocket(tmp_path: Path) -> None:
    """The real thing: the hub process restarts on the same port and database; the worker's
    link reconnects on its own and its handler, still running, delivers the result."""
    db = tmp_path / "hub.db"
    gate = asyncio.Event()
    worker = Worker("steady")

    @worker.on_task("summarize")
    async def slow(job: TaskInput) -> str:
        await gate.wait()
        return "finished across a restart"

    hub = await Hub(SqliteStore(db)).start()
    serving = serve_ws(hub)
    server = await serving.__aenter__()
    port = server.port
    worker_client = HubClient(WsLink(server.url))
    await worker.start(worker_client)
    async with HubClient(WsLink(server.url)) as asker:
        alice = await asker.register(name="alice")
        task = await alice.delegate("summarize", "x", ttl=60 * TIME_UNIT)
    await state_is(hub, task.task_id, "IN_PROGRESS")
    await hub.aclose()
    await serving.__aexit__(None, None, None)

    async with Hub(SqliteStore(db)) as again, serve_ws(again, port=port):
        steady = again.get_agent("steady").agent_id or ""
        await wait_until(lambda: again.delivery.is_connected(steady), 10 * TIME_UNIT, what="the worker back")
        gate.set()
        done = await again.wait_task(task.task_id, WAIT)
        assert (done.state, done.result, done.attempts) == ("COMPLETED", "finished across a restart", 1)
        await worker.stop()
        await worker_client.aclose()


async def test_a_task_whose_closed_channel_retired_moves_on_at_restart(tmp_path: Path) -> None:
    """A task being handed on names its old channel until the next one opens; if that channel
    retired meanwhile (closed, acked, out of memory) and the hub stopped, the restart hands the
    task on again instead of failing it as lost."""
    db = tmp_path / "hub.db"
    hub = await Hub(SqliteStore(db), keep_closed=0).start()
    client = HubClient(LocalLink(hub))
    await silent(client, "slow")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "y", ttl=30 * TIME_UNIT)
    await state_is(hub, task.task_id, "IN_PROGRESS")
    old = hub.get_task(task.task_id)
    await hub.close_channel(old.channel_id or "", "worker_gone")  # no other worker: the task fails
    await wait_until(lambda: hub.get_task(task.task_id).finished, what="the task ending")
    channel_id = old.channel_id or ""
    await wait_until(lambda: hub.channels.find(channel_id) is None, what="the channel retiring")
    await client.aclose()
    # What a crash between the two writes of a hand-over leaves: PENDING, still on the old channel.
    stale = msgspec.structs.replace(old, state="PENDING", worker_id=None)
    await hub.store.put_kv(DTASK_PREFIX + task.task_id, msgspec.json.encode(stale))
    await hub.aclose()

    async with Hub(SqliteStore(db)) as again:
        # Handed on as live: no worker is connected yet, so it fails saying so (not "lost").
        moved = again.get_task(task.task_id)
        assert moved.state == "FAILED"
        assert moved.error is not None
        assert moved.error.startswith("its channel had closed when the hub restarted; ")
        assert "no other agent with capability 'summarize'" in moved.error


async def test_who_a_task_tried_survives_a_restart_and_goes_when_it_finishes(tmp_path: Path) -> None:
    # Else a second handoff after a restart could give the task back to a worker that had it.
    db = tmp_path / "hub.db"
    hub = await Hub(SqliteStore(db)).start()
    client = HubClient(LocalLink(hub))
    slow = await silent(client, "slow")
    alice = await client.register(name="alice")
    task = await alice.delegate("summarize", "y", ttl=30 * TIME_UNIT)
    await state_is(hub, task.task_id, "IN_PROGRESS")
    key = TRIED_PREFIX + task.task_id
    assert msgspec.json.decode(await hub.store.get_kv(key) or b"[]") == [slow.agent_id]
    await hub.aclose()
    await client.aclose()

    async with Hub(SqliteStore(db)) as again, HubClient(LocalLink(again)) as worker_client:
        assert slow.agent_id in again.delegations.attempts._tried[task.task_id]
        worker = await worker_client.attach(None, "slow", handle_turns=False)
        question = await question_of(again, task.task_id)
        reply = Envelope(
            channel_id=question.channel_id,
            sender_id=worker.agent_id,
            event_data={"text": "done", "result": {"ok": True}},
            causation_id=question.envelope_id,
        )
        await again.post_envelope(reply)
        assert (await again.wait_task(task.task_id, WAIT)).state == "COMPLETED"
        await wait_until(_gone(again, key), what="the tried record to go with the task")


def _gone(hub: Hub, key: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await hub.store.get_kv(key) is None

    return check
