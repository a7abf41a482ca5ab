"""``hubbub delegate``, ``tasks``, ``task ID``, ``broadcast`` with real workers (a FunctionAgent and
the Worker SDK) on a served hub."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hubbub import FunctionAgent
from hubbub.worker import TaskInput, Worker
from tests.cli.conftest import Cli, ThreadHub


@pytest.fixture
def workers(served: ThreadHub) -> Iterator[Worker]:
    """``shouter`` (a FunctionAgent: shout), ``sdk`` (a Worker: summarize, explode, ponder)."""
    sdk = Worker("sdk")

    @sdk.on_task("summarize")
    def summarize(task: TaskInput) -> object:
        if isinstance(task.input, dict):
            return {"words": len(str(task.input.get("text", "")).split())}
        return f"summary: {task.text[:12]}"

    @sdk.on_task("explode")
    def explode(task: TaskInput) -> object:
        raise ValueError("the input was too loud")

    @sdk.on_task("ponder")
    async def ponder(task: TaskInput) -> object:
        await asyncio.Event().wait()  # never answers; stopping the worker cancels it
        return "done pondering"

    async def start() -> None:
        await served.client.register(
            FunctionAgent(lambda t: t.prompt.upper(), name="shouter", capabilities=["shout"])
        )
        await sdk.start(served.client)

    served.run(start)
    yield sdk
    served.run(sdk.stop)


def test_delegate_and_wait_for_the_result(cli: Cli, served: ThreadHub, workers: Worker) -> None:
    status, out, err = cli("delegate", "summarize", "a long story about a hub", "--wait")
    assert (status, out, err) == (0, "summary: a long story\n", "")
    status, out, err = cli("delegate", "shout", "hello", "--wait")
    assert (status, out, err) == (0, "HELLO\n", "")
    status, out, err = cli("delegate", "summarize", '{"text": "one two three"}', "--input-json", "--wait")
    assert (status, out) == (0, '{"words": 3}\n')
    task = cli.json("delegate", "summarize", "x", "--to", "sdk", "--wait")
    assert task["state"] == "COMPLETED"
    assert task["result"] == "summary: x"
    assert task["attempts"] == 1


def test_failures_are_one_line_and_status_1(cli: Cli, served: ThreadHub, workers: Worker) -> None:
    status, out, err = cli("delegate", "explode", "boom", "--wait")
    assert (status, out) == (1, "")
    task_id = err.split()[3]
    assert err == f"hubbub delegate: task {task_id} FAILED: the input was too loud\n"
    status, _, err = cli("delegate", "translate", "hola", "--wait")
    assert status == 1
    assert err.startswith("hubbub delegate: no agent claims capability 'translate'")
    assert err.count("\n") == 1
    status, _, err = cli("delegate", "summarize", "{not json", "--input-json")
    assert status == 2
    assert err.startswith("hubbub delegate: --input-json: INPUT is not valid JSON: ")
    status, _, err = cli("task", "f" * 32)
    assert (status, err) == (
        1,
        f"hubbub task: no task '{'f' * 32}' on the hub at {served.url}; `hubbub tasks` lists them\n",
    )
    status, _, err = cli("delegate", "summarize", "x", "--ttl", "-1")
    assert status == 2
    assert "argument --ttl: expected a number of seconds above 0" in err


def test_delegate_without_waiting_then_look_wait_and_list(
    cli: Cli, served: ThreadHub, workers: Worker
) -> None:
    status, out, _ = cli("delegate", "shout", "later")
    assert status == 0
    task_id = out.split()[1]
    assert out == f"task {task_id} (shout) is PENDING; see it with: hubbub task {task_id} --wait\n"
    status, out, err = cli("task", task_id, "--wait")
    assert (status, err) == (0, "")
    rows = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert rows["task"].strip() == task_id
    assert rows["capability"].strip() == "shout"
    assert rows["state"].strip() == "COMPLETED"
    assert rows["requester"].strip() == "cli"
    assert rows["worker"].strip() == "shouter"
    assert rows["input"].strip() == "later"
    assert rows["result"].strip() == "LATER"
    assert rows["attempts"].strip() == "1 (retries allowed: 2)"

    cli("delegate", "explode", "x", "--wait")
    status, out, _ = cli("tasks")
    assert status == 0
    assert "tasks (2)" in out
    failed = next(line for line in out.splitlines() if " explode " in line).split()
    assert failed[1:5] == ["explode", "FAILED", "cli", "sdk"]
    assert out.splitlines()[-1].split()[:3] == [task_id, "shout", "COMPLETED"]
    assert [t["capability"] for t in cli.json("tasks", "--state", "completed")] == ["shout"]
    assert [t["capability"] for t in cli.json("tasks", "--worker", "sdk")] == ["explode"]
    assert len(cli.json("tasks", "--requester", "cli")) == 2
    status, out, _ = cli("tasks", "--state", "timeout")
    assert out == f"no tasks in state TIMEOUT on {served.url}\n"


def test_a_wait_that_runs_out_and_a_cancel(cli: Cli, served: ThreadHub, workers: Worker) -> None:
    status, out, err = cli("delegate", "ponder", "the universe", "--wait", "--wait-timeout", "0.5")
    assert (status, out) == (1, "")
    task_id = err.split()[3]
    assert err.startswith(f"hubbub delegate: task {task_id} is still ")
    assert err.endswith(f" after the wait; see it with: hubbub task {task_id} --wait\n")
    status, _, err = cli("task", task_id, "--cancel", "--as", "someone-else")
    assert status == 1
    assert err == f"hubbub task: only the requester cli may cancel task {task_id}, not someone-else\n"
    task = cli.json("task", task_id, "--cancel")
    assert task["state"] == "CANCELLED"
    status, _, err = cli("task", task_id, "--cancel")
    assert status == 1
    assert err.startswith("hubbub task: ")
    assert err.count("\n") == 1
    status, out, err = cli("task", task_id)
    assert status == 0  # looking at a finished task is not a failure
    assert "CANCELLED" in out
    status, _, err = cli("task", task_id, "--wait")
    assert status == 1
    assert err.startswith(f"hubbub task: task {task_id} CANCELLED: ")


def test_broadcast(cli: Cli, served: ThreadHub, workers: Worker) -> None:
    status, out, err = cli("broadcast", "the hub restarts at noon")
    assert (status, out, err) == (0, "sent to 2 agents (connected agents)\n", "")
    assert cli.json("broadcast", "shout if you hear me", "--capability", "shout") == {"recipients": 1}
    status, out, _ = cli("broadcast", "anyone?", "-c", "translate")
    assert out == "no connected agents claiming 'translate': sent to nobody\n"
    [latest, first] = cli.json("channels", "--type", "broadcast")
    texts = [e["event_data"].get("text") for e in cli.json("wal", first["channel_id"])]
    assert "the hub restarts at noon" in texts
    assert len(latest["participants"]) == 2  # cli and shouter
    status, _, err = cli("broadcast", " ")
    assert (status, err) == (2, "hubbub broadcast: hubbub broadcast needs a non-empty TEXT\n")
