"""Expectations fire once per broken contract, through the handler they name.

Clocks here are a few hundredths of a second (scaled by TIME_UNIT). Where a
test shows that something did NOT fire, a later "sentinel" expectation on the
same channel fires first and the test waits for it: deadlines fire in time
order, so by then the earlier one had its chance.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from hubbub import (
    EV_EXPECTATION_VIOLATED,
    AccessDeniedError,
    AgentClient,
    ChannelState,
    DiscussionAdapter,
    Expectation,
    FunctionAgent,
    Hub,
    HubClient,
    Passport,
    TransitionGraph,
    UsageError,
    WorkflowAdapter,
)
from hubbub.adapters.transitions import AgentTarget, FromSpeaker, Transition
from hubbub.hub.expectations import Violation
from hubbub.model._time import from_iso
from tests.conftest import TIME_UNIT
from tests.hub._waiting import audit_records

SHORT = 0.05 * TIME_UNIT
"""A clock nobody answers in time in these tests."""
TURN = 0.2 * TIME_UNIT
"""A clock an agent that speaks at once always beats (the creator's opening turn)."""


def expect(
    name: str, on_violation: str, seconds: float, applies_to: list[str] | None = None
) -> dict[str, Any]:
    """One entry of the ``expectations`` knob."""
    entry: dict[str, Any] = {"name": name, "on_violation": on_violation, "params": {"seconds": seconds}}
    if applies_to is not None:
        entry["applies_to"] = applies_to
    return entry


async def quiet(client: HubClient, name: str) -> AgentClient:
    return await client.register(name=name, handle_turns=False)


async def violations_in(hub: Hub, channel_id: str) -> list[dict[str, Any]]:
    """The ``event_data`` of every EV_EXPECTATION_VIOLATED envelope in the channel's WAL."""
    return [e.event_data for e in await hub.read_wal(channel_id) if e.event_type == EV_EXPECTATION_VIOLATED]


class Recorder:
    """A violation handler that keeps what it was given."""

    def __init__(self) -> None:
        self.got: list[Violation] = []
        self.fired = asyncio.Event()

    async def __call__(self, violation: Violation) -> None:
        self.got.append(violation)
        self.fired.set()


# the four built-in expectations


async def test_acks_within_auto_close_fails_the_open_and_closes_the_channel(
    hub: Hub, client: HubClient
) -> None:
    alice = await quiet(client, "alice")
    offline = await hub.register(Passport(name="offline"))
    knobs = {"expectations": [expect("acks_within", "auto_close", SHORT)]}
    with pytest.raises(AccessDeniedError) as err:
        # Far below the hub's invite_ack_timeout, so only the expectation can end this open.
        await asyncio.wait_for(alice.open("consulting", "offline", knobs=knobs), 2 * TIME_UNIT)
    assert err.value.reason == "expectation_violated:acks_within"
    assert "closed before it opened: expectation_violated:acks_within" in str(err.value)
    meta = hub.get_channel(err.value.channel_id or "")
    assert meta.state is ChannelState.CLOSED
    assert meta.close_reason == "expectation_violated:acks_within"
    [record] = await audit_records(hub, "expectation_violated", channel_id=meta.channel_id)
    assert record.reason == "acks_within"
    assert record.agent_id == offline.agent_id
    assert record.data["violators"] == [offline.agent_id]
    assert record.data["on_violation"] == "auto_close"


async def test_reply_within_notifies_the_channel_once_per_unanswered_text(
    hub: Hub, client: HubClient
) -> None:
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    # The second, later expectation makes the hub look at the channel again after the
    # first fired: a violation that is not remembered as fired would be posted twice.
    knobs = {
        "expectations": [
            expect("reply_within", "notify_channel", SHORT),
            expect("reply_within", "audit", 3 * SHORT),
        ]
    }
    channel = await alice.open("conversation", "bob", knobs=knobs)

    def audited(r: Any) -> bool:
        return bool(r.data["on_violation"] == "audit")

    first = await channel.send("anyone there?")
    await audit_records(hub, "expectation_violated", where=audited, channel_id=channel.id)
    second = await channel.send("hello?")
    await audit_records(hub, "expectation_violated", count=2, where=audited, channel_id=channel.id)

    violations = await violations_in(hub, channel.id)
    assert [v["trigger_envelope_id"] for v in violations] == [first, second]
    for v in violations:
        assert v["name"] == "reply_within"
        assert v["violators"] == [bob.agent_id]
        assert v["on_violation"] == "notify_channel"
        assert v["seconds"] == SHORT
    [notice, _] = [e for e in await channel.read() if e.event_type == EV_EXPECTATION_VIOLATED]
    assert notice.sender_id == "hub"
    assert (await channel.info()).state is ChannelState.ACTIVE


async def test_an_answer_stops_the_reply_clock_and_starts_one_for_the_other_side(
    hub: Hub, client: HubClient
) -> None:
    alice = await quiet(client, "alice")
    await client.register(FunctionAgent(lambda turn: "pong", name="bob"))
    channel = await alice.open(
        "conversation", "bob", knobs={"expectations": [expect("reply_within", "audit", TURN)]}
    )
    ping = await channel.send("ping")
    [record] = await audit_records(hub, "expectation_violated", channel_id=channel.id)
    [_, pong] = [e for e in await channel.read() if e.event_type == "ag2.msg.text"]
    assert pong.causation_id == ping
    assert record.data["violators"] == [alice.agent_id]
    assert record.data["trigger_envelope_id"] == pong.envelope_id


async def test_max_silence_is_audited_and_a_text_restarts_it(hub: Hub, client: HubClient) -> None:
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    channel = await alice.open(
        "conversation", "bob", knobs={"expectations": [expect("max_silence", "audit", SHORT)]}
    )
    [record] = await audit_records(hub, "expectation_violated", channel_id=channel.id)
    assert record.reason == "max_silence"
    assert record.data["violators"] == [alice.agent_id, bob.agent_id]
    assert record.data["trigger_envelope_id"] is None
    assert record.data["on_violation"] == "audit"
    text = await channel.send("breaking the silence")
    records = await audit_records(hub, "expectation_violated", count=2, channel_id=channel.id)
    assert [r.data["trigger_envelope_id"] for r in records] == [None, text]
    # audit only records: the channel carries on and nothing was posted into it.
    assert (await channel.info()).state is ChannelState.ACTIVE
    assert await violations_in(hub, channel.id) == []


async def test_turn_within_auto_closes_a_discussion_whose_speaker_stays_silent(
    hub: Hub, client: HubClient
) -> None:
    lead = await quiet(client, "lead")
    x = await quiet(client, "x")
    await quiet(client, "y")
    knobs = {"expectations": [expect("turn_within", "auto_close", TURN)]}
    channel = await lead.open("discussion", ["x", "y"], knobs=knobs)
    topic = await channel.send("the topic")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.state is ChannelState.CLOSED
    assert final.close_reason == "expectation_violated:turn_within"
    [record] = await audit_records(hub, "expectation_violated", channel_id=channel.id)
    assert record.reason == "turn_within"
    assert record.data["violators"] == [x.agent_id]
    assert record.data["trigger_envelope_id"] == topic


# who an expectation applies to


@pytest.mark.parametrize(
    ("applies_to", "fires"),
    [("respondent", True), ("initiator", False), ("bob", True), ("alice", False)],
)
async def test_applies_to_filters_violators_by_role_or_agent_id(
    hub: Hub, client: HubClient, applies_to: str, fires: bool
) -> None:
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    ids = {"alice": alice.agent_id, "bob": bob.agent_id}
    target = ids.get(applies_to, applies_to)
    knobs = {
        "expectations": [
            expect("reply_within", "audit", SHORT, applies_to=[target]),
            expect("reply_within", "audit", 3 * SHORT),
        ]
    }
    channel = await alice.open("conversation", "bob", knobs=knobs)
    text = await channel.send("bob, are you there?")
    await audit_records(hub, "expectation_violated", where=lambda r: r.data["seconds"] == 3 * SHORT)
    filtered = [
        r
        for r in await hub.audit.query(kind="expectation_violated", channel_id=channel.id)
        if r.data["seconds"] == SHORT
    ]
    if fires:
        assert [(r.data["violators"], r.data["trigger_envelope_id"]) for r in filtered] == [
            ([bob.agent_id], text)
        ]
    else:
        assert filtered == []


async def test_applies_to_narrows_the_violators_of_a_channel_wide_expectation(
    hub: Hub, client: HubClient
) -> None:
    seen = Recorder()
    hub.register_violation_handler("page", seen)
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    knobs = {"expectations": [expect("max_silence", "page", SHORT, applies_to=["respondent"])]}
    await alice.open("conversation", "bob", knobs=knobs)
    await asyncio.wait_for(seen.fired.wait(), 5 * TIME_UNIT)
    assert [v.violators for v in seen.got] == [[bob.agent_id]]


# handlers and configuration


async def test_a_registered_handler_gets_the_violation(hub: Hub, client: HubClient) -> None:
    page = Recorder()
    hub.register_violation_handler("page", page)
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    channel = await alice.open(
        "conversation", "bob", knobs={"expectations": [expect("reply_within", "page", SHORT)]}
    )
    text = await channel.send("urgent")
    sent_at = from_iso((await channel.read())[-1].created_at)
    await asyncio.wait_for(page.fired.wait(), 5 * TIME_UNIT)
    [violation] = page.got
    assert violation == Violation(
        name="reply_within",
        channel_id=channel.id,
        violators=[bob.agent_id],
        on_violation="page",
        seconds=SHORT,
        trigger_envelope_id=text,
        at=violation.at,
    )
    assert from_iso(violation.at) >= sent_at + SHORT
    [record] = await audit_records(hub, "expectation_violated", channel_id=channel.id)
    assert record.data == msgspec.to_builtins(violation)


async def test_set_expectations_replaces_the_manifest_for_new_channels_of_that_type(
    hub: Hub, client: HubClient
) -> None:
    page = Recorder()
    hub.register_violation_handler("page", page)
    override = [Expectation(name="reply_within", on_violation="page", params={"seconds": SHORT})]
    hub.set_expectations("conversation", override)
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await channel.send("no knob here")
    await asyncio.wait_for(page.fired.wait(), 5 * TIME_UNIT)
    assert [(v.name, v.channel_id) for v in page.got] == [("reply_within", channel.id)]
    assert hub.expectations.resolve(hub.channels.get(channel.id)) == override
    other = await alice.open("consulting", "bob")
    consulting = hub.channels.get(other.id)
    assert hub.expectations.resolve(consulting) == consulting.adapter.manifest.expectations


async def test_the_channel_knob_wins_over_the_type_override(hub: Hub, client: HubClient) -> None:
    by_type, by_knob = Recorder(), Recorder()
    hub.register_violation_handler("by_type", by_type)
    hub.register_violation_handler("by_knob", by_knob)
    hub.set_expectations(
        "conversation", [Expectation(name="reply_within", on_violation="by_type", params={"seconds": SHORT})]
    )
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    knobs = {
        "expectations": [expect("reply_within", "by_knob", SHORT), expect("reply_within", "audit", 3 * SHORT)]
    }
    channel = await alice.open("conversation", "bob", knobs=knobs)
    await channel.send("which clock runs?")
    await audit_records(hub, "expectation_violated", where=lambda r: r.data["on_violation"] == "audit")
    assert [v.on_violation for v in by_knob.got] == ["by_knob"]
    assert by_type.got == []


@pytest.mark.parametrize(
    ("knob", "message"),
    [
        ([expect("reply_whenever", "audit", 1)], "unknown expectation 'reply_whenever'"),
        ([expect("reply_within", "page_someone", 1)], "unknown on_violation 'page_someone'"),
        ([expect("reply_within", "audit", 0)], "needs params={'seconds': N} with N > 0"),
        ([expect("reply_within", "audit", -5)], "needs params={'seconds': N} with N > 0"),
        ([{"name": "reply_within", "on_violation": "audit"}], "needs params={'seconds': N} with N > 0"),
        (
            [{"name": "reply_within", "on_violation": "audit", "params": {"seconds": "5s"}}],
            "got {'seconds': '5s'}",
        ),
        ("soon", "knob 'expectations' of channel"),
        ([{"name": "reply_within"}], "is malformed"),
        ([{"name": "reply_within", "on_violation": "audit", "params": 5}], "is malformed"),
    ],
)
async def test_a_bad_expectations_knob_is_refused_before_the_channel_exists(
    hub: Hub, client: HubClient, knob: Any, message: str
) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    with pytest.raises(UsageError) as err:
        await alice.open("conversation", "bob", knobs={"expectations": knob})
    assert message in str(err.value)
    assert hub.list_channels() == []


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        (
            Expectation(name="sometime", on_violation="audit", params={"seconds": 1}),
            "unknown expectation 'sometime'",
        ),
        (
            Expectation(name="max_silence", on_violation="shout", params={"seconds": 1}),
            "unknown on_violation 'shout'",
        ),
        (Expectation(name="max_silence", on_violation="audit", params={"seconds": 0}), "with N > 0"),
        (Expectation(name="max_silence", on_violation="audit", params={"seconds": True}), "with N > 0"),
    ],
)
async def test_set_expectations_refuses_a_bad_expectation(
    hub: Hub, client: HubClient, expectation: Expectation, message: str
) -> None:
    with pytest.raises(UsageError) as err:
        hub.set_expectations("conversation", [expectation])
    assert message in str(err.value)
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    record = hub.channels.get(channel.id)
    assert hub.expectations.resolve(record) == record.adapter.manifest.expectations


async def test_a_handler_is_usable_once_registered(hub: Hub) -> None:
    expectation = Expectation(name="reply_within", on_violation="page", params={"seconds": 1})
    with pytest.raises(UsageError):
        hub.set_expectations("conversation", [expectation])
    hub.register_violation_handler("page", Recorder())
    hub.set_expectations("conversation", [expectation])


# what the adapters declare


def test_discussion_and_workflow_declare_turn_within() -> None:
    discussion = DiscussionAdapter.manifest.expectations
    workflow = WorkflowAdapter.manifest.expectations
    assert [(e.name, e.on_violation) for e in discussion] == [("turn_within", "notify_channel")]
    assert [(e.name, e.on_violation) for e in workflow] == [
        ("turn_within", "audit"),
        ("turn_within", "auto_close"),
    ]
    assert all(e.params["seconds"] > 0 for e in [*discussion, *workflow])


def shrunk(declared: list[Expectation], first_seconds: float) -> list[dict[str, Any]]:
    """The declared expectations as a knob, every clock scaled so the first runs ``first_seconds``."""
    scale = first_seconds / declared[0].params["seconds"]
    return [
        msgspec.to_builtins(msgspec.structs.replace(e, params={"seconds": e.params["seconds"] * scale}))
        for e in declared
    ]


async def test_the_declared_discussion_turn_within_really_fires(hub: Hub, client: HubClient) -> None:
    lead = await quiet(client, "lead")
    x = await quiet(client, "x")
    await quiet(client, "y")
    knobs = {"expectations": shrunk(DiscussionAdapter.manifest.expectations, TURN)}
    channel = await lead.open("discussion", ["x", "y"], knobs=knobs)
    topic = await channel.send("the topic")
    notice = await lead.wait_for_channel_event(
        channel.id, lambda e: e.event_type == EV_EXPECTATION_VIOLATED, timeout=5 * TIME_UNIT
    )
    assert notice.event_data["name"] == "turn_within"
    assert notice.event_data["violators"] == [x.agent_id]
    assert notice.event_data["trigger_envelope_id"] == topic


async def test_the_declared_workflow_turn_within_audits_then_closes(hub: Hub, client: HubClient) -> None:
    user = await quiet(client, "user")
    worker = await quiet(client, "worker")
    graph = TransitionGraph(
        initial_speaker=user.agent_id,
        transitions=[Transition(when=FromSpeaker(user.agent_id), then=AgentTarget(worker.agent_id))],
    )
    knobs = {"graph": graph.to_dict(), "expectations": shrunk(WorkflowAdapter.manifest.expectations, TURN)}
    channel = await user.open("workflow", "worker", knobs=knobs)
    task = await channel.send("please do the thing")
    final = await channel.wait_closed(timeout=5 * TIME_UNIT)
    assert final.close_reason == "expectation_violated:turn_within"
    records = await audit_records(hub, "expectation_violated", count=2, channel_id=channel.id)
    assert [r.data["on_violation"] for r in records] == ["audit", "auto_close"]
    assert all(r.data["violators"] == [worker.agent_id] for r in records)
    assert all(r.data["trigger_envelope_id"] == task for r in records)


async def test_violations_wait_for_the_clock(hub: Hub, client: HubClient) -> None:
    """A prompt answer is no violation, and nothing is audited before the clock runs out."""
    alice = await quiet(client, "alice")
    await client.register(FunctionAgent(lambda turn: "right away", name="bob"))
    knobs = {"expectations": [expect("reply_within", "audit", 10 * TIME_UNIT)]}
    channel = await alice.open("conversation", "bob", knobs=knobs)
    await channel.send("quick question")
    await channel.wait_for(2, timeout=5 * TIME_UNIT)
    await hub.listeners.flush()
    assert await hub.audit.query(kind="expectation_violated") == []
