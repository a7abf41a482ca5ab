"""Channel records: what a channel is (manifest), where it stands (metadata)."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from .envelope import EV_CHANNEL_EXPIRED, Envelope

__all__ = [
    "ChannelManifest",
    "ChannelMetadata",
    "ChannelState",
    "Expectation",
    "Participant",
    "ParticipantRole",
    "ParticipantSchema",
]


class ChannelState(enum.StrEnum):
    """PENDING (invites out) → ACTIVE (all acked) → CLOSING → CLOSED, or EXPIRED by TTL."""

    PENDING = "pending"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """Closed or expired: the channel takes no more sends."""
        return self in (ChannelState.CLOSED, ChannelState.EXPIRED)


class ParticipantRole(enum.StrEnum):
    """The creator is the initiator; a 2-party channel has a respondent, larger ones participants."""

    INITIATOR = "initiator"
    RESPONDENT = "respondent"
    PARTICIPANT = "participant"


class ParticipantSchema(msgspec.Struct, kw_only=True):
    """How many participants an adapter takes (``max`` None = no limit)."""

    min: int
    max: int | None = None
    roles: list[str] = msgspec.field(default_factory=list)


class Expectation(msgspec.Struct, kw_only=True):
    """A timing contract the hub watches, e.g. ``reply_within`` 600 s → ``auto_close``."""

    name: str
    on_violation: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    applies_to: list[str] | None = None


class ChannelManifest(msgspec.Struct, kw_only=True):
    """What a channel type is: its adapter key, participant bounds and expectations."""

    type: str
    version: int = 1
    participants: ParticipantSchema = msgspec.field(default_factory=lambda: ParticipantSchema(min=2))
    knobs_schema: dict[str, str] = msgspec.field(default_factory=dict)
    default_view_policy: str = "full_transcript"
    expectations: list[Expectation] = msgspec.field(default_factory=list)


class Participant(msgspec.Struct, kw_only=True):
    """One member of a channel; ``order`` is 0 for the initiator, then join order."""

    agent_id: str
    role: ParticipantRole
    order: int
    joined_at: str = ""


class ChannelMetadata(msgspec.Struct, kw_only=True):
    """The lifecycle record of one channel; ``manifest`` is snapshotted at creation."""

    channel_id: str
    manifest: ChannelManifest
    creator_id: str
    participants: list[Participant]
    state: ChannelState
    created_at: str
    expires_at: str | None = None
    closed_at: str | None = None
    close_reason: str = ""
    parent_channel_id: str | None = None
    knobs: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    required_acks: int | None = None
    pending_acks: list[str] = msgspec.field(default_factory=list)
    rejected_by: list[str] = msgspec.field(default_factory=list)

    @property
    def id(self) -> str:
        """The channel id."""
        return self.channel_id

    def participant_ids(self) -> list[str]:
        """Participant agent ids in join order."""
        return [p.agent_id for p in self.participants]

    def is_terminal(self) -> bool:
        """Closed or expired."""
        return self.state.is_terminal

    def end_with(self, closing: Envelope) -> None:
        """Take what a closing (``EV_CHANNEL_CLOSED``) or expiring envelope says of the channel's
        end: its state, close reason and close time (nothing else changes when a channel ends)."""
        expired = closing.event_type == EV_CHANNEL_EXPIRED
        self.state = ChannelState.EXPIRED if expired else ChannelState.CLOSED
        data = closing.event_data
        reason = data.get("reason") if isinstance(data, dict) else None
        self.close_reason = reason if isinstance(reason, str) else "closed"
        self.closed_at = closing.created_at
