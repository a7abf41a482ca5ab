"""What an agent is given on its turn, as the hub computes it."""

from __future__ import annotations

from typing import Any

import msgspec

from .channel import ChannelMetadata
from .envelope import Envelope

__all__ = ["PendingTurn", "TranscriptLine", "TurnContext"]


class TranscriptLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line an agent sees: who spoke (an id or a name, per the view policy) and what."""

    speaker: str
    text: str
    envelope_id: str = ""
    is_self: bool = False

    def render(self) -> str:
        """``speaker: text``."""
        return f"{self.speaker}: {self.text}"


class TurnContext(msgspec.Struct, kw_only=True):
    """The hub's answer to "is it my turn on this envelope, and what do I see?".

    ``is_turn`` is False when the adapter expects someone else, the envelope
    is no longer the one that put the turn on this agent, or the agent has
    already replied to it (``already_replied``); then nothing else is filled.
    """

    is_turn: bool
    reason: str = ""
    already_replied: bool = False
    channel: ChannelMetadata | None = None
    prompt: str = ""
    transcript: list[TranscriptLine] = msgspec.field(default_factory=list)
    names: dict[str, str] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    envelope: Envelope | None = None


class PendingTurn(msgspec.Struct, kw_only=True, frozen=True):
    """A turn the protocol still expects from an agent (see ``resume_pending_turns``)."""

    channel_id: str
    triggering_envelope_id: str | None
    expected_at: str = ""
