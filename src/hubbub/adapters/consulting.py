"""Consulting: one question from the initiator, one reply from the respondent, then closed.

Strict: only ``EV_TEXT`` is a turn; any other non-control event is refused.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..model.channel import ChannelManifest, ChannelMetadata, ChannelState, Expectation, ParticipantSchema
from ..model.envelope import EV_TEXT, Envelope
from ._common import check_participant_count, is_bypass
from .base import AdapterResult, AgentReply, ExpectedTurn, default_turn_input, refuse, text_reply_envelope
from .views import FullTranscript, ViewPolicy

__all__ = ["CONSULTING", "ConsultingAdapter", "ConsultingState"]

CONSULTING = "consulting"


class ConsultingState(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the question and the reply have been sent."""

    asked: bool = False
    answered: bool = False
    last_envelope_id: str | None = None


class ConsultingAdapter:
    """Exactly two participants; strict one question, one reply; auto-closes after the reply."""

    state_type = ConsultingState
    """Lets the hub snapshot and restore the folded state (msgspec-encodable)."""

    manifest = ChannelManifest(
        type=CONSULTING,
        participants=ParticipantSchema(min=2, max=2, roles=["initiator", "respondent"]),
        default_view_policy=FullTranscript.name,
        expectations=[
            Expectation(name="acks_within", on_violation="auto_close", params={"seconds": 30}),
            Expectation(name="reply_within", on_violation="auto_close", params={"seconds": 600}),
        ],
    )

    def validate_create(self, metadata: ChannelMetadata) -> None:
        check_participant_count(metadata, 2, 2)

    def initial_state(self, metadata: ChannelMetadata) -> ConsultingState:
        return ConsultingState()

    def fold(self, state: Any, envelope: Envelope) -> ConsultingState:
        st: ConsultingState = state
        if envelope.event_type != EV_TEXT or st.answered:
            return st
        if not st.asked:
            return ConsultingState(asked=True, last_envelope_id=envelope.envelope_id)
        return ConsultingState(asked=True, answered=True, last_envelope_id=envelope.envelope_id)

    def validate_send(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> None:
        st: ConsultingState = state
        sender = envelope.sender_id
        if is_bypass(envelope):
            return
        if envelope.event_type != EV_TEXT:
            raise refuse(
                metadata, sender, f"consulting takes only {EV_TEXT} turns, not {envelope.event_type!r}"
            )
        if st.answered:
            raise refuse(
                metadata, sender, "the question was already answered; open a new channel to ask again"
            )
        if not st.asked and sender != metadata.creator_id:
            raise refuse(metadata, sender, f"the initiator {metadata.creator_id} must ask first")
        if st.asked and sender == metadata.creator_id:
            raise refuse(metadata, sender, "one question per consulting channel; wait for the reply")

    def on_accepted(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> AdapterResult:
        st: ConsultingState = state
        if envelope.event_type == EV_TEXT and st.answered:
            return AdapterResult(ChannelState.CLOSED, "consulting_complete")
        return AdapterResult()

    def expected_next(self, metadata: ChannelMetadata, state: Any) -> ExpectedTurn | None:
        st: ConsultingState = state
        if not st.asked:
            return ExpectedTurn(metadata.creator_id, None)
        if not st.answered:
            respondent = next(p for p in metadata.participant_ids() if p != metadata.creator_id)
            return ExpectedTurn(respondent, st.last_envelope_id)
        return None

    def default_view(self, metadata: ChannelMetadata, participant_id: str) -> ViewPolicy:
        return FullTranscript()

    def turn_input(self, envelope: Envelope) -> str | None:
        return default_turn_input(envelope)

    def reply_envelope(
        self, metadata: ChannelMetadata, state: Any, sender_id: str, reply: AgentReply
    ) -> Envelope | None:
        return text_reply_envelope(metadata, sender_id, reply)
