"""Wire frames: one JSON object per WebSocket text message, tagged by ``kind``.

Three families share one vocabulary, the one AG2's network clients speak:

* handshake: :class:`HelloFrame` (client → hub) and :class:`WelcomeFrame`
  (hub → client), or an :class:`ErrorFrame` when the hub refuses;
* control plane: :class:`RequestFrame` / :class:`ResponseFrame`, correlated
  by ``request_id``; every control call is one ``op`` (see :mod:`.ops`);
* data plane: :class:`NotifyFrame` (hub → client delivery) answered by a
  :class:`ReceiptFrame` (ack, or nack to have it redelivered).

:class:`PingFrame` / :class:`PongFrame` are the application heartbeat.

Field names, order and defaults are exactly those of ``ag2==1.2.1``
(``ag2.network.transport.frames``), whose decoder rejects unknown fields:
never add a field here. Anything new travels inside ``params`` / ``result``.

Frames are immutable values; derive a changed copy with
``msgspec.structs.replace``. ``frame.kind`` names the frame's tag, and
``Frame`` is a closed union, so ``match`` over it is exhaustive.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeAlias

import msgspec

from hubbub.model.envelope import Envelope
from hubbub.model.turn import TurnContext

__all__ = [
    "FRAME_KINDS",
    "FRAME_TYPES",
    "ErrorFrame",
    "Frame",
    "HelloFrame",
    "NotifyFrame",
    "PingFrame",
    "PongFrame",
    "ReceiptFrame",
    "ReceiptStatus",
    "RequestFrame",
    "ResponseFrame",
    "WelcomeFrame",
]

ReceiptStatus = Literal["ack", "nack"]


class _Frame(msgspec.Struct, frozen=True, tag_field="kind"):
    """Shared config: tagged by ``kind``, immutable, every field always encoded.

    Subclasses repeat ``frozen=True`` because mypy's dataclass_transform
    checks each class on its own.
    """


class HelloFrame(_Frame, tag="hello", frozen=True):
    """client → hub: open the connection and say who is connecting.

    ``name`` binds the connection to an existing identity (a new one is made
    with the ``register`` op; an unknown name gets an error frame,
    ``not_found``). ``auth_scheme`` and ``auth_claim`` go to the hub's auth
    adapter. ``since_envelope_id`` is the last envelope the client
    acked: when set, the hub first replays every later envelope addressed to
    ``name`` as fresh notify frames; ``None`` skips replay.
    """

    kind: ClassVar[str] = "hello"
    name: str
    auth_scheme: str = "none"
    auth_claim: dict[str, Any] = msgspec.field(default_factory=dict)
    since_envelope_id: str | None = None


class WelcomeFrame(_Frame, tag="welcome", frozen=True):
    """hub → client: handshake accepted; the connection's id and the hub clock (ISO-8601 Z)."""

    kind: ClassVar[str] = "welcome"
    endpoint_id: str
    hub_time: str


class PingFrame(_Frame, tag="ping", frozen=True):
    """Heartbeat, either direction; the peer answers with a :class:`PongFrame`."""

    kind: ClassVar[str] = "ping"


class PongFrame(_Frame, tag="pong", frozen=True):
    """Heartbeat reply, either direction."""

    kind: ClassVar[str] = "pong"


class RequestFrame(_Frame, tag="request", frozen=True):
    """client → hub: invoke one control-plane operation.

    ``op`` is one of :data:`hubbub.protocol.ops.OPS`; ``params`` is its JSON
    argument object. ``request_id`` is minted by the client, unique among
    its in-flight requests; the hub echoes it on the :class:`ResponseFrame`.
    """

    kind: ClassVar[str] = "request"
    request_id: str
    op: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class ResponseFrame(_Frame, tag="response", frozen=True):
    """hub → client: the outcome of the :class:`RequestFrame` with the same ``request_id``.

    On success ``ok`` is true and ``result`` holds the JSON return value
    (possibly ``None``). On failure ``ok`` is false, ``error_code`` is a
    :class:`hubbub.errors.HubbubError` ``code`` (map it back with
    :func:`hubbub.errors.error_for_code`) and ``error_message`` says why.
    """

    kind: ClassVar[str] = "response"
    request_id: str
    ok: bool
    result: Any = None
    error_code: str = ""
    error_message: str = ""


class ErrorFrame(_Frame, tag="error", frozen=True):
    """hub → client: a refusal outside any request, e.g. a failed handshake or a bad frame.

    ``code`` is a :class:`hubbub.errors.HubbubError` ``code``; ``envelope_id``
    names the envelope concerned, when there is one. Failures of a request
    travel on its :class:`ResponseFrame` instead.
    """

    kind: ClassVar[str] = "error"
    code: str
    message: str
    envelope_id: str | None = None


class NotifyFrame(_Frame, tag="notify", frozen=True, omit_defaults=True):
    """hub → client: deliver ``envelope`` to the agent ``recipient_id``.

    One connection may host several agents, so the client routes by
    ``recipient_id``. The client must answer with a :class:`ReceiptFrame`;
    until it acks, the envelope is redelivered on reconnect. ``turn``: the
    recipient's turn context on a text or packet (what the ``turn_context``
    op would answer), sent only to agents registered or attached with
    ``push_turns`` and only when the hub has it in memory; absent otherwise
    (so clients that do not ask, such as ag2's, never see the field).
    """

    kind: ClassVar[str] = "notify"
    envelope: Envelope
    recipient_id: str = ""
    turn: TurnContext | None = None


class ReceiptFrame(_Frame, tag="receipt", frozen=True):
    """client → hub: ack or nack one :class:`NotifyFrame`.

    ``recipient_id`` and ``channel_id`` (required: the defaults only let a
    frame without them decode, to be refused with an error naming them) name
    whose cursor, in which channel, the receipt moves: the hub keeps one
    cursor per (recipient, channel). ``"ack"`` means
    processed (never redelivered); ``"nack"`` means redeliver. ``reason`` is
    free text for diagnostics.
    """

    kind: ClassVar[str] = "receipt"
    envelope_id: str
    status: ReceiptStatus
    recipient_id: str = ""
    channel_id: str = ""
    reason: str = ""


Frame: TypeAlias = (
    HelloFrame
    | WelcomeFrame
    | PingFrame
    | PongFrame
    | RequestFrame
    | ResponseFrame
    | ErrorFrame
    | NotifyFrame
    | ReceiptFrame
)
"""Every frame on the wire; ``match`` over it is exhaustive."""

FRAME_TYPES: dict[str, type[Frame]] = {
    cls.kind: cls
    for cls in (
        HelloFrame,
        WelcomeFrame,
        PingFrame,
        PongFrame,
        RequestFrame,
        ResponseFrame,
        ErrorFrame,
        NotifyFrame,
        ReceiptFrame,
    )
}
"""Frame class by ``kind``."""

FRAME_KINDS: tuple[str, ...] = tuple(FRAME_TYPES)
"""Every ``kind``, in the order the vocabulary lists them."""
