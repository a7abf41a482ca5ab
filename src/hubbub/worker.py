"""Workers: agents that take delegated tasks, written as decorated functions or as a class.

Decorator style::

    worker = Worker("summarizer")

    @worker.on_task("summarize")
    async def summarize(task: TaskInput) -> str:      # a plain def works too
        return task.input["text"][:100]

    await worker.run(HubClient(WsLink(url)))          # or: async with worker.connected(client): ...

Class style::

    class Summarizer(WorkerAgent):
        @capability("summarize")
        async def summarize(self, task: TaskInput) -> str: ...

    await Summarizer("summarizer").run(client)

Starting a worker registers it (or, with ``attach=True``, re-attaches its
identity) with its capabilities as ``claimed_capabilities``, so the hub can
pick it. For each task question the handler of the task's capability runs in
its own asyncio task; what it returns (a JSON value) is the task's result,
posted as the reply in the task's channel (``event_data["result"]``, and the
text: the value itself if a string, else its JSON). An exception fails the task
with its message (``event_data["error"]``). When the task's channel closes
first (cancelled, timed out, handed to another worker) the handler is cancelled.
A sync handler runs on the event loop: keep it short, or make it async and
use ``asyncio.to_thread``.

A long handler can checkpoint its progress through the hub under the task's
id (``await worker.checkpoints.save(task.task_id, {...})``): if this worker
goes away, the worker the task is handed to loads it and carries on
(``await worker.checkpoints.load(task.task_id)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import msgspec

from .client.agent_client import AgentClient
from .client.checkpoints import HubBackedCheckpointStore
from .client.hub_client import HubClient
from .errors import HubbubError, UsageError
from .model.envelope import EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED, EV_TEXT, Envelope
from .model.identity import Passport, Resume
from .model.rule import Rule

__all__ = ["TaskHandler", "TaskInput", "Worker", "WorkerAgent", "capability"]

log = logging.getLogger("hubbub.worker")

TaskHandler = Callable[["TaskInput"], Any]
"""``handler(task) -> result`` or ``async def handler(task) -> result``."""
F = TypeVar("F", bound=Callable[..., Any])

_MARK = "_hubbub_capability"
_encode = msgspec.json.Encoder().encode


class TaskInput(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker's handler gets: the task and the question envelope that carried it."""

    task_id: str
    capability: str
    input: Any
    """The JSON value the requester passed to ``delegate``."""
    requester_id: str
    channel_id: str
    envelope: Envelope

    @property
    def text(self) -> str:
        """The question's text (the input itself when it is a string)."""
        return self.envelope.text


class Worker:
    """An agent that answers delegated tasks, one handler per capability."""

    def __init__(self, name: str, *, summary: str = "", rule: Rule | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise UsageError(f"a worker needs a non-empty name, got {name!r}")
        self.name = name
        self.summary = summary
        self.rule = rule
        self.agent: AgentClient | None = None
        """The worker's agent client while it runs."""
        self._handlers: dict[str, TaskHandler] = {}
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def checkpoints(self) -> HubBackedCheckpointStore:
        """Task checkpoints kept by the hub, as this worker: a delegated task's checkpoint is its
        requester's and its current worker's. Only while the worker runs."""
        if self.agent is None:
            raise UsageError(f"{self.name} is not running: start() it before using its checkpoints")
        return self.agent.checkpoints

    @property
    def capabilities(self) -> list[str]:
        """The capabilities it has handlers for (what it claims in its Resume)."""
        return list(self._handlers)

    def on_task(self, capability: str) -> Callable[[F], F]:
        """Decorator: run the function for tasks of ``capability``; returns it unchanged."""
        key = _capability_key(capability)

        def register(handler: F) -> F:
            if key in self._handlers:
                raise UsageError(f"{self.name} already has a handler for capability {key!r}")
            self._handlers[key] = handler
            return handler

        return register

    async def start(self, client: HubClient, *, attach: bool = False) -> AgentClient:
        """Register the worker (``attach``: act again as the already registered identity) with its
        capabilities, and start answering tasks. Returns its agent client."""
        if not self._handlers:
            raise UsageError(f"{self.name} has no task handlers; add one with @worker.on_task(...)")
        if self.agent is not None:
            raise UsageError(f"{self.name} is already running; stop() it first")
        resume = Resume(claimed_capabilities=self.capabilities, summary=self.summary)
        if attach:
            agent = await client.attach(None, self.name, since_envelope_id=None)
            agent.on_envelope(self._on_envelope)
            await client.request("set_resume", {"agent_id": agent.agent_id, "resume": resume})
            self.agent = agent
            await agent.replay()
            await self._resume(agent, client)
        else:
            agent = await client.register(
                None, passport=Passport(name=self.name), resume=resume, rule=self.rule, handle_turns=False
            )
            agent.on_envelope(self._on_envelope)
        self.agent = agent
        return agent

    async def stop(self) -> None:
        """Stop answering: cancel running handlers and claim no capabilities, so the hub stops
        picking this worker (its identity and track record stay)."""
        agent, self.agent = self.agent, None
        for task in list(self._running.values()):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
        self._running.clear()
        if agent is None:
            return
        with contextlib.suppress(HubbubError):
            resume = Resume(summary=self.summary)
            await agent.hub_client.request("set_resume", {"agent_id": agent.agent_id, "resume": resume})
        await agent.aclose()

    @contextlib.asynccontextmanager
    async def connected(self, client: HubClient, *, attach: bool = False) -> AsyncIterator[AgentClient]:
        """``async with worker.connected(client) as agent:`` answers tasks inside the block."""
        agent = await self.start(client, attach=attach)
        try:
            yield agent
        finally:
            await self.stop()

    async def run(self, client: HubClient, *, attach: bool = False) -> None:
        """Answer tasks until cancelled (e.g. by Ctrl-C in ``asyncio.run``)."""
        async with self.connected(client, attach=attach):
            await asyncio.Event().wait()

    # answering

    def _on_envelope(self, envelope: Envelope) -> None:
        agent = self.agent
        if agent is None:
            return
        channel_id = envelope.channel_id
        if envelope.event_type in (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED):
            running = self._running.pop(channel_id, None)
            if running is not None:
                running.cancel()
        elif (
            envelope.event_type == EV_TEXT
            and envelope.task_id
            and envelope.sender_id != agent.agent_id
            and channel_id not in self._running
        ):
            self._running[channel_id] = asyncio.ensure_future(self._answer(agent, envelope))

    async def _resume(self, agent: AgentClient, client: HubClient) -> None:
        """Run again the tasks the hub still has this worker on: it went away mid-task and came
        back in time. Their questions were acked when the handlers started, so no replay brings
        them; a handler that checkpointed carries on from its checkpoint."""
        for state in ("ASSIGNED", "IN_PROGRESS"):
            for task in await client.list_tasks(worker_id=agent.agent_id, state=state, limit=1000):
                if task.channel_id is None or task.channel_id in self._running:
                    continue
                for envelope in await client.read_wal(task.channel_id, limit=100):
                    if envelope.event_type == EV_TEXT and envelope.task_id == task.task_id:
                        self._on_envelope(envelope)  # the question: the first text of the task
                        break

    async def _answer(self, agent: AgentClient, question: Envelope) -> None:
        data = question.event_data
        capability = str(data.get("capability") or "")
        task = TaskInput(
            task_id=question.task_id or "",
            capability=capability,
            input=data.get("input", question.text),
            requester_id=question.sender_id,
            channel_id=question.channel_id,
            envelope=question,
        )
        try:
            reply = await self._run_handler(task)
            reply = msgspec.structs.replace(
                reply,
                channel_id=question.channel_id,
                causation_id=question.envelope_id,
                task_id=question.task_id,
                # Sent again while the link reconnects; the key makes a repeat the same post.
                idempotency_key=f"result:{question.envelope_id}",
            )
            await agent.send_until_taken(reply)
        finally:
            if self._running.get(question.channel_id) is asyncio.current_task():
                del self._running[question.channel_id]

    async def _run_handler(self, task: TaskInput) -> Envelope:
        """The reply envelope: the handler's result, or the error it raised."""
        try:
            handler = self._handlers.get(_capability_key(task.capability))
            if handler is None:
                raise LookupError(f"{self.name} has no handler for capability {task.capability!r}")
            result = handler(task)
            if inspect.isawaitable(result):
                result = await result
            text = result if isinstance(result, str) else _encode(result).decode()
            return Envelope(channel_id="", event_type=EV_TEXT, event_data={"text": text, "result": result})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            log.info("%s: task %s failed: %s", self.name, task.task_id, message)
            return Envelope(
                channel_id="", event_type=EV_TEXT, event_data={"text": f"error: {message}", "error": message}
            )


def capability(name: str) -> Callable[[F], F]:
    """Mark a method of a :class:`WorkerAgent` subclass as the handler of capability ``name``."""
    key = _capability_key(name)

    def mark(method: F) -> F:
        setattr(method, _MARK, key)
        return method

    return mark


class WorkerAgent(Worker):
    """Base class for class-style workers: methods marked with :func:`capability` handle tasks.

    ``name`` defaults to the class name in lower case.
    """

    def __init__(self, name: str | None = None, *, summary: str = "", rule: Rule | None = None) -> None:
        super().__init__(name or type(self).__name__.lower(), summary=summary, rule=rule)
        seen: set[str] = set()
        for klass in type(self).__mro__:
            for attr, value in vars(klass).items():
                key = getattr(value, _MARK, None)
                if isinstance(key, str) and attr not in seen:
                    seen.add(attr)
                    self.on_task(key)(getattr(self, attr))


def _capability_key(capability: str) -> str:
    if not isinstance(capability, str) or not capability.strip():
        raise UsageError(f"a capability must be a non-empty string, got {capability!r}")
    return capability.strip().lower()
