"""The JSON codec: exact round trips, wire compatibility with ag2, and one error type for garbage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ag2.network.envelope import Envelope as Ag2Envelope
from ag2.network.transport import frames as ag2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubbub.errors import ProtocolError
from hubbub.model.envelope import Envelope
from hubbub.model.turn import TurnContext
from hubbub.protocol import (
    FRAME_KINDS,
    FRAME_TYPES,
    ErrorFrame,
    Frame,
    HelloFrame,
    NotifyFrame,
    PingFrame,
    PongFrame,
    ReceiptFrame,
    RequestFrame,
    ResponseFrame,
    WelcomeFrame,
    decode_frame,
    encode_frame,
    frame_from_dict,
    frame_to_dict,
)

FRAME_CLASSES = tuple(FRAME_TYPES.values())

ENVELOPE_VALUES: dict[str, Any] = {
    "channel_id": "ch-1",
    "sender_id": "agent-a",
    "audience": ["agent-b", "agent-c"],
    "event_type": "ag2.msg.text",
    "event_data": {"text": "héllo ✓", "n": [1, 2.5, None, True]},
    "envelope_id": "0190f3a2-0001",
    "task_id": "task-9",
    "causation_id": "0190f3a1-0007",
    "trace_id": "trace-3",
    "priority": "urgent",
    "depth": 2,
    "idempotency_key": "idem-1",
    "created_at": "2026-01-02T03:04:05.678Z",
    "ttl_seconds": 30,
}

# Each hubbub frame beside the ag2 frame it must equal on the wire, written out
# by hand on both sides so neither is derived from the other.
PAIRS: list[tuple[Frame, Any]] = [
    (
        HelloFrame(name="alice", auth_scheme="api_key", auth_claim={"key": "k-1"}, since_envelope_id="e-7"),
        ag2.HelloFrame(
            name="alice", auth_scheme="api_key", auth_claim={"key": "k-1"}, since_envelope_id="e-7"
        ),
    ),
    (HelloFrame(name="bob"), ag2.HelloFrame(name="bob")),
    (
        WelcomeFrame(endpoint_id="ep-1", hub_time="2026-01-02T03:04:05Z"),
        ag2.WelcomeFrame(endpoint_id="ep-1", hub_time="2026-01-02T03:04:05Z"),
    ),
    (PingFrame(), ag2.PingFrame()),
    (PongFrame(), ag2.PongFrame()),
    (
        RequestFrame(request_id="r-1", op="list_agents", params={"capability": "search", "limit": 5}),
        ag2.RequestFrame(request_id="r-1", op="list_agents", params={"capability": "search", "limit": 5}),
    ),
    (RequestFrame(request_id="r-2", op="hub_status"), ag2.RequestFrame(request_id="r-2", op="hub_status")),
    (
        ResponseFrame(request_id="r-1", ok=True, result=[{"agent_id": "a-1", "score": 0.5}]),
        ag2.ResponseFrame(request_id="r-1", ok=True, result=[{"agent_id": "a-1", "score": 0.5}]),
    ),
    (
        ResponseFrame(request_id="r-3", ok=False, error_code="not_found", error_message="no agent 'zed'"),
        ag2.ResponseFrame(request_id="r-3", ok=False, error_code="not_found", error_message="no agent 'zed'"),
    ),
    (
        ErrorFrame(code="auth_failed", message="bad key", envelope_id="e-1"),
        ag2.ErrorFrame(code="auth_failed", message="bad key", envelope_id="e-1"),
    ),
    (ErrorFrame(code="protocol_error", message="m"), ag2.ErrorFrame(code="protocol_error", message="m")),
    (
        NotifyFrame(envelope=Envelope(**ENVELOPE_VALUES), recipient_id="agent-b"),
        ag2.NotifyFrame(envelope=Ag2Envelope(**ENVELOPE_VALUES), recipient_id="agent-b"),
    ),
    (
        NotifyFrame(envelope=Envelope(channel_id="ch-2")),
        ag2.NotifyFrame(
            envelope=Ag2Envelope(
                channel_id="ch-2", sender_id="", audience=None, event_type="ag2.msg.text", event_data={}
            )
        ),
    ),
    (
        ReceiptFrame(envelope_id="e-1", status="nack", recipient_id="agent-b", channel_id="ch-1", reason="x"),
        ag2.ReceiptFrame(
            envelope_id="e-1", status="nack", recipient_id="agent-b", channel_id="ch-1", reason="x"
        ),
    ),
    (ReceiptFrame(envelope_id="e-2", status="ack"), ag2.ReceiptFrame(envelope_id="e-2", status="ack")),
]
FRAMES = [ours for ours, _ in PAIRS]


def test_samples_cover_every_kind() -> None:
    assert {frame.kind for frame in FRAMES} == set(FRAME_KINDS)


@pytest.mark.parametrize("frame", FRAMES, ids=repr)
def test_round_trip_bytes_and_str(frame: Frame) -> None:
    data = encode_frame(frame)
    assert decode_frame(data) == frame
    assert type(decode_frame(data)) is type(frame)
    assert decode_frame(data.decode()) == frame


@pytest.mark.parametrize("frame", FRAMES, ids=repr)
def test_round_trip_dict(frame: Frame) -> None:
    as_dict = frame_to_dict(frame)
    assert as_dict == json.loads(encode_frame(frame))
    assert frame_from_dict(as_dict) == frame


def test_encoding_is_compact_and_carries_every_field() -> None:
    assert encode_frame(HelloFrame(name="alice")) == (
        b'{"kind":"hello","name":"alice","auth_scheme":"none","auth_claim":{},"since_envelope_id":null}'
    )
    assert encode_frame(PingFrame()) == b'{"kind":"ping"}'
    assert encode_frame(ReceiptFrame(envelope_id="e-1", status="ack")) == (
        b'{"kind":"receipt","envelope_id":"e-1","status":"ack","recipient_id":"","channel_id":"","reason":""}'
    )
    # A notify frame leaves out what it does not carry (turn: only for agents that asked).
    assert frame_to_dict(NotifyFrame(envelope=Envelope(channel_id="c"), recipient_id="b")) == {
        "kind": "notify",
        "envelope": {
            "channel_id": "c",
            "sender_id": "",
            "audience": None,
            "event_type": "ag2.msg.text",
            "event_data": {},
            "envelope_id": "",
            "task_id": None,
            "causation_id": None,
            "trace_id": None,
            "priority": "normal",
            "depth": 0,
            "idempotency_key": None,
            "created_at": "",
            "ttl_seconds": None,
        },
        "recipient_id": "b",
    }


def test_a_turn_travels_with_a_notify_frame_to_clients_that_asked() -> None:
    envelope = Envelope(channel_id="c", envelope_id="e-1", event_data={"text": "hi"})
    turn = TurnContext(is_turn=True, prompt="hi", names={"a": "alice"}, envelope=envelope)
    frame = NotifyFrame(envelope=envelope, recipient_id="b", turn=turn)
    assert decode_frame(encode_frame(frame)) == frame
    assert frame_to_dict(frame)["turn"]["prompt"] == "hi"


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[repr(o) for o, _ in PAIRS])
def test_ag2_decodes_what_we_encode(ours: Frame, theirs: Any) -> None:
    assert ag2.decode_frame(json.loads(encode_frame(ours))) == theirs


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[repr(o) for o, _ in PAIRS])
def test_we_decode_what_ag2_encodes(ours: Frame, theirs: Any) -> None:
    assert decode_frame(json.dumps(ag2.encode_frame(theirs)).encode()) == ours


def test_unknown_fields_from_newer_clients_are_ignored() -> None:
    assert decode_frame(b'{"kind":"ping","protocol":2}') == PingFrame()
    frame = decode_frame(b'{"kind":"notify","envelope":{"channel_id":"c","shiny":1},"extra":[1]}')
    assert frame == NotifyFrame(envelope=Envelope(channel_id="c"))
    assert encode_frame(frame) == encode_frame(NotifyFrame(envelope=Envelope(channel_id="c")))


def _message(data: bytes | str) -> str:
    with pytest.raises(ProtocolError) as info:
        decode_frame(data)
    assert info.value.code == "protocol_error"
    return info.value.message


KINDS = "hello, welcome, ping, pong, request, response, error, notify, receipt"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"kind":"foo"}', f"unknown frame kind 'foo'; expected one of {KINDS}"),
        (b'{"name":"alice"}', f"frame has no 'kind' field; expected one of {KINDS}"),
        (b'{"kind":7}', "frame field 'kind' must be a string, got integer"),
        (b'{"kind":null}', "frame field 'kind' must be a string, got null"),
        (b"[1,2]", "frame must be a JSON object, got array"),
        (b'"hello"', "frame must be a JSON object, got string"),
        (b"null", "frame must be a JSON object, got null"),
        (b'{"kind":"request","request_id":"r","op":5}', "frame 'request': field 'op' expected str, got int"),
        (b'{"kind":"request","op":"x"}', "frame 'request': missing required field 'request_id'"),
        (
            b'{"kind":"request","request_id":"r","op":"x","params":[]}',
            "frame 'request': field 'params' expected object, got array",
        ),
        (
            b'{"kind":"request","request_id":"r","op":"x","params":{"a":1e999}}',
            "frame is not valid JSON: number out of range",
        ),
        (
            b'{"kind":"response","request_id":"r","ok":"yes"}',
            "frame 'response': field 'ok' expected bool, got str",
        ),
        (
            b'{"kind":"receipt","envelope_id":"e","status":"maybe"}',
            "frame 'receipt': field 'status' invalid enum value 'maybe'",
        ),
        (b'{"kind":"notify","envelope":{}}', "frame 'notify': missing required field 'envelope.channel_id'"),
        (
            b'{"kind":"notify","envelope":{"channel_id":"c","audience":["a",3]}}',
            "frame 'notify': field 'envelope.audience[1]' expected str, got int",
        ),
        (
            b'{"kind":"notify","envelope":{"channel_id":"c","depth":"2"}}',
            "frame 'notify': field 'envelope.depth' expected int, got str",
        ),
        (
            b'{"kind":"notify","envelope":{"channel_id":"c","priority":"asap"}}',
            "frame 'notify': field 'envelope.priority' invalid enum value 'asap'",
        ),
        (b'{"kind":"welcome","endpoint_id":"e"}', "frame 'welcome': missing required field 'hub_time'"),
        (b"[" * 100_000, "frame is nested too deeply"),
        (
            b'{"kind":"request","request_id":"r","op":"x","params":{"a":' + b"[" * 100_000,
            "frame is nested too deeply",
        ),
    ],
)
def test_bad_frames_name_the_problem(data: bytes, message: str) -> None:
    assert _message(data) == message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"nope",
        b'{"kind":"ping"} 1',
        b"\xff\xfe",
        b'"\xed\xa0\x80"',
        b'"\\ud800"',
        "{'kind': 'ping'}",
    ],
    ids=repr,
)
def test_not_json(data: bytes | str) -> None:
    assert _message(data).startswith("frame is not valid JSON: ")


def test_bad_key_type_in_dict_names_the_field() -> None:
    with pytest.raises(ProtocolError) as info:
        frame_from_dict({"kind": "hello", "name": "a", "auth_claim": {1: "x"}})
    assert info.value.message == "frame 'hello': a key in field 'auth_claim' expected str, got int"


def test_frame_from_dict_validates_like_decode() -> None:
    with pytest.raises(ProtocolError, match=r"^frame 'request': field 'op' expected str, got int$"):
        frame_from_dict({"kind": "request", "request_id": "r", "op": 5})
    with pytest.raises(ProtocolError, match=r"^unknown frame kind 'nope'"):
        frame_from_dict({"kind": "nope"})
    with pytest.raises(ProtocolError, match=r"^frame must be a JSON object, got array$"):
        frame_from_dict([])  # type: ignore[arg-type]


def test_error_keeps_the_msgspec_cause() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_frame(b'{"kind":"request","request_id":"r","op":5}')
    assert info.value.__cause__ is not None
    assert type(info.value.__cause__).__module__ == "msgspec"


def _deeply_nested(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


@pytest.mark.parametrize(
    "bad", [object(), "\ud800", _deeply_nested(100_000)], ids=["object", "lone-surrogate", "too-deep"]
)
def test_unencodable_values_raise_protocol_error(bad: object) -> None:
    frame = RequestFrame(request_id="r-1", op="post_envelope", params={"x": bad})
    with pytest.raises(ProtocolError, match=r"^frame 'request' cannot be encoded as JSON: "):
        encode_frame(frame)


# Fuzzing: whatever arrives, decode_frame returns a Frame or raises ProtocolError.

FUZZ = settings(max_examples=2000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_STRUCTURED = settings(FUZZ, max_examples=1000)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(FRAME_KINDS)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=15,
)


def _decode_or_error(data: bytes | str) -> Frame | ProtocolError:
    try:
        return decode_frame(data)
    except ProtocolError as exc:
        return exc


def _check(data: bytes | str) -> None:
    outcome = _decode_or_error(data)
    if isinstance(outcome, ProtocolError):
        assert outcome.message.startswith(("frame ", "unknown frame kind "))
    else:
        assert isinstance(outcome, FRAME_CLASSES)
        assert decode_frame(encode_frame(outcome)) == outcome


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ_STRUCTURED
@given(json_values)
def test_fuzz_random_json(value: object) -> None:
    text = json.dumps(value)
    _check(text)
    _check(text.encode())
    if isinstance(value, dict):
        value = {"kind": "request", **value}
        _check(json.dumps(value))


def _mutate(data: st.DataObject, value: dict[str, Any]) -> dict[str, Any]:
    """One structural change to a frame object: drop, retype, add or replace a field."""
    value = dict(value)
    keys = sorted(value)
    actions = ["drop", "retype", "add", "kind", "nested"] if keys else ["add", "kind"]
    action = data.draw(st.sampled_from(actions))
    if action == "drop":
        value.pop(data.draw(st.sampled_from(keys)))
    elif action == "retype":
        value[data.draw(st.sampled_from(keys))] = data.draw(json_values)
    elif action == "add":
        value[data.draw(st.text(max_size=12))] = data.draw(json_values)
    elif action == "kind":
        value["kind"] = data.draw(st.sampled_from(FRAME_KINDS) | json_scalars)
    elif isinstance(value.get("envelope"), dict):
        value["envelope"] = _mutate(data, value["envelope"])
    return value


@FUZZ_STRUCTURED
@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_mutated_frames(frame: Frame, data: st.DataObject) -> None:
    value = frame_to_dict(frame)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        value = _mutate(data, value)
    _check(json.dumps(value))
    try:
        result = frame_from_dict(value)
    except ProtocolError:
        return
    assert isinstance(result, FRAME_CLASSES)


@FUZZ
@given(st.sampled_from(FRAMES), st.data())
def test_fuzz_corrupted_bytes(frame: Frame, data: st.DataObject) -> None:
    raw = bytearray(encode_frame(frame))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(raw)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "insert" or position == len(raw):
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=3))
        elif action == "delete":
            del raw[position]
        else:
            raw[position] = data.draw(st.integers(min_value=0, max_value=255))
    _check(bytes(raw))
