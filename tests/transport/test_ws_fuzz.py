"""Thousands of bad frames at a live hub: each gets an error frame, a failed response or (for a
valid frame that needs no reply) nothing; nothing fails inside the hub; afterwards the same
connection and fresh well-behaved clients still work.

The generator is ``random.Random(seed)``: a failure names its seed and frame number, and
``HUBBUB_FUZZ_SEED`` / ``HUBBUB_FUZZ_FRAMES`` replay or widen a run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import string
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from hubbub import EV_TEXT, FunctionAgent, Hub, HubClient, WsLink, serve_ws
from hubbub.protocol.ops import OPS
from tests.conftest import TIME_UNIT

SEED = int(os.environ.get("HUBBUB_FUZZ_SEED", "20261122"))
FRAMES = int(os.environ.get("HUBBUB_FUZZ_FRAMES", "3000"))
BUDGET = 60 * TIME_UNIT
"""Wall-clock bound on the fuzzing itself; a run this slow is a hang worth a failure."""
WAIT = 5 * TIME_UNIT

PARAM_NAMES = [
    "passport",
    "agent_id",
    "name",
    "name_or_id",
    "resume",
    "rule",
    "skill_md",
    "auth_scheme",
    "auth_claim",
    "since_envelope_id",
    "agent_ids",
    "limit",
    "query",
    "sort_by",
    "capability",
    "kind",
    "creator_id",
    "participants",
    "manifest_type",
    "manifest_version",
    "knobs",
    "ttl",
    "labels",
    "intent",
    "channel_id",
    "reason",
    "envelope",
    "since",
    "until",
    "sender_id",
    "causation_id",
    "event_type",
    "envelope_id",
    "error",
    "reply",
    "task_id",
    "capabilities",
    "duration_ms",
    "state",
    "metadata",
    "outcome",
    "owner_id",
    "payload",
]
OP_PARAMS = {
    "register": "passport resume rule skill_md",
    "attach": "name auth_scheme auth_claim",
    "replay": "agent_id since_envelope_id",
    "get_agent": "name_or_id",
    "find_agent_id": "name",
    "names_for": "agent_ids",
    "get_resume": "agent_id",
    "get_rule": "agent_id",
    "get_skill": "agent_id",
    "list_agents": "limit query sort_by capability kind",
    "discover": "capability limit",
    "set_resume": "agent_id resume",
    "set_skill": "agent_id skill_md",
    "set_rule": "agent_id rule",
    "unregister": "agent_id",
    "create_channel": "creator_id manifest_type participants manifest_version knobs ttl labels intent",
    "get_channel": "channel_id",
    "list_channels": "agent_id state limit",
    "close_channel": "channel_id reason",
    "post_envelope": "envelope",
    "read_wal": "channel_id since until limit",
    "find_envelope_by_causation": "channel_id sender_id causation_id",
    "can_send": "channel_id sender_id event_type",
    "pending_turns_for": "agent_id",
    "report_turn_failure": "agent_id channel_id envelope_id error",
    "turn_context": "agent_id channel_id envelope_id",
    "post_reply": "agent_id channel_id causation_id reply",
    "task_event": "agent_id task_id kind capabilities duration_ms error",
    "observe_task": "owner_id task_id metadata state",
    "update_task": "owner_id task_id state error",
    "record_observation": "owner_id task_id outcome",
    "fire_task_event": "owner_id task_id payload",
}
"""The params each op reads (the ones it ignores are fuzzed too)."""
FRAME_FIELDS = [
    "kind",
    "request_id",
    "op",
    "params",
    "envelope_id",
    "status",
    "recipient_id",
    "channel_id",
    "reason",
    "name",
    "auth_scheme",
    "auth_claim",
    "since_envelope_id",
    "code",
    "message",
    "envelope",
    "endpoint_id",
    "hub_time",
    "ok",
    "result",
]


class Fuzzer:
    """Random frames, biased towards values the hub knows (ids, names) so they reach deep code."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names: list[str] = []
        self.agent_ids: list[str] = []
        self.channel_ids: list[str] = []
        self.envelope_ids: list[str] = []
        self.bound: list[str] = []
        """Agents the fuzzing connection acts as."""

    def text(self, max_len: int = 12) -> str:
        alphabet = string.printable + "éø漢\u0000\u200b\U0001f600"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randrange(max_len + 1)))

    def known(self) -> Any:
        pools = [p for p in (self.names, self.agent_ids, self.channel_ids, self.envelope_ids) if p]
        return self.rng.choice(self.rng.choice(pools)) if pools else self.text()

    def scalar(self) -> Any:
        r = self.rng
        return r.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                r.randrange(-(2**70), 2**70),
                r.random() * 1e6,
                1e308,
                "",
                self.text(),
                self.text(200),
                self.known(),
                self.known(),
                r.choice(sorted(OPS)),
                r.choice(["consulting", "conversation", "discussion", "workflow", "ack", "nack", "text"]),
            ]
        )

    def value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 3 or r < 0.6:
            return self.scalar()
        if r < 0.8:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        keys = PARAM_NAMES + FRAME_FIELDS
        return {
            (self.rng.choice(keys) if self.rng.random() < 0.8 else self.text()): self.value(depth + 1)
            for _ in range(self.rng.randrange(5))
        }

    def params(self, op: str) -> dict[str, Any]:
        """Mostly plausible params (so ops get past their first check), some random ones."""
        keys = OP_PARAMS.get(op, "").split()
        keys = [k for k in keys if self.rng.random() < 0.9]
        keys += self.rng.sample(PARAM_NAMES, self.rng.randrange(3))
        return {k: self.plausible(k) if self.rng.random() < 0.85 else self.value(1) for k in keys}

    def plausible(self, key: str) -> Any:
        r = self.rng
        if key in ("agent_id", "creator_id", "sender_id", "owner_id") and self.bound:
            return r.choice(self.bound if r.random() < 0.8 else self.agent_ids)
        if key == "channel_id" and self.channel_ids:
            return r.choice(self.channel_ids)
        if (
            key in ("envelope_id", "causation_id", "since", "until", "since_envelope_id")
            and self.envelope_ids
        ):
            return r.choice(self.envelope_ids)
        if key in ("name", "name_or_id"):
            return r.choice(self.names)
        if key in ("participants", "agent_ids"):
            return r.sample(self.names + self.agent_ids, r.randrange(3))
        if key == "manifest_type":
            return r.choice(["consulting", "conversation", "discussion", "workflow", "debate"])
        if key in ("limit", "manifest_version", "duration_ms"):
            return r.choice([0, 1, 2, 5, 1000, -1])
        if key in ("passport", "resume", "rule", "reply", "metadata", "payload", "auth_claim", "knobs"):
            return {"name": self.text(), "text": self.text(), "summary": self.text()}
        if key == "envelope":
            return self.envelope()
        if key in ("state", "outcome", "kind"):
            return r.choice(["open", "closed", "started", "succeeded", "failed", "completed", "agent"])
        return self.text()

    def envelope(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "channel_id": self.known(),
            "sender_id": self.known(),
            "event_type": self.rng.choice([EV_TEXT, "packet", "channel.invite.ack", self.text()]),
            "event_data": {"text": self.text()},
        }
        return self.mutate(frame) if self.rng.random() < 0.5 else frame

    def template(self, request_id: str) -> dict[str, Any]:
        """A well-formed frame of a random kind (its values may still name nothing real)."""
        kind = self.rng.choice(["request"] * 5 + ["receipt"] * 2 + ["hello", "ping", "pong", "error"])
        if kind == "request":
            op = self.rng.choice(sorted(OPS))
            params = self.params(op)
            if op == "post_envelope" or self.rng.random() < 0.1:
                params["envelope"] = self.envelope()
            return {"kind": kind, "request_id": request_id, "op": op, "params": params}
        if kind == "receipt":
            return {
                "kind": kind,
                "envelope_id": self.known(),
                "status": self.rng.choice(["ack", "nack"]),
                "recipient_id": self.known(),
                "channel_id": self.known(),
                "reason": self.text(),
            }
        if kind == "hello":
            return {
                "kind": kind,
                "name": self.rng.choice([self.text(), self.known()]),
                "auth_scheme": self.rng.choice(["none", "api_key", self.text()]),
                "auth_claim": self.rng.choice([{}, {"key": self.text()}]),
                "since_envelope_id": self.rng.choice([None, self.known()]),
            }
        if kind == "error":
            return {"kind": kind, "code": self.text(), "message": self.text()}
        return {"kind": kind}

    def mutate(self, frame: dict[str, Any]) -> dict[str, Any]:
        frame = dict(frame)
        for _ in range(self.rng.randrange(1, 4)):
            r = self.rng.random()
            if r < 0.3 and frame:
                del frame[self.rng.choice(sorted(frame))]
            elif r < 0.8:
                frame[self.rng.choice(sorted(frame) or FRAME_FIELDS)] = self.value(1)
            else:
                frame[self.rng.choice(FRAME_FIELDS)] = self.value(1)
        return frame

    def frame(self, request_id: str) -> str | bytes:
        """One bad (or merely pointless) frame; text frames carry JSON or garbage, binary anything."""
        r = self.rng.random()
        if r < 0.05:
            return self.rng.randbytes(self.rng.randrange(64))
        if r < 0.1:
            return self.text(64)
        if r < 0.15:
            return json.dumps(self.value())
        if r < 0.2:
            return json.dumps(
                {"kind": self.rng.choice([self.text(), "frame", "Request"]), "request_id": request_id}
            )
        if r < 0.25:
            return json.dumps({"kind": "request", "request_id": request_id, "op": self.text(), "params": {}})
        if r < 0.3:
            kind = self.rng.choice(["welcome", "response", "notify"])
            return json.dumps({"kind": kind, "request_id": request_id})
        frame = self.template(request_id)
        if r < 0.55:
            frame = self.mutate(frame)
        text = json.dumps(frame)
        if self.rng.random() < 0.03:
            text = text[: self.rng.randrange(len(text))]
        return text


class Inbox:
    """Everything the raw connection receives, sorted by kind."""

    def __init__(self) -> None:
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[dict[str, Any]] = []
        self.notifies: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self.pongs = 0
        self.changed = asyncio.Event()

    def add(self, frame: dict[str, Any]) -> None:
        kind = frame.get("kind")
        if kind == "response":
            self.responses.setdefault(frame["request_id"], []).append(frame)
        elif kind == "error":
            self.errors.append(frame)
        elif kind == "notify":
            self.notifies.append(frame)
        elif kind == "pong":
            self.pongs += 1
        else:
            self.other.append(frame)
        self.changed.set()

    async def wait(self, predicate: Any) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def pong_after(self, pongs: int) -> None:
        await self.wait(lambda: self.pongs > pongs)


async def read_into(ws: ClientConnection, inbox: Inbox) -> None:
    async for message in ws:
        inbox.add(json.loads(message))


async def request(
    ws: ClientConnection,
    inbox: Inbox,
    request_id: str,
    op: str,
    params: dict[str, Any],
    *,
    check: bool = True,
) -> Any:
    """The result of one request; a failure fails the test (``check``) or returns None."""
    await ws.send(json.dumps({"kind": "request", "request_id": request_id, "op": op, "params": params}))
    await inbox.wait(lambda: request_id in inbox.responses)
    [response] = inbox.responses[request_id]
    if not check and not response["ok"]:
        return None
    assert response["ok"], response
    return response["result"]


@pytest.fixture
async def hub() -> Any:
    async with Hub(invite_ack_timeout=0.5 * TIME_UNIT, nack_backoff=(0.01, 0.05)) as h:
        yield h


async def test_fuzzed_frames_leave_the_hub_healthy(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="hubbub")
    rng = random.Random(SEED)
    fuzz = Fuzzer(rng)
    async with serve_ws(hub, port=0) as server, HubClient(WsLink(server.url)) as peers:
        # Targets for the fuzz: agents on another connection, a channel between them, its envelopes.
        a = await peers.register(FunctionAgent(lambda t: "from a", name="peer_a"))
        b = await peers.register(FunctionAgent(lambda t: "from b", name="peer_b"))
        channel = await a.open("conversation", b.name)
        await channel.send("hello b")
        fuzz.names += [a.name, b.name, "nobody"]
        fuzz.agent_ids += [a.agent_id, b.agent_id]
        fuzz.channel_ids.append(channel.id)
        fuzz.envelope_ids += [e.envelope_id for e in await hub.read_wal(channel.id)]

        ws = await websockets.connect(server.url, compression=None, max_size=None)
        inbox = Inbox()
        reader = asyncio.create_task(read_into(ws, inbox))
        try:
            for i in range(3):
                passport = await request(ws, inbox, f"reg{i}", "register", {"passport": {"name": f"fz{i}"}})
                fuzz.names.append(passport["name"])
                fuzz.agent_ids.append(passport["agent_id"])
                fuzz.bound.append(passport["agent_id"])
            # A channel the fuzzing connection's own agent is in, so its ops reach deep code.
            own = await request(
                ws,
                inbox,
                "own",
                "create_channel",
                {"creator_id": fuzz.bound[0], "manifest_type": "conversation", "participants": [a.name]},
            )
            fuzz.channel_ids.append(own["channel_id"])

            loop = asyncio.get_running_loop()
            deadline = loop.time() + BUDGET
            sent: dict[str, str | bytes] = {}
            for n in range(FRAMES):
                assert loop.time() < deadline, f"seed {SEED}: only {n} frames within {BUDGET:g}s"
                request_id = f"f{n}"
                if n % 200 == 199:
                    # Fuzzed unregisters and closes use up the targets: make fresh ones.
                    passport = await request(
                        ws, inbox, f"reg{n}", "register", {"passport": {"name": f"fz{n}"}}
                    )
                    fuzz.names.append(passport["name"])
                    fuzz.agent_ids.append(passport["agent_id"])
                    fuzz.bound.append(passport["agent_id"])
                    own = await request(
                        ws,
                        inbox,
                        f"own{n}",
                        "create_channel",
                        {
                            "creator_id": passport["agent_id"],
                            "manifest_type": "conversation",
                            "participants": [a.name],
                        },
                        check=False,
                    )
                    if own is not None:
                        fuzz.channel_ids.append(own["channel_id"])
                if n % 200 == 0:
                    for channel_id in fuzz.channel_ids:
                        fuzz.envelope_ids += [e.envelope_id for e in await hub.read_wal(channel_id)]
                frame = fuzz.frame(request_id)
                sent[request_id] = frame
                pongs = inbox.pongs
                await ws.send(frame)
                # A ping after each frame: the hub reads frames in order, so its pong says the
                # frame before was taken in (and any synchronous error frame already sent).
                await ws.send('{"kind": "ping"}')
                try:
                    await inbox.pong_after(pongs)
                except TimeoutError:
                    pytest.fail(f"seed {SEED}: no pong after frame {n}: {frame!r}")

            # Every request that named its id got exactly one response (ok or not), nothing else did.
            named = {rid for rid, f in sent.items() if isinstance(f, str) and f'"request_id": "{rid}"' in f}
            answerable = _answerable(named, sent)
            await inbox.wait(lambda: all(rid in inbox.responses for rid in answerable))
            for rid in answerable:
                assert len(inbox.responses[rid]) == 1, (SEED, rid, sent[rid], inbox.responses[rid])
            # Other responses answer requests whose fuzzed request_id may repeat.
            responses = [r for rs in inbox.responses.values() for r in rs]
            for response in responses:
                assert isinstance(response["ok"], bool)
                if not response["ok"]:
                    assert response["error_code"], response
                    assert response["error_message"], response
            # What failed inside the hub says so (and is logged); a refusal names the problem.
            internal = [r for r in responses if "inside the hub" in r["error_message"]]
            internal += [e for e in inbox.errors if "inside the hub" in e["message"]]
            assert internal == [], (SEED, [(r, sent.get(r.get("request_id", ""))) for r in internal[:5]])
            assert all(e["message"] for e in inbox.errors)
            assert {f["kind"] for f in inbox.other} <= {"welcome"}
            assert len(inbox.errors) > FRAMES // 10  # the fuzz did throw plenty of bad frames
            assert not [r for r in caplog.records if r.name.startswith("hubbub")], [
                r.getMessage() for r in caplog.records
            ]

            # The same connection still works: a consulting exchange driven frame by frame.
            assert ws.state is websockets.protocol.State.OPEN
            await _raw_consult(ws, inbox, peers)
        finally:
            reader.cancel()
            await ws.close()

        # Fresh well-behaved clients too, and the hub still answers for itself.
        async with HubClient(WsLink(server.url)) as fresh:
            asker = await fresh.register(name="asker", handle_turns=False)
            await fresh.register(FunctionAgent(lambda t: f"you said {t.prompt}", name="helper"))
            consult = await asker.open("consulting", "helper")
            await consult.send("still alive?")
            final = await consult.wait_closed(timeout=WAIT)
            assert final.close_reason == "consulting_complete"
            texts = [e.text for e in await fresh.read_wal(consult.id) if e.event_type == EV_TEXT]
            assert texts == ["still alive?", "you said still alive?"]
            status = await fresh.hub_status()
            assert status["hub_id"] == hub.hub_id
        assert hub.status()["agents"] >= 7


def _answerable(named: set[str], sent: dict[str, str | bytes]) -> set[str]:
    """Ids of frames that parse as JSON objects of kind request with that id: they must be answered."""
    answerable = set()
    for rid in named:
        try:
            frame = json.loads(sent[rid])
        except ValueError:
            continue
        if isinstance(frame, dict) and frame.get("kind") == "request" and frame.get("request_id") == rid:
            answerable.add(rid)
    return answerable


async def _raw_consult(ws: ClientConnection, inbox: Inbox, peers: HubClient) -> None:
    await peers.register(FunctionAgent(lambda t: "an answer", name="raw_helper"))
    me = await request(ws, inbox, "after1", "register", {"passport": {"name": "raw_asker"}})
    meta = await request(
        ws,
        inbox,
        "after2",
        "create_channel",
        {"creator_id": me["agent_id"], "manifest_type": "consulting", "participants": ["raw_helper"]},
    )
    channel_id = meta["channel_id"]
    question = {"channel_id": channel_id, "sender_id": me["agent_id"], "event_data": {"text": "q?"}}
    await request(ws, inbox, "after3", "post_envelope", {"envelope": question})

    def answered() -> dict[str, Any] | None:
        for notify in inbox.notifies:
            envelope = notify["envelope"]
            if envelope["channel_id"] == channel_id and envelope["event_type"] == EV_TEXT:
                return notify
        return None

    await inbox.wait(lambda: answered() is not None)
    notify = answered()
    assert notify is not None
    assert notify["recipient_id"] == me["agent_id"]
    assert notify["envelope"]["event_data"]["text"] == "an answer"
    errors = len(inbox.errors)
    receipt = {
        "kind": "receipt",
        "envelope_id": notify["envelope"]["envelope_id"],
        "status": "ack",
        "recipient_id": me["agent_id"],
        "channel_id": channel_id,
    }
    await ws.send(json.dumps(receipt))
    pongs = inbox.pongs
    await ws.send('{"kind": "ping"}')
    await inbox.pong_after(pongs)
    status = await request(ws, inbox, "after4", "hub_status", {})
    assert status["channels"] >= 2
    assert len(inbox.errors) == errors
