"""Broadcast: one text from the creator to every other participant, then closed.

One-way: only the creator posts, exactly one ``EV_TEXT``; nobody's turn comes
after it, so recipients' default handlers never answer. ``Hub.broadcast``
opens these channels already active (no invite handshake); opened with
``AgentClient.open("broadcast", [...])`` they take invites like any other type.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..model.channel import ChannelManifest, ChannelMetadata, ChannelState, ParticipantSchema
from ..model.envelope import EV_TEXT, Envelope
from ._common import check_participant_count, is_bypass
from .base import AdapterResult, AgentReply, ExpectedTurn, default_turn_input, refuse
from .views import FullTranscript, ViewPolicy

__all__ = ["BROADCAST", "BroadcastAdapter", "BroadcastState"]

BROADCAST = "broadcast"


class BroadcastState(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the one text was sent."""

    sent: bool = False
    envelope_id: str | None = None


class BroadcastAdapter:
    """The creator and one or more recipients; one text from the creator; closes after it."""

    state_type = BroadcastState
    """Lets the hub snapshot and restore the folded state (msgspec-encodable)."""

    manifest = ChannelManifest(
        type=BROADCAST,
        participants=ParticipantSchema(min=2, max=None, roles=["initiator", "participant"]),
        default_view_policy=FullTranscript.name,
    )

    def validate_create(self, metadata: ChannelMetadata) -> None:
        check_participant_count(metadata, 2, None)

    def initial_state(self, metadata: ChannelMetadata) -> BroadcastState:
        return BroadcastState()

    def fold(self, state: Any, envelope: Envelope) -> BroadcastState:
        st: BroadcastState = state
        if envelope.event_type != EV_TEXT or st.sent:
            return st
        return BroadcastState(sent=True, envelope_id=envelope.envelope_id)

    def validate_send(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> None:
        st: BroadcastState = state
        sender = envelope.sender_id
        if is_bypass(envelope):
            return
        if sender != metadata.creator_id:
            raise refuse(metadata, sender, f"only the sender {metadata.creator_id} posts to a broadcast")
        if envelope.event_type != EV_TEXT:
            raise refuse(metadata, sender, f"a broadcast carries one {EV_TEXT}, not {envelope.event_type!r}")
        if st.sent:
            raise refuse(
                metadata, sender, "the broadcast was already sent; broadcast again for a new message"
            )

    def on_accepted(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> AdapterResult:
        st: BroadcastState = state
        if envelope.event_type == EV_TEXT and st.sent:
            return AdapterResult(ChannelState.CLOSED, "broadcast_sent")
        return AdapterResult()

    def expected_next(self, metadata: ChannelMetadata, state: Any) -> ExpectedTurn | None:
        st: BroadcastState = state
        return None if st.sent else ExpectedTurn(metadata.creator_id, None)

    def default_view(self, metadata: ChannelMetadata, participant_id: str) -> ViewPolicy:
        return FullTranscript()

    def turn_input(self, envelope: Envelope) -> str | None:
        return default_turn_input(envelope)

    def reply_envelope(
        self, metadata: ChannelMetadata, state: Any, sender_id: str, reply: AgentReply
    ) -> Envelope | None:
        return None
