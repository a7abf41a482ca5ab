"""The wire protocol, sans I/O: frame types, the JSON codec and control-plane op names.

Nothing here touches a socket or an event loop; transports move the bytes
that :func:`encode_frame` makes and hand received bytes to :func:`decode_frame`.
"""

from hubbub.protocol import ops
from hubbub.protocol.codec import decode_frame, encode_frame, frame_from_dict, frame_to_dict
from hubbub.protocol.frames import (
    FRAME_KINDS,
    FRAME_TYPES,
    ErrorFrame,
    Frame,
    HelloFrame,
    NotifyFrame,
    PingFrame,
    PongFrame,
    ReceiptFrame,
    ReceiptStatus,
    RequestFrame,
    ResponseFrame,
    WelcomeFrame,
)
from hubbub.protocol.ops import AG2_OPS, HUBBUB_OPS, OPS

__all__ = [
    "AG2_OPS",
    "FRAME_KINDS",
    "FRAME_TYPES",
    "HUBBUB_OPS",
    "OPS",
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
    "decode_frame",
    "encode_frame",
    "frame_from_dict",
    "frame_to_dict",
    "ops",
]
