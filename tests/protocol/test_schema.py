"""docs/protocol.schema.json: current with the code, and true of the frames a live hub exchanges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from hubbub import Hub, serve_ws
from hubbub.protocol.frames import FRAME_KINDS
from hubbub.protocol.schema import RECORD_TYPES, json_schema, render
from tests.conftest import TIME_UNIT
from tests.protocol._jsonschema import KEYWORDS, errors, keywords_in

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "protocol.schema.json"
REGENERATE = ".venv/bin/python -m hubbub.protocol.schema > docs/protocol.schema.json"


def _errors(instance: Any, definition: str | None = None) -> list[str]:
    schema = json_schema()
    return errors(instance, {"$ref": f"#/$defs/{definition}"} if definition else schema, schema)


def test_checked_in_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == render(), (
        f"{SCHEMA_FILE.name} is out of date with the frame and record types; regenerate it "
        f"from the repository root with:  {REGENERATE}"
    )


def test_schema_is_the_frame_union_with_the_records_beside_it() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["discriminator"]["propertyName"] == "kind"
    assert sorted(schema["discriminator"]["mapping"]) == sorted(FRAME_KINDS)
    assert len(schema["anyOf"]) == len(FRAME_KINDS)
    for cls in RECORD_TYPES:
        assert cls.__name__ in schema["$defs"]
    assert schema["$defs"]["NotifyFrame"]["properties"]["envelope"] == {"$ref": "#/$defs/Envelope"}
    assert schema["$defs"]["HelloFrame"]["required"] == ["kind", "name"]
    assert schema["$defs"]["ReceiptFrame"]["properties"]["status"] == {"enum": ["ack", "nack"]}
    # Docstrings arrive dedented: plain text for readers of the JSON.
    assert "\n    " not in schema["$defs"]["HelloFrame"]["description"]


def test_the_checker_understands_every_keyword_the_schema_uses() -> None:
    assert keywords_in(json_schema()) <= KEYWORDS


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ({"kind": "hello"}, "missing required 'name'"),
        ({"kind": "receipt", "envelope_id": "e", "status": "maybe"}, "'maybe' not one of"),
        ({"kind": "request", "request_id": 1, "op": "get_agent"}, "expected string"),
        ({"kind": "notify", "envelope": {"event_type": "ag2.msg.text"}}, "missing required 'channel_id'"),
        ({"kind": "teleport"}, "matches none"),
    ],
)
def test_invalid_frames_fail(frame: dict[str, Any], problem: str) -> None:
    assert problem in " ".join(_errors(frame))


class _Raw:
    """A bare WebSocket client that keeps every frame it sends and receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self._unread: list[dict[str, Any]] = []
        self._ids = 0

    async def send(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)
        await self.ws.send(json.dumps(frame))

    async def take(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first frame not taken yet that is ``wanted``: responses and notifies interleave."""
        async with asyncio.timeout(10 * TIME_UNIT):
            while True:
                for frame in self._unread:
                    if wanted(frame):
                        self._unread.remove(frame)
                        return frame
                frame = json.loads(await self.ws.recv())
                self.received.append(frame)
                self._unread.append(frame)

    async def until(self, kind: str, **match: Any) -> dict[str, Any]:
        return await self.take(lambda f: f["kind"] == kind and all(f.get(k) == v for k, v in match.items()))

    async def notify(self, event_type: str) -> dict[str, Any]:
        return await self.take(lambda f: f["kind"] == "notify" and f["envelope"]["event_type"] == event_type)

    async def request(self, op: str, params: dict[str, Any]) -> Any:
        self._ids += 1
        request_id = f"r{self._ids}"
        await self.send({"kind": "request", "request_id": request_id, "op": op, "params": params})
        response = await self.until("response", request_id=request_id)
        assert response["ok"], response
        return response["result"]


async def test_frames_of_a_live_consulting_exchange_match_the_schema(hub: Hub) -> None:
    async with serve_ws(hub) as server:
        async with connect(server.url, compression=None) as ws:
            raw = _Raw(ws)
            # One connection hosts both ends of the channel.
            asker = await raw.request("register", {"passport": {"name": "asker"}})
            echo = await raw.request(
                "register", {"passport": {"name": "echo"}, "resume": {"claimed_capabilities": ["echo"]}}
            )
            await raw.send(
                {
                    "kind": "request",
                    "request_id": "open",
                    "op": "create_channel",
                    "params": {
                        "creator_id": asker["agent_id"],
                        "manifest_type": "consulting",
                        "participants": ["echo"],
                    },
                }
            )
            invite = (await raw.notify("ag2.channel.invite"))["envelope"]
            channel_id = invite["channel_id"]
            ack = {
                "channel_id": channel_id,
                "sender_id": echo["agent_id"],
                "event_type": "ag2.channel.invite.ack",
                "causation_id": invite["envelope_id"],
            }
            await raw.request("post_envelope", {"envelope": ack})
            opened = await raw.until("response", request_id="open")
            question = {"channel_id": channel_id, "sender_id": asker["agent_id"], "event_data": {"text": "?"}}
            await raw.request("post_envelope", {"envelope": question})
            turn = await raw.request(
                "turn_context",
                {
                    "channel_id": channel_id,
                    "agent_id": echo["agent_id"],
                    "envelope_id": (await raw.notify("ag2.msg.text"))["envelope"]["envelope_id"],
                },
            )
            assert turn["is_turn"] is True
            await raw.request(
                "post_reply",
                {
                    "channel_id": channel_id,
                    "agent_id": echo["agent_id"],
                    "causation_id": turn["envelope"]["envelope_id"],
                    "reply": {"text": "!"},
                },
            )
            closed = await raw.notify("ag2.channel.closed")
            await raw.send(
                {
                    "kind": "receipt",
                    "envelope_id": closed["envelope"]["envelope_id"],
                    "status": "ack",
                    "recipient_id": closed["recipient_id"],
                    "channel_id": channel_id,
                    "reason": "",
                }
            )
            pending = await raw.request("pending_turns_for", {"agent_id": echo["agent_id"]})
            await raw.send({"kind": "hello", "name": "nobody"})
            await raw.until("error")
            await raw.send({"kind": "ping"})
            await raw.until("pong")
        async with connect(server.url, compression=None) as ws:
            again = _Raw(ws)
            await again.send({"kind": "hello", "name": "echo", "since_envelope_id": None})
            await again.until("welcome")

    frames = raw.sent + raw.received + again.sent + again.received
    assert {f["kind"] for f in frames} == set(FRAME_KINDS)
    for frame in frames:
        assert _errors(frame) == [], frame
    assert _errors(asker, "Passport") == []
    assert _errors(opened["result"], "ChannelMetadata") == []
    assert _errors(turn, "TurnContext") == []
    assert pending == []
    # A record in the wrong place is caught: a passport is no channel.
    assert _errors(asker, "ChannelMetadata") != []
