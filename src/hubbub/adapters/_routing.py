"""Targets and conditions: the built-in words of a transition graph.

Re-exported by :mod:`hubbub.adapters.transitions`; import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Protocol

import msgspec

from ..model.envelope import EV_PACKET, Envelope

__all__ = [
    "AgentTarget",
    "Always",
    "ContextEquals",
    "FromSpeaker",
    "RevertToInitiatorTarget",
    "RoundRobinTarget",
    "RoutingState",
    "StayTarget",
    "TerminateTarget",
    "ToolCalled",
    "TransitionCondition",
    "TransitionDecision",
    "TransitionTarget",
]
AgentId = Annotated[str, msgspec.Meta(min_length=1)]


class RoutingState(Protocol):
    """What targets and conditions may read: the workflow state after the turn.

    ``WorkflowState`` satisfies it; ``last_speaker_id`` is the sender of the
    envelope being routed.
    """

    @property
    def participant_order(self) -> Sequence[str]: ...
    @property
    def last_speaker_id(self) -> str | None: ...
    @property
    def creator_id(self) -> str: ...
    @property
    def turn_count(self) -> int: ...
    @property
    def context_vars(self) -> Mapping[str, Any]: ...


class TransitionDecision(msgspec.Struct, frozen=True):
    """Where the turn goes: ``next_speaker``, or None to close with ``close_reason``."""

    next_speaker: str | None
    close_reason: str = ""


class TransitionTarget(Protocol):
    """Where the next turn goes. ``resolve`` must be pure: no I/O, no clock."""

    name: ClassVar[str]

    def resolve(self, state: RoutingState, envelope: Envelope) -> TransitionDecision: ...


class TransitionCondition(Protocol):
    """When a transition fires. ``evaluate`` must be pure: no I/O, no clock."""

    name: ClassVar[str]

    def evaluate(self, state: RoutingState, envelope: Envelope) -> bool: ...


# Targets and conditions are frozen Structs that refuse unknown fields, so
# ``msgspec.convert`` checks a wire dict's args (names and types) in one step.


class AgentTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The turn goes to ``agent_id`` (which must be a participant)."""

    agent_id: AgentId
    name: ClassVar[str] = "agent"

    def resolve(self, state: RoutingState, envelope: Envelope) -> TransitionDecision:
        return TransitionDecision(self.agent_id)


class RoundRobinTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The participant after the last speaker in participant order, wrapping around.

    A last speaker outside the order hands the turn to the first participant.
    """

    name: ClassVar[str] = "round_robin"

    def resolve(self, state: RoutingState, envelope: Envelope) -> TransitionDecision:
        order = state.participant_order
        if not order:
            return TransitionDecision(None, "no_participants")
        anchor = state.last_speaker_id or envelope.sender_id
        if anchor not in order:
            return TransitionDecision(order[0])
        return TransitionDecision(order[(order.index(anchor) + 1) % len(order)])


class StayTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The same speaker again."""

    name: ClassVar[str] = "stay"

    def resolve(self, state: RoutingState, envelope: Envelope) -> TransitionDecision:
        return TransitionDecision(state.last_speaker_id or envelope.sender_id)


class RevertToInitiatorTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Back to the channel's creator."""

    name: ClassVar[str] = "revert_to_initiator"

    def resolve(self, state: RoutingState, envelope: Envelope) -> TransitionDecision:
        return TransitionDecision(state.creator_id)


class TerminateTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Nobody: the channel closes with ``reason``."""

    reason: str = "after_work"
    name: ClassVar[str] = "terminate"

    def resolve(self, state: RoutingState, envelope: Envelope) -> TransitionDecision:
        return TransitionDecision(None, self.reason)


class Always(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fires on every turn."""

    name: ClassVar[str] = "always"

    def evaluate(self, state: RoutingState, envelope: Envelope) -> bool:
        return True


class FromSpeaker(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fires when ``agent_id`` sent the turn being routed."""

    agent_id: AgentId
    name: ClassVar[str] = "from_speaker"

    def evaluate(self, state: RoutingState, envelope: Envelope) -> bool:
        return envelope.sender_id == self.agent_id


class ToolCalled(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fires when the turn is a packet whose ``routing.tool`` is ``tool_name``."""

    tool_name: Annotated[str, msgspec.Meta(min_length=1)]
    name: ClassVar[str] = "tool_called"

    def evaluate(self, state: RoutingState, envelope: Envelope) -> bool:
        if envelope.event_type != EV_PACKET:
            return False
        routing = envelope.event_data.get("routing")
        return isinstance(routing, dict) and routing.get("tool") == self.tool_name


class ContextEquals(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fires when context variable ``key`` equals ``value``; a missing key reads as None.

    The context seen includes updates carried by the packet being routed.
    """

    key: str
    value: Any
    name: ClassVar[str] = "context_equals"

    def evaluate(self, state: RoutingState, envelope: Envelope) -> bool:
        return bool(state.context_vars.get(self.key) == self.value)
