"""The envelope: the hub-stamped record of one event in one channel.

Field names and order match the wire vocabulary AG2's network clients speak,
so an envelope encodes to exactly the object those clients decode.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "CHANNEL_EVENTS",
    "EV_CHANNEL_CLOSED",
    "EV_CHANNEL_EXPIRED",
    "EV_CHANNEL_INVITE",
    "EV_CHANNEL_INVITE_ACK",
    "EV_CHANNEL_INVITE_REJECT",
    "EV_CHANNEL_OPENED",
    "EV_CONTEXT_SET",
    "EV_EXPECTATION_VIOLATED",
    "EV_PACKET",
    "EV_TASK_CANCELLED",
    "EV_TASK_CANCEL_REQUEST",
    "EV_TEXT",
    "Envelope",
    "Priority",
    "is_bypass_event",
    "is_control_event",
    "visible_to",
]

Priority = Literal["background", "normal", "urgent"]

EV_TEXT = "ag2.msg.text"
"""Plain text: ``event_data = {"text": str}``."""
EV_PACKET = "ag2.packet"
"""One workflow turn: ``{"routing": {"kind": "text"|"handoff"|"finish", "tool"?, "target"?,
"reason"?}, "context_updates": {"set": {}, "delete": []}, "body": str}``."""
EV_CHANNEL_INVITE = "ag2.channel.invite"
EV_CHANNEL_INVITE_ACK = "ag2.channel.invite.ack"
EV_CHANNEL_INVITE_REJECT = "ag2.channel.invite.reject"
EV_CHANNEL_OPENED = "ag2.channel.opened"
EV_CHANNEL_CLOSED = "ag2.channel.closed"
EV_CHANNEL_EXPIRED = "ag2.channel.expired"
EV_EXPECTATION_VIOLATED = "ag2.expectation.violated"
EV_CONTEXT_SET = "ag2.context.set"
"""Channel context variables: ``{"set": {key: value}, "delete": [key]}``."""
EV_TASK_CANCEL_REQUEST = "ag2.task.cancel_request"
EV_TASK_CANCELLED = "ag2.task.cancelled"

CHANNEL_EVENTS: frozenset[str] = frozenset(
    {
        EV_CHANNEL_INVITE,
        EV_CHANNEL_INVITE_ACK,
        EV_CHANNEL_INVITE_REJECT,
        EV_CHANNEL_OPENED,
        EV_CHANNEL_CLOSED,
        EV_CHANNEL_EXPIRED,
    }
)


class Envelope(msgspec.Struct, kw_only=True, frozen=True):
    """One event in one channel.

    A client fills ``channel_id``, ``event_type``, ``event_data`` and, if it
    wants, ``audience`` (None = everyone in the channel), ``causation_id``,
    ``task_id``, ``trace_id``, ``depth``, ``idempotency_key`` and
    ``ttl_seconds``, and ``sender_id``: an agent the connection acts as (the
    hub refuses any other). The hub stamps ``envelope_id`` and ``created_at``.
    Envelopes are immutable: the hub stamps a copy.
    """

    channel_id: str
    sender_id: str = ""
    audience: list[str] | None = None
    event_type: str = EV_TEXT
    event_data: dict[str, Any] = msgspec.field(default_factory=dict)
    envelope_id: str = ""
    task_id: str | None = None
    causation_id: str | None = None
    trace_id: str | None = None
    priority: Priority = "normal"
    depth: int = 0
    idempotency_key: str | None = None
    created_at: str = ""
    ttl_seconds: int | None = None

    @property
    def text(self) -> str:
        """The text of an ``EV_TEXT`` envelope or the body of a packet, else ``""``."""
        data = self.event_data
        value = data.get("text")
        if value is None:
            value = data.get("body", "")
        return value if isinstance(value, str) else str(value)


_CONTROL: dict[str, bool] = {}
_BYPASS: dict[str, bool] = {}


def is_control_event(event_type: str) -> bool:
    """Channel lifecycle and task events: they bypass an adapter's turn rules."""
    known = _CONTROL.get(event_type)
    if known is None:
        known = event_type in CHANNEL_EVENTS or event_type.startswith("ag2.task.")
        if len(_CONTROL) < 4096:
            _CONTROL[event_type] = known
    return known


def is_bypass_event(event_type: str) -> bool:
    """Control events and hub notices (``EV_EXPECTATION_VIOLATED``): no adapter turn rules apply."""
    known = _BYPASS.get(event_type)
    if known is None:
        known = is_control_event(event_type) or event_type == EV_EXPECTATION_VIOLATED
        if len(_BYPASS) < 4096:
            _BYPASS[event_type] = known
    return known


def visible_to(envelope: Envelope, participant_id: str) -> bool:
    """Whether ``participant_id`` sees ``envelope``: the sender and its audience do."""
    if envelope.sender_id == participant_id or envelope.audience is None:
        return True
    return participant_id in envelope.audience
