"""Frame types: the same fields, order and defaults as ag2's, immutable, re-exported."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest
from ag2.network.transport import frames as ag2_frames

import hubbub.protocol
from hubbub.model.envelope import Envelope
from hubbub.protocol import codec, frames, ops
from hubbub.protocol.frames import (
    FRAME_KINDS,
    FRAME_TYPES,
    HelloFrame,
    NotifyFrame,
    ReceiptFrame,
    RequestFrame,
    ResponseFrame,
)

REQUIRED = "<required>"


def _ag2_fields(cls: type[Any]) -> list[tuple[str, object]]:
    result: list[tuple[str, object]] = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = REQUIRED
        result.append((field.name, default))
    return result


def _our_fields(cls: type[Any]) -> list[tuple[str, object]]:
    result: list[tuple[str, object]] = []
    for field in msgspec.structs.fields(cls):
        if field.default is not msgspec.NODEFAULT:
            default = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            default = field.default_factory()
        else:
            default = REQUIRED
        result.append((field.name, default))
    return result


def test_kinds_are_the_ag2_vocabulary_in_order() -> None:
    assert FRAME_KINDS == (
        "hello",
        "welcome",
        "ping",
        "pong",
        "request",
        "response",
        "error",
        "notify",
        "receipt",
    )


HUBBUB_ONLY = {"notify": [("turn", None)]}
"""Fields ag2's frames lack: left out of the encoding unless set (only for clients that ask)."""


@pytest.mark.parametrize("kind", FRAME_KINDS)
def test_fields_order_and_defaults_match_ag2(kind: str) -> None:
    ours = FRAME_TYPES[kind]
    theirs = getattr(ag2_frames, ours.__name__)
    assert theirs.kind == kind
    assert _our_fields(ours) == _ag2_fields(theirs) + HUBBUB_ONLY.get(kind, [])
    if kind in HUBBUB_ONLY:
        assert ours.__struct_config__.omit_defaults


@pytest.mark.parametrize("kind", FRAME_KINDS)
def test_kind_attribute_is_the_wire_tag(kind: str) -> None:
    cls = FRAME_TYPES[kind]
    assert cls.kind == kind
    assert cls.__struct_config__.tag == kind
    assert cls.__struct_config__.tag_field == "kind"
    assert "kind" not in cls.__struct_fields__


def test_positional_construction_follows_ag2_order() -> None:
    frame = ReceiptFrame("e1", "nack", "agent-1", "ch-1", "busy")
    assert frame == ReceiptFrame(
        envelope_id="e1", status="nack", recipient_id="agent-1", channel_id="ch-1", reason="busy"
    )


def test_defaults() -> None:
    hello = HelloFrame(name="alice")
    assert (hello.auth_scheme, hello.auth_claim, hello.since_envelope_id) == ("none", {}, None)
    response = ResponseFrame(request_id="r1", ok=True)
    assert (response.result, response.error_code, response.error_message) == (None, "", "")
    assert RequestFrame(request_id="r1", op="hub_status").params == {}


def test_mutable_defaults_are_not_shared() -> None:
    first, second = HelloFrame(name="a"), HelloFrame(name="b")
    first.auth_claim["key"] = "secret"
    assert second.auth_claim == {}


def test_frames_are_immutable() -> None:
    frame = RequestFrame(request_id="r1", op="get_agent")
    with pytest.raises(AttributeError):
        frame.op = "register"  # type: ignore[misc]
    assert msgspec.structs.replace(frame, op="register").op == "register"


def test_frames_compare_by_value() -> None:
    envelope = Envelope(channel_id="ch-1", sender_id="a", event_data={"text": "hi"})
    assert NotifyFrame(envelope=envelope, recipient_id="b") == NotifyFrame(
        envelope=Envelope(channel_id="ch-1", sender_id="a", event_data={"text": "hi"}), recipient_id="b"
    )


def test_package_reexports_every_public_name() -> None:
    exported = set(hubbub.protocol.__all__)
    for module in (frames, codec):
        assert set(module.__all__) <= exported, module.__name__
    assert {"AG2_OPS", "HUBBUB_OPS", "OPS", "ops"} <= exported
    for name in hubbub.protocol.__all__:
        assert getattr(hubbub.protocol, name) is not None
    assert hubbub.protocol.ops is ops
