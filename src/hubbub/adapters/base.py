"""The adapter contract: how a channel type governs turn-taking.

An adapter is pure. Its state is a fold over the channel's WAL; the hub keeps
the folded state cached, so ``validate_send`` and ``on_accepted`` are O(1):

* ``validate_send(metadata, state, envelope)`` sees the state *before* the
  envelope and raises :class:`~hubbub.errors.ChannelRuleError` to refuse it;
* ``fold(state, envelope)`` returns the state *after* it;
* ``on_accepted(metadata, state, envelope)`` sees the state after it and may
  ask the hub to close the channel.

Channel lifecycle and task events (``ag2.channel.*``, ``ag2.task.*``) bypass
turn rules in every built-in adapter.

An adapter may also set ``state_type`` (a msgspec Struct class): then a
durable hub snapshots its folded state and restarts without refolding the
whole WAL. Without it the hub refolds from the start.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from ..errors import ChannelRuleError
from ..model.channel import ChannelManifest, ChannelMetadata, ChannelState
from ..model.envelope import EV_PACKET, EV_TEXT, Envelope
from .views import ViewPolicy

__all__ = [
    "AdapterResult",
    "AgentReply",
    "ChannelAdapter",
    "ExpectedTurn",
    "Finish",
    "Handoff",
    "default_turn_input",
    "refuse",
    "text_reply_envelope",
]


class AdapterResult(NamedTuple):
    """What the hub should do after accepting an envelope (``None`` = nothing)."""

    next_state: ChannelState | None = None
    close_reason: str = ""


class ExpectedTurn(NamedTuple):
    """Who must act next, and which envelope put the turn on them (None = none yet)."""

    agent_id: str
    triggering_envelope_id: str | None = None


class Handoff(msgspec.Struct, kw_only=True, frozen=True):
    """An agent's reply in a workflow that passes the turn to ``target`` (an agent id)."""

    target: str
    tool: str = "handoff"
    reason: str = ""


class Finish(msgspec.Struct, kw_only=True, frozen=True):
    """An agent's reply in a workflow that ends it."""

    reason: str = "finished"
    tool: str = "finish"


class AgentReply(msgspec.Struct, kw_only=True, frozen=True):
    """What an agent produced on its turn, before the adapter shapes it into an envelope.

    ``tool`` names a routing tool the agent called (``ToolCalled`` conditions
    match it); ``context_set`` / ``context_delete`` update workflow context.
    """

    text: str = ""
    handoff: Handoff | None = None
    finish: Finish | None = None
    tool: str | None = None
    context_set: dict[str, Any] = msgspec.field(default_factory=dict)
    context_delete: list[str] = msgspec.field(default_factory=list)


@runtime_checkable
class ChannelAdapter(Protocol):
    """A channel type. Register one with ``Hub.register_adapter`` to add a type.

    Every method is pure: no I/O, no clock, no randomness, so the hub can
    refold a WAL after a restart and reach the same state.
    """

    manifest: ChannelManifest

    def validate_create(self, metadata: ChannelMetadata) -> None:
        """Raise :class:`ChannelRuleError` if the channel cannot be created as asked."""
        ...

    def initial_state(self, metadata: ChannelMetadata) -> Any:
        """The state of a fresh channel."""
        ...

    def fold(self, state: Any, envelope: Envelope) -> Any:
        """The state after ``envelope``; must not mutate ``state``."""
        ...

    def validate_send(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> None:
        """Raise :class:`ChannelRuleError` if ``envelope`` may not be sent now."""
        ...

    def on_accepted(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> AdapterResult:
        """After the fold: ask the hub to move the channel on (e.g. auto-close)."""
        ...

    def expected_next(self, metadata: ChannelMetadata, state: Any) -> ExpectedTurn | None:
        """Who the protocol waits for, or None (free-form or finished)."""
        ...

    def default_view(self, metadata: ChannelMetadata, participant_id: str) -> ViewPolicy:
        """How ``participant_id`` sees the transcript unless told otherwise."""
        ...

    def turn_input(self, envelope: Envelope) -> str | None:
        """The prompt an inbound envelope gives the next speaker, or None to skip."""
        ...

    def reply_envelope(
        self, metadata: ChannelMetadata, state: Any, sender_id: str, reply: AgentReply
    ) -> Envelope | None:
        """Shape an agent's reply into the envelope this channel type expects (None = silent)."""
        ...


def refuse(metadata: ChannelMetadata, sender_id: str, rule: str) -> ChannelRuleError:
    """A :class:`ChannelRuleError` naming the channel, the agent and the rule broken."""
    return ChannelRuleError(
        f"{metadata.manifest.type} channel {metadata.channel_id} refused a send from {sender_id}: {rule}",
        channel_id=metadata.channel_id,
        agent_id=sender_id,
        reason=rule,
    )


def default_turn_input(envelope: Envelope) -> str | None:
    """The text of an ``EV_TEXT`` or the body of an ``EV_PACKET``; None for anything else."""
    if envelope.event_type in (EV_TEXT, EV_PACKET):
        return envelope.text
    return None


def text_reply_envelope(metadata: ChannelMetadata, sender_id: str, reply: AgentReply) -> Envelope | None:
    """An ``EV_TEXT`` carrying the reply's text, or None when the agent said nothing."""
    if not reply.text:
        return None
    return Envelope(
        channel_id=metadata.channel_id,
        sender_id=sender_id,
        event_type=EV_TEXT,
        event_data={"text": reply.text},
    )
