"""Conversation: two participants, free-form, until closed, expired or ``max_turns``.

Anyone may speak at any time. The turn a default handler takes is "the other
party spoke last". Knobs: ``max_turns`` (close after that many texts),
``strict`` (refuse event types other than ``EV_TEXT``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..model.channel import ChannelManifest, ChannelMetadata, ChannelState, Expectation, ParticipantSchema
from ..model.envelope import EV_TEXT, Envelope
from ._common import check_participant_count, is_bypass, knob_int
from .base import AdapterResult, AgentReply, ExpectedTurn, default_turn_input, refuse, text_reply_envelope
from .views import ViewPolicy, WindowedSummary

__all__ = ["CONVERSATION", "ConversationAdapter", "ConversationState"]

CONVERSATION = "conversation"


class ConversationState(msgspec.Struct, frozen=True, kw_only=True):
    """Texts so far and who sent the last one."""

    turns: int = 0
    last_speaker_id: str | None = None
    last_envelope_id: str | None = None


class ConversationAdapter:
    """Exactly two participants, free-form."""

    state_type = ConversationState
    """Lets the hub snapshot and restore the folded state (msgspec-encodable)."""

    manifest = ChannelManifest(
        type=CONVERSATION,
        participants=ParticipantSchema(min=2, max=2, roles=["initiator", "respondent"]),
        knobs_schema={"max_turns": "int", "strict": "bool"},
        default_view_policy=WindowedSummary.name,
        expectations=[Expectation(name="max_silence", on_violation="audit", params={"seconds": 3600})],
    )

    def validate_create(self, metadata: ChannelMetadata) -> None:
        check_participant_count(metadata, 2, 2)
        knob_int(metadata, "max_turns")

    def initial_state(self, metadata: ChannelMetadata) -> ConversationState:
        return ConversationState()

    def fold(self, state: Any, envelope: Envelope) -> ConversationState:
        st: ConversationState = state
        if envelope.event_type != EV_TEXT:
            return st
        return ConversationState(
            turns=st.turns + 1, last_speaker_id=envelope.sender_id, last_envelope_id=envelope.envelope_id
        )

    def validate_send(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> None:
        if is_bypass(envelope) or envelope.event_type == EV_TEXT:
            return
        if metadata.knobs.get("strict"):
            raise refuse(
                metadata,
                envelope.sender_id,
                f"strict conversation takes only {EV_TEXT}, not {envelope.event_type!r}",
            )

    def on_accepted(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> AdapterResult:
        st: ConversationState = state
        limit = metadata.knobs.get("max_turns")
        if envelope.event_type == EV_TEXT and isinstance(limit, int) and st.turns >= limit:
            return AdapterResult(ChannelState.CLOSED, "max_turns")
        return AdapterResult()

    def expected_next(self, metadata: ChannelMetadata, state: Any) -> ExpectedTurn | None:
        st: ConversationState = state
        last = st.last_speaker_id
        if last is None:
            return None
        first, second = metadata.participants[0].agent_id, metadata.participants[1].agent_id
        return ExpectedTurn(second if last == first else first, st.last_envelope_id)

    def default_view(self, metadata: ChannelMetadata, participant_id: str) -> ViewPolicy:
        return WindowedSummary(10)

    def turn_input(self, envelope: Envelope) -> str | None:
        return default_turn_input(envelope)

    def reply_envelope(
        self, metadata: ChannelMetadata, state: Any, sender_id: str, reply: AgentReply
    ) -> Envelope | None:
        return text_reply_envelope(metadata, sender_id, reply)
