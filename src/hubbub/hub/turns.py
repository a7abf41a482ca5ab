"""Turns: whose turn it is, what the agent sees on it, and posting its reply exactly once.

The client's default handler asks :meth:`Turns.context` on each text or
packet delivered to its agent; the hub answers from the adapter's cached
state and a bounded WAL read (windowed views read only the tail), so a turn
costs the same on the thousandth message as on the first.
"""

from __future__ import annotations

import msgspec

from ..adapters.base import AgentReply
from ..adapters.views import ViewPolicy, view_policy_by_name
from ..model._time import iso_from_ns, iso_now
from ..model.channel import ChannelState
from ..model.envelope import EV_PACKET, EV_TEXT, Envelope
from ..model.ids import id_time_ns
from ..model.turn import PendingTurn, TurnContext
from ..storage.base import Store, Unknown
from .channel_record import ChannelRecord
from .channels import Channels
from .registry import Registry
from .send_checks import ended_elsewhere, refuse_outsiders_and_ended

__all__ = ["Turns"]


def _already_replied() -> TurnContext:
    return TurnContext(is_turn=False, reason="already replied", already_replied=True)


def _tail_for(window: int) -> int:
    """Envelopes to read for a view of ``window`` texts: room for control events and other audiences."""
    return 3 * window + 8


class Turns:
    """Turn-taking queries and replies over the channels' cached adapter state."""

    def __init__(self, store: Store, channels: Channels, registry: Registry) -> None:
        self.store = store
        self.channels = channels
        self.registry = registry

    def pending_for(self, agent_id: str) -> list[PendingTurn]:
        """Turns the protocol expects from ``agent_id`` in its active channels.

        ``expected_at`` is when the turn became the agent's: the triggering
        envelope's ``created_at`` (the time its hub-stamped id carries), or now
        when no envelope triggered it.
        """
        turns = []
        for record in self.channels.of_agent(agent_id):
            if record.metadata.state is not ChannelState.ACTIVE:
                continue
            expected = record.adapter.expected_next(record.metadata, record.state)
            if expected is not None and expected.agent_id == agent_id:
                trigger = expected.triggering_envelope_id
                turns.append(
                    PendingTurn(
                        channel_id=record.id,
                        triggering_envelope_id=trigger,
                        expected_at=_stamp_time(trigger) if trigger else iso_now(),
                    )
                )
        return turns

    async def context(self, channel_id: str, agent_id: str, envelope_id: str) -> TurnContext:
        """Whether ``envelope_id`` puts the turn on ``agent_id``, and what it sees if so."""
        record = self.channels.find(channel_id)
        if record is None:  # unknown (NotFoundError), or closed and no longer in memory
            meta = await self.channels.fetch(channel_id)
            return TurnContext(is_turn=False, reason=f"channel is {meta.state.value}")
        refused = self._not_a_turn(record, agent_id, envelope_id)
        if refused is not None:
            return refused
        if await self.store.find_by_causation(channel_id, agent_id, envelope_id) is not None:
            return _already_replied()
        envelope = await self.store.get_envelope(channel_id, envelope_id)
        if envelope is None:
            return TurnContext(is_turn=False, reason="envelope not in this channel")
        view = self._view_for(record, agent_id)
        if view.window is None:
            history = await self.store.read_wal(channel_id, until=envelope_id)
        else:
            history = await self.store.read_wal_tail(channel_id, _tail_for(view.window), until=envelope_id)
        return self._seen(record, agent_id, envelope, view, history)

    def context_now(self, channel_id: str, agent_id: str, envelope: Envelope) -> TurnContext | None:
        """:meth:`context` for ``envelope``, just committed, from memory only: None when the
        answer needs a store read (then the agent's client asks for it).

        The hub attaches it to the delivery of a text or packet to an agent whose client
        asked for turns with its deliveries (``push_turns``), saving that request.
        """
        record = self.channels.find(channel_id)
        if record is None:
            return None
        refused = self._not_a_turn(record, agent_id, envelope.envelope_id)
        if refused is not None:
            return refused
        replied = self.store.recent_reply(channel_id, agent_id, envelope.envelope_id)
        if replied is not None:
            return None if isinstance(replied, Unknown) else _already_replied()
        view = self._view_for(record, agent_id)
        limit = None if view.window is None else _tail_for(view.window)
        history = self.store.recent_wal(channel_id, until=envelope.envelope_id, limit=limit)
        if isinstance(history, Unknown):
            return None
        return self._seen(record, agent_id, envelope, view, history)

    @staticmethod
    def _not_a_turn(record: ChannelRecord, agent_id: str, envelope_id: str) -> TurnContext | None:
        """Why ``envelope_id`` gives ``agent_id`` no turn, as far as the channel's state tells."""
        meta = record.metadata
        if meta.state is not ChannelState.ACTIVE:
            return TurnContext(is_turn=False, reason=f"channel is {meta.state.value}")
        expected = record.adapter.expected_next(meta, record.state)
        if expected is None or expected.agent_id != agent_id:
            return TurnContext(is_turn=False, reason="not this agent's turn")
        if expected.triggering_envelope_id != envelope_id:
            return TurnContext(is_turn=False, reason="a later envelope holds the turn")
        return None

    def _seen(
        self,
        record: ChannelRecord,
        agent_id: str,
        envelope: Envelope,
        view: ViewPolicy,
        history: list[Envelope],
    ) -> TurnContext:
        """The turn, with what ``agent_id`` sees of ``history`` (the WAL up to ``envelope``)."""
        names = {a: self.registry.name_of(a) for a in record.members}
        earlier = 0
        if view.window is not None:
            # A bounded read: the texts before it are counted, not shown.
            read_texts = sum(1 for e in history if e.event_type in (EV_TEXT, EV_PACKET))
            earlier = max(record.texts - read_texts, 0)
        return TurnContext(
            is_turn=True,
            channel=record.metadata,
            prompt=record.adapter.turn_input(envelope) or "",
            transcript=view.project(history, agent_id, names, earlier),
            names=names,
            context=dict(getattr(record.state, "context_vars", None) or {}),
            envelope=envelope,
        )

    def _view_for(self, record: ChannelRecord, agent_id: str) -> ViewPolicy:
        meta = record.metadata
        overrides = meta.knobs.get("views")
        if isinstance(overrides, dict):
            name = overrides.get(agent_id) or overrides.get(self.registry.name_of(agent_id))
            if isinstance(name, str):
                return view_policy_by_name(name, int(meta.knobs.get("window", 10)))
        return record.adapter.default_view(meta, agent_id)

    async def post_reply(
        self, channel_id: str, agent_id: str, causation_id: str, reply: AgentReply
    ) -> str | None:
        """Post an agent's turn result, shaped by the channel's adapter, in reply to ``causation_id``.

        Idempotent per ``(agent, causation_id)``: a second call returns the first reply's id.
        """
        record = self.channels.find(channel_id)
        key = (agent_id, causation_id)
        earlier = await self.store.find_by_causation(channel_id, agent_id, causation_id)
        if earlier is not None:
            return earlier.envelope_id
        if record is None:  # unknown (NotFoundError), or closed and no longer in memory
            meta = await self.channels.fetch(channel_id)
            probe = Envelope(channel_id=channel_id, sender_id=agent_id, causation_id=causation_id)
            refuse_outsiders_and_ended(meta, frozenset(meta.participant_ids()), probe, agent_id)
            raise ended_elsewhere(meta, agent_id)
        if key in record.replying:
            return None
        envelope = record.adapter.reply_envelope(record.metadata, record.state, agent_id, reply)
        if envelope is None:
            return None
        cause = await self.store.get_envelope(channel_id, causation_id)
        envelope = msgspec.structs.replace(
            envelope,
            causation_id=causation_id,
            depth=cause.depth if cause else 0,
            task_id=cause.task_id if cause else None,
            trace_id=cause.trace_id if cause else None,
        )
        record.replying.add(key)
        try:
            return await self.channels.post(envelope, agent_id)
        finally:
            record.replying.discard(key)


def _stamp_time(envelope_id: str) -> str:
    """The ``created_at`` the hub stamped with ``envelope_id`` (both come from one clock reading)."""
    try:
        return iso_from_ns(id_time_ns(envelope_id))
    except (ValueError, OverflowError, OSError):  # not an id this hub minted
        return ""
