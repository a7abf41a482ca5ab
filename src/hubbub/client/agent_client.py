"""``AgentClient``: one registered agent's side of the hub.

Deliveries for the agent are processed in lanes, one per channel: in order
within a channel, concurrently across channels. Each delivery runs the
default handler (answer invites; take the turn when the adapter says it is
this agent's), then the agent's ``on_envelope`` callbacks, then is acked; an
exception from the agent nacks it instead. Acks are cumulative per channel
(the hub keeps one cursor per agent and channel), so while a lane has a
backlog it acks once per batch, at the last envelope processed. A replayed
copy of an envelope already processed is acked without running again (see
``_lane``), so a reconnect does not repeat work.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..agents.base import Agent, Turn, as_reply
from ..agents.current import running_as
from ..errors import HubbubError, UsageError
from ..model.channel import ChannelMetadata
from ..model.delegation import DelegatedTask
from ..model.envelope import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_INVITE_REJECT,
    EV_PACKET,
    EV_TEXT,
    Envelope,
)
from ..model.identity import Passport
from ..model.turn import PendingTurn, TurnContext
from ._convert import as_type
from ._lane import Lane
from ._retry import retrying
from ._waiters import Waiters
from .channel import Channel
from .checkpoints import HubBackedCheckpointStore
from .task_mirror import TaskMirror

if TYPE_CHECKING:
    from .hub_client import HubClient

__all__ = ["AgentClient", "EnvelopeCallback"]

log = logging.getLogger("hubbub.client")

EnvelopeCallback = Callable[[Envelope], Awaitable[None] | None]
_TERMINAL = (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED)
_ENDINGS_KEPT = 1024
"""Closing envelopes an agent client remembers (newest), so ``wait_closed`` after the fact is local."""
_ACK_BATCH = 64
_MOST_UNACKED = 512
"""Processed envelopes a lane lets wait for an ack while one is in flight."""


def _ends(envelope: Envelope) -> bool:
    return envelope.event_type in _TERMINAL


class AgentClient:
    """Act as one agent: open channels, send, receive, take turns."""

    def __init__(
        self,
        hub_client: HubClient,
        agent: Agent | None,
        passport: Passport,
        *,
        handle_turns: bool = True,
        auto_answer_invites: bool = True,
    ) -> None:
        """With ``auto_answer_invites=False`` invites are not answered for you: they reach the
        ``on_envelope`` callbacks, and answering them (an ``EV_CHANNEL_INVITE_ACK`` or
        ``EV_CHANNEL_INVITE_REJECT`` with ``causation_id`` = the invite) is up to you."""
        assert passport.agent_id is not None
        self.hub_client = hub_client
        self.agent = agent
        self.passport = passport
        self.agent_id: str = passport.agent_id
        self.name = passport.name
        self.handle_turns = handle_turns and agent is not None
        self.auto_answer_invites = auto_answer_invites
        self._task_mirror: TaskMirror | None = None
        self._callbacks: list[EnvelopeCallback] = []
        self._waiters = Waiters()
        self._pushed: dict[str, TurnContext] = {}  # envelope id -> the turn context delivered with it
        self._endings: dict[str, Envelope] = {}  # channel id -> the envelope that closed it, newest last
        self._lanes: dict[str, Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"AgentClient({self.name!r}, {self.agent_id})"

    @property
    def tasks(self) -> TaskMirror:
        """Mirror this agent's sub-tasks to the hub (its track record); see :class:`TaskMirror`."""
        if self._task_mirror is None:
            self._task_mirror = TaskMirror(self)
        return self._task_mirror

    @property
    def checkpoints(self) -> HubBackedCheckpointStore:
        """Task checkpoints kept by the hub, saved and read as this agent (see
        :class:`~hubbub.client.checkpoints.HubBackedCheckpointStore`)."""
        return HubBackedCheckpointStore(self.hub_client, agent_id=self.agent_id)

    # sending

    async def open(
        self,
        type: str,
        target: str | list[str],
        *,
        knobs: dict[str, Any] | None = None,
        ttl: str | float | None = None,
        labels: dict[str, str] | None = None,
        intent: str | None = None,
        first: str | None = None,
    ) -> Channel:
        """Open a ``type`` channel with ``target`` (names or ids); returns once all acked.

        ``first``: a text to send as soon as the channel is active; the hub sends it before
        answering, which saves a round trip (``open("consulting", "oracle", first=question)``).
        If the channel refuses it, the hub closes the channel and the refusal is raised.
        """
        targets = [target] if isinstance(target, str) else list(target)
        params: dict[str, Any] = {
            "creator_id": self.agent_id,
            "manifest_type": type,
            "participants": targets,
            "knobs": knobs,
            "ttl": ttl,
            "labels": labels,
            "intent": intent,
        }
        if first is not None:
            params["first"] = first
        result = await self.hub_client.request("create_channel", params)
        return Channel(self, as_type(ChannelMetadata, result))

    async def delegate(
        self,
        capability: str,
        input: Any,
        *,
        target: str | None = None,
        ttl: float = 60.0,
        priority: int = 0,
        idempotency_key: str | None = None,
        max_retries: int = 2,
    ) -> DelegatedTask:
        """Have another agent do ``capability`` on ``input`` (a JSON value); returns the PENDING task.

        The hub picks the worker unless ``target`` names one; follow the task with
        ``hub_client.wait_task(task.task_id)``. See ``docs/tasks.md``.
        """
        params = {
            "agent_id": self.agent_id,
            "capability": capability,
            "input": input,
            "target": target,
            "ttl": ttl,
            "priority": priority,
            "idempotency_key": idempotency_key,
            "max_retries": max_retries,
        }
        return as_type(DelegatedTask, await self.hub_client.request("delegate", params))  # type: ignore[no-any-return]

    async def cancel_task(self, task_id: str) -> DelegatedTask:
        """Cancel a task this agent delegated; a finished task raises :class:`UsageError`."""
        raw = await self.hub_client.request("task_cancel", {"agent_id": self.agent_id, "task_id": task_id})
        return as_type(DelegatedTask, raw)  # type: ignore[no-any-return]

    async def broadcast(self, text: str, *, capability: str | None = None) -> int:
        """Send ``text`` to every connected agent (claiming ``capability``, if given); returns how many."""
        params = {"agent_id": self.agent_id, "text": text, "capability": capability}
        return int((await self.hub_client.request("broadcast", params))["recipients"])

    def channel(self, metadata: ChannelMetadata) -> Channel:
        """A handle on a channel this agent was invited to."""
        return Channel(self, metadata)

    async def send_envelope(self, envelope: Envelope) -> str:
        """Post an envelope as this agent; returns its id once durable."""
        return str(await self.hub_client.request("post_envelope", {"envelope": self._as_mine(envelope)}))

    async def send_until_taken(self, envelope: Envelope) -> str | None:
        """:meth:`send_envelope`, sent again while the link is down or slow until the hub takes it
        (the envelope needs an ``idempotency_key``, so a repeat cannot post it twice). A refusal,
        or a link that will not come back, is logged and None returned instead of raised."""
        if not envelope.idempotency_key:
            raise UsageError("send_until_taken needs an envelope with an idempotency_key")
        posted = await self._retrying(
            "post_envelope", {"envelope": self._as_mine(envelope)}, envelope.channel_id
        )
        return None if posted is None else str(posted)

    def _as_mine(self, envelope: Envelope) -> Envelope:
        if envelope.sender_id == self.agent_id:
            return envelope
        import msgspec

        return msgspec.structs.replace(envelope, sender_id=self.agent_id)

    async def resolve_ids(self, names_or_ids: list[str]) -> list[str]:
        """Agent ids for a list of names or ids."""
        return [await self.hub_client.agent_id_of(x) for x in names_or_ids]

    # receiving

    def on_envelope(self, callback: EnvelopeCallback) -> EnvelopeCallback:
        """Call ``callback(envelope)`` (sync or async) for every delivery; usable as a decorator."""
        self._callbacks.append(callback)
        return callback

    async def wait_for_channel_event(
        self,
        channel_id: str,
        predicate: Callable[[Envelope], bool],
        *,
        timeout: float = 300.0,
        seen_ok: bool = True,
    ) -> Envelope:
        """The first envelope in ``channel_id`` matching ``predicate``.

        With ``seen_ok`` an envelope already in the WAL counts; otherwise
        only a delivery from now on does. Raises ``TimeoutError``.
        """
        with self._waiters.waiting(channel_id, predicate) as waiter:
            if seen_ok:
                for envelope in await self.hub_client.read_wal(channel_id):
                    if predicate(envelope):
                        return envelope
            return await waiter.wait(timeout)

    async def wait_ended(self, channel_id: str, *, timeout: float) -> Envelope | ChannelMetadata:
        """The envelope that closed (or expired) ``channel_id`` once this agent has processed it,
        or the channel's final metadata if the close is in the WAL but this agent did not see it."""
        ending = self._endings.get(channel_id)
        if ending is not None:
            return ending
        with self._waiters.waiting(channel_id, _ends) as waiter:
            # While envelopes of the channel come through this agent's lane, its end will too.
            # Otherwise ask (after the waiter is in place: an ending processed from now on
            # reaches it): it may have ended before this agent was listening.
            if channel_id not in self._lanes:
                metadata = await self.hub_client.get_channel(channel_id)
                if metadata.is_terminal() and not waiter.future.done() and channel_id not in self._lanes:
                    # Once the closing envelope is durable it is in the WAL; until then it is on
                    # its way here.
                    for envelope in await self.hub_client.read_wal(channel_id):
                        if _ends(envelope):
                            return metadata
            return await waiter.wait(timeout)

    def deliver(self, envelope: Envelope, turn: TurnContext | None = None) -> None:
        """Queue a delivery in its channel's lane (called by the HubClient); ``turn``: this agent's
        turn context on it, if the hub sent it along."""
        if self._closed:
            return
        if turn is not None:
            self._pushed[envelope.envelope_id] = turn
        lane = self._lanes.get(envelope.channel_id)
        if lane is None:
            ending = self._endings.get(envelope.channel_id)
            if ending is not None and envelope.envelope_id > ending.envelope_id:
                ending = None
            lane = self._lanes[envelope.channel_id] = Lane(ending)  # copies of an ended one: acked only
            self._spawn(self._run_lane(envelope.channel_id, lane))
        lane.push(envelope)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run_lane(self, channel_id: str, lane: Lane) -> None:
        batch = 0
        # Acks are cumulative and go one at a time: while one is in flight (the hub makes the
        # cursor durable before it answers) the lane keeps working and the acks coalesce. Each
        # acks the highest envelope processed so far; one the link lost stays owed and goes with
        # the next (after a reconnect the replay brings copies of what it covers through here).
        acking: asyncio.Task[None] | None = None
        while True:
            if not lane.items:
                if lane.owes_ack:
                    if acking is not None:
                        await acking
                    await self._ack(lane)
                    acking, batch = None, 0
                if lane.ended and not lane.owes_ack:
                    del self._lanes[channel_id]
                    return
                await lane.wait()
            envelope = lane.pop()
            turn = self._pushed.pop(envelope.envelope_id, None) if self._pushed else None
            if turn is not None and turn.is_turn and lane.items:
                turn = None  # more of the channel came since: the turn may have moved on, so ask
            try:
                if not lane.seen(envelope):
                    await self._process(envelope, turn)
            except Exception as exc:
                log.warning("%s could not process %s: %r", self.name, envelope.envelope_id, exc)
                if acking is not None:
                    await acking
                    acking = None
                if lane.owes_ack:
                    await self._ack(lane)
                    batch = 0
                await self._receipt(envelope, "nack", repr(exc))
            else:
                lane.mark_done(envelope)
                batch += 1
                if batch >= _ACK_BATCH and (acking is None or acking.done() or batch >= _MOST_UNACKED):
                    if acking is not None:
                        await acking
                    acking = self._spawn(self._ack(lane))
                    batch = 0
            if envelope.event_type in _TERMINAL:
                lane.ended = True  # once what came before it is through and acked, the lane ends

    async def _ack(self, lane: Lane) -> None:
        """Ack the highest envelope the lane processed; the lane learns what the hub took."""
        envelope = lane.high
        if envelope is not None and await self._receipt(envelope, "ack", ""):
            lane.acked_to(envelope.envelope_id)

    async def _receipt(self, envelope: Envelope, status: str, reason: str) -> bool:
        try:
            await self.hub_client.receipt(envelope, status, self.agent_id, reason)
        except HubbubError as exc:
            log.warning("%s could not %s %s: %s", self.name, status, envelope.envelope_id, exc)
            return False
        return True

    async def _process(self, envelope: Envelope, turn: TurnContext | None = None) -> None:
        if envelope.event_type == EV_CHANNEL_INVITE:
            if self.auto_answer_invites:
                await self._answer_invite(envelope)
        elif (
            self.handle_turns
            and envelope.event_type in (EV_TEXT, EV_PACKET)
            and envelope.sender_id != self.agent_id
        ):
            await self.take_turn(envelope.channel_id, envelope.envelope_id, context=turn)
        for callback in self._callbacks:
            result = callback(envelope)
            if inspect.isawaitable(result):
                await result
        if envelope.event_type in _TERMINAL:
            endings = self._endings
            endings[envelope.channel_id] = envelope
            if len(endings) > _ENDINGS_KEPT:
                del endings[next(iter(endings))]
        self._waiters.offer(envelope)

    async def _answer_invite(self, invite: Envelope) -> None:
        policy = getattr(self.agent, "accept_invite", None)
        accept = policy(invite) if callable(policy) else True
        answer = Envelope(
            channel_id=invite.channel_id,
            sender_id=self.agent_id,
            event_type=EV_CHANNEL_INVITE_ACK if accept else EV_CHANNEL_INVITE_REJECT,
            event_data={} if accept else {"reason": "declined by agent"},
            causation_id=invite.envelope_id,
        )
        try:
            await self.send_envelope(answer)
        except HubbubError as exc:
            log.info("%s could not answer invite %s: %s", self.name, invite.envelope_id, exc)

    async def take_turn(
        self, channel_id: str, envelope_id: str, *, context: TurnContext | None = None
    ) -> bool:
        """Run the agent on ``envelope_id`` if the hub says it is this agent's turn.

        Returns True if the agent ran. A reply already posted for the
        envelope (a redelivery) means no second reply. ``context``: the hub's
        turn context on it, if it came with the delivery (else it is asked for).
        """
        if self.agent is None:
            return False
        ctx = context
        if ctx is None:
            ctx = as_type(
                TurnContext,
                await self.hub_client.request(
                    "turn_context",
                    {"channel_id": channel_id, "agent_id": self.agent_id, "envelope_id": envelope_id},
                ),
            )
        if not ctx.is_turn or ctx.channel is None or ctx.envelope is None:
            return False
        turn = Turn(
            agent_id=self.agent_id,
            agent_name=self.name,
            channel_id=channel_id,
            channel_type=ctx.channel.manifest.type,
            prompt=ctx.prompt,
            transcript=ctx.transcript,
            names=ctx.names,
            context=ctx.context,
            envelope=ctx.envelope,
            knobs=ctx.channel.knobs,
        )
        with running_as(self):
            reply = as_reply(await self.agent.ask(turn))
        if reply.text or reply.handoff or reply.finish or reply.context_set or reply.context_delete:
            params: dict[str, Any] = {
                "channel_id": channel_id,
                "agent_id": self.agent_id,
                "causation_id": envelope_id,
                "reply": reply,
            }
            # A reply given up on would leave the turn unanswered for good (its question counts as
            # processed): retried while the link reconnects; if lost, resume_pending_turns() takes
            # the turn again.
            await self._retrying("post_reply", params, channel_id)
        return True

    def _retrying(self, op: str, params: dict[str, Any], channel_id: str) -> Awaitable[Any]:
        closed = self._is_closed
        return retrying(self.hub_client, op, params, who=self.name, where=channel_id, closed=closed)

    def _is_closed(self) -> bool:
        return self._closed

    async def replay(self, since_envelope_id: str = "") -> int:
        """Have the hub deliver again what this agent has not acked (and past ``since_envelope_id``).

        Register ``on_envelope`` callbacks first; returns how many envelopes were sent.
        """
        params = {"agent_id": self.agent_id, "since_envelope_id": since_envelope_id}
        return int(await self.hub_client.request("replay", params))

    async def resume_pending_turns(self) -> int:
        """Take every turn the hub still expects from this agent; returns how many ran."""
        raw = await self.hub_client.request("pending_turns_for", {"agent_id": self.agent_id})
        fired = 0
        for pending in as_type(list[PendingTurn], raw):
            if pending.triggering_envelope_id and await self.take_turn(
                pending.channel_id, pending.triggering_envelope_id
            ):
                fired += 1
        return fired

    async def list_channels(self, *, state: str | None = None) -> list[ChannelMetadata]:
        """Channels this agent takes part in, newest first."""
        raw = await self.hub_client.request("list_channels", {"agent_id": self.agent_id, "state": state})
        return as_type(list[ChannelMetadata], raw)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop processing deliveries for this agent (its identity stays registered)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._lanes.clear()
        self._pushed.clear()
