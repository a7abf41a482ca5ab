"""The ``hubbub`` command in its own processes against ``hubbub serve`` in another: see the hub, find
agents, ask one, delegate and broadcast, follow the audit log until Ctrl-C, follow a channel's WAL
until it closes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hubbub import EV_TEXT, FunctionAgent, HubClient, WsLink
from hubbub.worker import TaskInput, Worker
from tests.conftest import TIME_UNIT

HUBBUB = [sys.executable, "-m", "hubbub"]
_ENV = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [*HUBBUB, "serve", "--port", "0", "--db", str(tmp_path / "hub.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_ENV,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("hubbub serving on ws://127.0.0.1:"), first
        yield first.split()[3]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20 * TIME_UNIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
async def workers(url: str) -> AsyncIterator[HubClient]:
    async with HubClient(WsLink(url)) as client:
        await client.register(
            FunctionAgent(lambda t: f"echo: {t.prompt}", name="echo", capabilities=["echo"])
        )
        yield client


async def _hubbub(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *HUBBUB, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_ENV
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60 * TIME_UNIT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@contextlib.contextmanager
def _ctrl_c_reaches_children() -> Iterator[None]:
    """Children started meanwhile take Ctrl-C as at a terminal.

    A test run started as a background job of a script ignores SIGINT, and processes it
    spawns inherit that; a handler in this process is reset to the default in the child.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def _interruptible(*args: str) -> asyncio.subprocess.Process:
    """``hubbub *args`` that a SIGINT stops, with its output piped."""
    with _ctrl_c_reaches_children():
        return await asyncio.create_subprocess_exec(
            *HUBBUB, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_ENV
        )


async def _follower(*args: str) -> asyncio.subprocess.Process:
    return await _interruptible(*args, "--json", "--interval", "0.1")


async def _next(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30 * TIME_UNIT)
    assert line, "the follower stopped"
    return dict(json.loads(line))


async def test_find_ask_and_follow_the_audit_log(url: str, workers: HubClient) -> None:
    status, out, err = await _hubbub("agents", "--capability", "echo", "--json", "--url", url)
    assert status == 0, err
    [echo] = json.loads(out)
    assert echo["passport"]["name"] == "echo"
    assert echo["connected"] is True

    follower = await _follower("audit", "--follow", "--url", url)
    try:
        assert (await _next(follower))["kind"] == "agent_registered"  # the backlog: echo
        status, out, err = await _hubbub("send", "--to", "echo", "is anyone there?", "--wait", "--url", url)
        assert (status, out, err) == (0, "echo: echo: is anyone there?\n", "")
        kinds = []
        while "channel_closed" not in kinds:
            kinds.append((await _next(follower))["kind"])
        assert kinds == ["agent_registered", "channel_created", "channel_closed"]  # cli, its question
        follower.send_signal(signal.SIGINT)  # Ctrl-C is how one stops following: status 0
        _, err_bytes = await asyncio.wait_for(follower.communicate(), 30 * TIME_UNIT)
        assert follower.returncode == 0
        assert err_bytes == b""
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()


async def test_follow_a_channel_until_it_closes(url: str, workers: HubClient) -> None:
    alice = await workers.register(name="alice", handle_turns=False)
    channel = await alice.open("conversation", "echo")
    await channel.send("first")
    await channel.wait_for(2)
    follower = await _follower("wal", channel.id, "--follow", "--url", url)
    try:
        seen = [await _next(follower) for _ in range(5)]  # invite, ack, opened, first, its echo
        assert [e["event_data"].get("text") for e in seen[3:]] == ["first", "echo: first"]
        await channel.send("second")
        texts = []
        while len(texts) < 2:
            envelope = await _next(follower)
            if envelope["event_type"] == EV_TEXT:
                texts.append(envelope["event_data"]["text"])
        assert texts == ["second", "echo: second"]
        await channel.close("that is all")
        closed = await _next(follower)
        assert closed["event_type"] == "ag2.channel.closed"
        assert closed["event_data"]["reason"] == "that is all"
        assert await asyncio.wait_for(follower.wait(), 30 * TIME_UNIT) == 0  # it stops by itself
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()


async def test_see_find_delegate_and_broadcast_from_the_command_line(url: str, workers: HubClient) -> None:
    summarizer = Worker("summarizer")

    @summarizer.on_task("summarize")
    async def summarize(task: TaskInput) -> str:
        return f"{len(task.text.split())} words"

    async with summarizer.connected(workers):
        status, out, err = await _hubbub("status", "--url", url)
        assert status == 0, err
        assert "agents          2" in out
        status, out, err = await _hubbub("agents", "--capability", "summar", "--url", url)
        assert status == 0, err
        assert "summarizer   agent   yes      summarize" in out
        status, out, err = await _hubbub(
            "delegate", "summarize", "the quick brown fox", "--wait", "--url", url
        )
        assert (status, out, err) == (0, "4 words\n", "")
        status, out, err = await _hubbub("broadcast", "hello, everyone", "--url", url)
        assert (status, out, err) == (0, "sent to 2 agents (connected agents)\n", "")
        status, out, err = await _hubbub("tasks", "--json", "--url", url)
        [task] = json.loads(out)
        assert (task["capability"], task["state"], task["result"]) == ("summarize", "COMPLETED", "4 words")


async def test_ctrl_c_stops_waiting_not_the_task(url: str, workers: HubClient) -> None:
    thinker = Worker("thinker")
    started, never = asyncio.Event(), asyncio.Event()

    @thinker.on_task("ponder")
    async def ponder(task: TaskInput) -> str:
        started.set()
        await never.wait()  # the task must outlive the interrupted command; nothing sets it
        return "42"

    async with thinker.connected(workers):
        proc = await _interruptible("delegate", "ponder", "life", "--wait", "--url", url)
        try:
            await asyncio.wait_for(started.wait(), 30 * TIME_UNIT)
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), 30 * TIME_UNIT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 130
        assert out == b""
        [task] = await workers.list_tasks()
        assert task.state == "IN_PROGRESS"  # the task goes on
        assert (
            err.decode() == f"task {task.task_id} goes on; see it with: hubbub task {task.task_id} --wait\n"
        )
