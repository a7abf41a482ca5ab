"""Frames to JSON bytes and back, with one error type for anything malformed.

:func:`decode_frame` and :func:`frame_from_dict` raise
:class:`~hubbub.errors.ProtocolError`, and nothing else, for any input that
is not a valid frame; its message names the problem in plain words, ready to
send back to the peer in an ``error`` frame.

Unknown fields are accepted and ignored, at the top level and inside a
notify frame's envelope, so a newer client can talk to this hub. Frames this
module encodes always carry every field of their kind and nothing more,
which is what AG2's strict decoder needs.

Callers enforce a size limit before decoding; this module does not.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from hubbub.errors import ProtocolError
from hubbub.protocol.frames import FRAME_KINDS, FRAME_TYPES, Frame

__all__ = ["decode_frame", "encode_frame", "frame_from_dict", "frame_to_dict"]

_ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[Frame] = msgspec.json.Decoder(Frame)
_ANY_DECODER = msgspec.json.Decoder()

_EXPECTED_KINDS = ", ".join(FRAME_KINDS)
_AT_KEY = re.compile(r"^(?P<body>.*) - at `key` in `\$(?P<path>[^`]*)`$", re.DOTALL)
_AT_PATH = re.compile(r"^(?P<body>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def encode_frame(frame: Frame) -> bytes:
    """The frame as one compact JSON object (UTF-8), every field included.

    Raises :class:`ProtocolError` if a value inside ``params``, ``result`` or
    an envelope cannot be written as JSON (an unsupported type, a lone
    surrogate in a string, nesting too deep).
    """
    try:
        return _ENCODER.encode(frame)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"frame {frame.kind!r} cannot be encoded as JSON: {exc}") from exc


def decode_frame(data: bytes | str) -> Frame:
    """Parse one JSON frame; raises :class:`ProtocolError` if it is not a valid frame."""
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        invalid = exc
    except (msgspec.DecodeError, UnicodeError) as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError("frame is nested too deeply") from exc
    # Slow path, only for invalid frames: re-read as plain JSON to say which
    # frame kind was meant before naming the bad field.
    try:
        raw = _ANY_DECODER.decode(data)
    except msgspec.ValidationError as exc:  # a number JSON allows but Python cannot hold
        body = str(exc).partition(" - at ")[0]
        raise ProtocolError(f"frame is not valid JSON: {_plain(body)}") from exc
    except (msgspec.DecodeError, UnicodeError) as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError("frame is nested too deeply") from exc
    raise ProtocolError(_describe(raw, str(invalid))) from invalid


def frame_to_dict(frame: Frame) -> dict[str, Any]:
    """The frame as plain JSON-compatible Python values, ``kind`` included."""
    result: dict[str, Any] = msgspec.to_builtins(frame)
    return result


def frame_from_dict(data: dict[str, Any]) -> Frame:
    """Build a frame from plain Python values, validated exactly as :func:`decode_frame` does."""
    try:
        frame: Frame = msgspec.convert(data, Frame)
    except msgspec.ValidationError as exc:
        raise ProtocolError(_describe(data, str(exc))) from exc
    except RecursionError as exc:
        raise ProtocolError("frame is nested too deeply") from exc
    return frame


def _describe(raw: object, problem: str) -> str:
    """Plain words for why ``raw`` is not a frame, given msgspec's ``problem``."""
    if not isinstance(raw, dict):
        return f"frame must be a JSON object, got {_json_type(raw)}"
    if "kind" not in raw:
        return f"frame has no 'kind' field; expected one of {_EXPECTED_KINDS}"
    kind = raw["kind"]
    if not isinstance(kind, str):
        return f"frame field 'kind' must be a string, got {_json_type(kind)}"
    if kind not in FRAME_TYPES:
        return f"unknown frame kind {kind!r}; expected one of {_EXPECTED_KINDS}"
    return f"frame {kind!r}: {_describe_field(problem)}"


def _describe_field(problem: str) -> str:
    """msgspec's "Expected `str`, got `int` - at `$.op`" as "field 'op' expected str, got int"."""
    if match := _AT_KEY.match(problem):
        where = _path(match["path"])
        owner = f"field {where!r}" if where else "the frame"
        return f"a key in {owner} {_plain(match['body'])}"
    path = ""
    body = problem
    if match := _AT_PATH.match(problem):
        path, body = _path(match["path"]), match["body"]
    if missing := _MISSING.match(body):
        name = f"{path}.{missing['name']}" if path else missing["name"]
        return f"missing required field {name!r}"
    return f"field {path!r} {_plain(body)}" if path else _plain(body)


def _path(raw: str) -> str:
    return raw.removeprefix(".")


def _plain(body: str) -> str:
    body = body.replace("`", "")
    return body[:1].lower() + body[1:]


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)
