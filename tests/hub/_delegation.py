"""Helpers for the delegated task tests: a store that remembers every task record written,
and agents that answer, stay silent or never ack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from hubbub import AgentClient, Envelope, FunctionAgent, Hub, HubClient, Resume, Turn
from hubbub.hub._task_records import DTASK_PREFIX, decode_task
from hubbub.storage.memory import MemoryStore
from tests.hub._waiting import wait_until


class RecordingStore(MemoryStore):
    """A MemoryStore that also keeps, per task, the state of every task record written."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, list[str]] = {}

    def put_kv(self, key: str, value: bytes) -> Awaitable[None] | None:
        if key.startswith(DTASK_PREFIX):
            task = decode_task(value)
            self.states.setdefault(task.task_id, []).append(task.state)
        return super().put_kv(key, value)

    def path(self, task_id: str) -> list[str]:
        """The states written for ``task_id``, repeats (attempt bookkeeping) collapsed."""
        out: list[str] = []
        for state in self.states.get(task_id, []):
            if not out or out[-1] != state:
                out.append(state)
        return out


async def answering(
    client: HubClient, name: str, reply: Callable[[Turn], Any] | None = None, *caps: str, **kw: Any
) -> AgentClient:
    """A worker that answers every question (by default with the prompt upper-cased)."""
    fn = reply or (lambda turn: turn.prompt.upper())
    return await client.register(FunctionAgent(fn, name=name, capabilities=list(caps or ["summarize"]), **kw))


async def silent(client: HubClient, name: str, *caps: str, ack: bool = True) -> AgentClient:
    """A worker that acks invites (unless ``ack=False``) but never answers."""
    return await client.register(
        name=name,
        resume=Resume(claimed_capabilities=list(caps or ["summarize"])),
        handle_turns=False,
        auto_answer_invites=ack,
    )


async def state_is(hub: Hub, task_id: str, state: str) -> None:
    await wait_until(lambda: hub.get_task(task_id).state == state, what=f"task {task_id} {state}")


async def question_of(hub: Hub, task_id: str) -> Envelope:
    """The question envelope of a task's current channel (waits for it)."""
    found: list[Envelope] = []

    async def asked() -> bool:
        channel_id = hub.get_task(task_id).channel_id
        assert channel_id is not None
        found[:] = [e for e in await hub.read_wal(channel_id) if e.event_type == "ag2.msg.text"]
        return bool(found)

    await wait_until(asked, what=f"the question of task {task_id}")
    return found[0]


def another_client(client: HubClient, hub: Hub) -> HubClient:
    """A second connection to the same hub over the same kind of link as ``client``."""
    from hubbub import LocalLink, WsLink

    link = client.link
    return HubClient(WsLink(link.url) if isinstance(link, WsLink) else LocalLink(hub))
