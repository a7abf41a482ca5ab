"""Discussion: two or more participants taking turns round robin, creator first.

Only the expected speaker may send a text; the turn passes to the next
participant in join order. Ends by close, TTL, or ``max_turns`` texts.
Knobs: ``max_turns``, ``strict`` (refuse event types other than ``EV_TEXT``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..model.channel import ChannelManifest, ChannelMetadata, ChannelState, Expectation, ParticipantSchema
from ..model.envelope import EV_TEXT, Envelope
from ._common import check_participant_count, is_bypass, knob_int
from .base import AdapterResult, AgentReply, ExpectedTurn, default_turn_input, refuse, text_reply_envelope
from .views import NamedWindowedSummary, ViewPolicy

__all__ = ["DISCUSSION", "DiscussionAdapter", "DiscussionState"]

DISCUSSION = "discussion"


class DiscussionState(msgspec.Struct, frozen=True, kw_only=True):
    """Speaking order, whose turn it is, and how many texts so far."""

    order: tuple[str, ...]
    next_index: int = 0
    turns: int = 0
    last_envelope_id: str | None = None

    @property
    def expected_speaker(self) -> str:
        """The participant whose turn it is."""
        return self.order[self.next_index]


class DiscussionAdapter:
    """Two or more participants, round robin by join order."""

    state_type = DiscussionState
    """Lets the hub snapshot and restore the folded state (msgspec-encodable)."""

    manifest = ChannelManifest(
        type=DISCUSSION,
        participants=ParticipantSchema(min=2, roles=["initiator", "participant"]),
        knobs_schema={"ordering": "str", "max_turns": "int", "strict": "bool"},
        default_view_policy=NamedWindowedSummary.name,
        expectations=[
            Expectation(name="turn_within", on_violation="notify_channel", params={"seconds": 300})
        ],
    )

    def validate_create(self, metadata: ChannelMetadata) -> None:
        check_participant_count(metadata, 2, None)
        knob_int(metadata, "max_turns")
        ordering = metadata.knobs.get("ordering", "round_robin")
        if ordering != "round_robin":
            raise refuse(
                metadata, metadata.creator_id, f"discussion ordering must be 'round_robin', got {ordering!r}"
            )

    def initial_state(self, metadata: ChannelMetadata) -> DiscussionState:
        order = tuple(p.agent_id for p in sorted(metadata.participants, key=lambda p: p.order))
        return DiscussionState(order=order)

    def fold(self, state: Any, envelope: Envelope) -> DiscussionState:
        st: DiscussionState = state
        if envelope.event_type != EV_TEXT:
            return st
        return DiscussionState(
            order=st.order,
            next_index=(st.next_index + 1) % len(st.order),
            turns=st.turns + 1,
            last_envelope_id=envelope.envelope_id,
        )

    def validate_send(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> None:
        st: DiscussionState = state
        if is_bypass(envelope):
            return
        sender = envelope.sender_id
        if envelope.event_type != EV_TEXT:
            if metadata.knobs.get("strict"):
                raise refuse(
                    metadata, sender, f"strict discussion takes only {EV_TEXT}, not {envelope.event_type!r}"
                )
            return
        if sender != st.expected_speaker:
            raise refuse(
                metadata, sender, f"out of turn: round robin expects {st.expected_speaker} to speak next"
            )

    def on_accepted(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> AdapterResult:
        st: DiscussionState = state
        limit = metadata.knobs.get("max_turns")
        if envelope.event_type == EV_TEXT and isinstance(limit, int) and st.turns >= limit:
            return AdapterResult(ChannelState.CLOSED, "max_turns")
        return AdapterResult()

    def expected_next(self, metadata: ChannelMetadata, state: Any) -> ExpectedTurn | None:
        st: DiscussionState = state
        return ExpectedTurn(st.expected_speaker, st.last_envelope_id)

    def default_view(self, metadata: ChannelMetadata, participant_id: str) -> ViewPolicy:
        return NamedWindowedSummary(2 * len(metadata.participants))

    def turn_input(self, envelope: Envelope) -> str | None:
        return default_turn_input(envelope)

    def reply_envelope(
        self, metadata: ChannelMetadata, state: Any, sender_id: str, reply: AgentReply
    ) -> Envelope | None:
        return text_reply_envelope(metadata, sender_id, reply)
