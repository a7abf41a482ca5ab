"""Listeners see every hook after the fact, and a slow or broken listener never holds up a post."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hubbub import (
    EV_TEXT,
    AccessBlock,
    AgentClient,
    ChannelClosedError,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    InboxBlock,
    LimitsBlock,
    Rule,
    Turn,
)
from hubbub.hub.listeners import HOOKS, HubListener, Listeners
from hubbub.model.audit import AuditRecord
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until


async def quiet(client: HubClient, name: str, rule: Rule | None = None) -> AgentClient:
    return await client.register(name=name, rule=rule, handle_turns=False)


class Recorder(HubListener):
    """Implements every hook, some sync and some async, and keeps each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __repr__(self) -> str:
        return "Recorder()"

    def of(self, hook: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == hook]

    def on_envelope_posted(self, envelope: Envelope) -> None:
        self.calls.append(("on_envelope_posted", (envelope,)))

    async def on_envelope_rejected(self, envelope: Envelope, sender_id: str, error: Exception) -> None:
        self.calls.append(("on_envelope_rejected", (envelope, sender_id, error)))

    def on_dispatch_failed(self, envelope: Envelope, recipient_id: str, reason: str) -> None:
        self.calls.append(("on_dispatch_failed", (envelope, recipient_id, reason)))

    async def on_channel_event(self, kind: str, metadata: Any) -> None:
        self.calls.append(("on_channel_event", (kind, metadata)))

    def on_agent_event(self, kind: str, passport: Any) -> None:
        self.calls.append(("on_agent_event", (kind, passport)))

    async def on_expectation_fired(self, violation: Any) -> None:
        self.calls.append(("on_expectation_fired", (violation,)))

    def on_turn_failed(self, channel_id: str, agent_id: str, envelope_id: str, error: str) -> None:
        self.calls.append(("on_turn_failed", (channel_id, agent_id, envelope_id, error)))

    def on_task_event(self, event: Any) -> None:
        self.calls.append(("on_task_event", (event,)))

    async def on_inbox_pressure(self, agent_id: str, pending: int, max_pending: int) -> None:
        self.calls.append(("on_inbox_pressure", (agent_id, pending, max_pending)))

    def on_governance_event(self, record: AuditRecord) -> None:
        self.calls.append(("on_governance_event", (record,)))


@pytest.fixture
def recorder(hub: Hub) -> Recorder:
    listener = Recorder()
    hub.register_listener(listener)
    return listener


def stats_of(hub: Hub, listener: object) -> dict[str, Any]:
    [stats] = [s for s in hub.listeners.stats() if s["listener"] == repr(listener)]
    return stats


# each hook


async def test_posted_envelopes_arrive_stamped(hub: Hub, client: HubClient, recorder: Recorder) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    sent = await channel.send("hello")
    await hub.listeners.flush()
    posted = [e for (e,) in recorder.of("on_envelope_posted") if e.event_type == EV_TEXT]
    assert [e.envelope_id for e in posted] == [sent]
    assert posted[0] == (await channel.read())[-1]
    assert posted[0].sender_id == alice.agent_id
    assert posted[0].created_at
    assert posted[0].text == "hello"


async def test_a_refused_post_is_reported_with_its_error(
    hub: Hub, client: HubClient, recorder: Recorder
) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await channel.close("done")
    with pytest.raises(ChannelClosedError) as err:
        await channel.send("too late")
    await hub.listeners.flush()
    [(envelope, sender_id, error)] = recorder.of("on_envelope_rejected")
    assert envelope.text == "too late"
    assert sender_id == alice.agent_id
    assert isinstance(error, ChannelClosedError)
    assert str(error) == str(err.value)
    assert all(e.event_type != EV_TEXT for (e,) in recorder.of("on_envelope_posted"))


async def test_a_skipped_delivery_is_a_dispatch_failure(
    hub: Hub, client: HubClient, recorder: Recorder
) -> None:
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await hub.set_rule(bob.agent_id, Rule(access=AccessBlock(inbound_from=["nobody"])))
    sent = await channel.send("bob will not get this")
    await hub.listeners.flush()
    [(envelope, recipient_id, reason)] = recorder.of("on_dispatch_failed")
    assert envelope.envelope_id == sent
    assert recipient_id == bob.agent_id
    assert reason == "bob does not accept inbound from alice"


async def test_channel_events_come_in_lifecycle_order(
    hub: Hub, client: HubClient, recorder: Recorder
) -> None:
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    await channel.close("finished")
    await hub.listeners.flush()
    events = recorder.of("on_channel_event")
    assert [kind for kind, _ in events] == ["created", "opened", "closed"]
    assert {meta.channel_id for _, meta in events} == {channel.id}
    assert events[-1][1].close_reason == "finished"


async def test_agent_events(hub: Hub, client: HubClient, recorder: Recorder) -> None:
    alice = await quiet(client, "alice")
    await hub.unregister(alice.agent_id)
    await hub.listeners.flush()
    events = recorder.of("on_agent_event")
    assert [(kind, p.agent_id, p.name) for kind, p in events] == [
        ("registered", alice.agent_id, "alice"),
        ("connected", alice.agent_id, "alice"),
        ("disconnected", alice.agent_id, "alice"),
        ("unregistered", alice.agent_id, "alice"),
    ]


async def test_a_fired_expectation_is_reported(hub: Hub, client: HubClient, recorder: Recorder) -> None:
    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob")
    knobs = {
        "expectations": [
            {"name": "reply_within", "on_violation": "audit", "params": {"seconds": 0.05 * TIME_UNIT}}
        ]
    }
    channel = await alice.open("conversation", "bob", knobs=knobs)
    sent = await channel.send("are you there?")
    await wait_until(lambda: bool(recorder.of("on_expectation_fired")), what="on_expectation_fired")
    [(violation,)] = recorder.of("on_expectation_fired")
    assert (violation.name, violation.channel_id, violation.violators, violation.trigger_envelope_id) == (
        "reply_within",
        channel.id,
        [bob.agent_id],
        sent,
    )


async def test_a_turn_that_raises_is_a_failed_turn(hub: Hub, client: HubClient, recorder: Recorder) -> None:
    def broken(turn: Turn) -> str:
        raise RuntimeError("model unavailable")

    alice = await quiet(client, "alice")
    bob = await client.register(FunctionAgent(broken, name="bob"))
    channel = await alice.open("conversation", "bob")
    sent = await channel.send("hi")
    await wait_until(lambda: bool(recorder.of("on_turn_failed")), what="on_turn_failed")
    assert recorder.of("on_turn_failed") == [
        (channel.id, bob.agent_id, sent, "RuntimeError('model unavailable')")
    ]
    assert hub.delivery.cursor(bob.agent_id, channel.id) != sent


async def test_inbox_pressure_fires_once_at_the_high_water_mark(
    hub: Hub, client: HubClient, recorder: Recorder
) -> None:
    release = asyncio.Event()

    async def hold(envelope: Envelope) -> None:
        if envelope.event_type == EV_TEXT:
            await release.wait()

    alice = await quiet(client, "alice")
    bob = await quiet(client, "bob", Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=5))))
    bob.on_envelope(hold)
    channel = await alice.open("conversation", "bob")
    for i in range(3):
        await channel.send(f"m{i}")
    await hub.listeners.flush()
    assert recorder.of("on_inbox_pressure") == []
    await channel.send("m3")
    await hub.listeners.flush()
    assert recorder.of("on_inbox_pressure") == [(bob.agent_id, 4, 5)]
    await channel.send("m4")
    await hub.listeners.flush()
    assert recorder.of("on_inbox_pressure") == [(bob.agent_id, 4, 5)]
    release.set()


async def test_governance_events_are_audit_records(hub: Hub, client: HubClient, recorder: Recorder) -> None:
    alice = await quiet(client, "alice")
    await hub.listeners.flush()
    [(record,)] = recorder.of("on_governance_event")
    assert isinstance(record, AuditRecord)
    assert (record.kind, record.agent_id, record.actor) == (
        "agent_registered",
        alice.agent_id,
        alice.agent_id,
    )
    assert await hub.audit.query(kind="agent_registered") == [record]


# listeners cannot hurt the post path


class Stuck(HubListener):
    """Its hook never returns until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.done = 0

    def __repr__(self) -> str:
        return "Stuck()"

    async def on_envelope_posted(self, envelope: Envelope) -> None:
        self.entered.set()
        await self.release.wait()
        self.done += 1


class Broken(HubListener):
    def __repr__(self) -> str:
        return "Broken()"

    def on_envelope_posted(self, envelope: Envelope) -> None:
        raise RuntimeError("listener bug")


async def send_many(agent: AgentClient, channel_id: str, count: int) -> list[str]:
    channel = agent.channel(await agent.hub_client.get_channel(channel_id))
    return [await channel.send(f"m{i}") for i in range(count)]


async def test_a_slow_listener_never_blocks_posts(hub: Hub, client: HubClient) -> None:
    stuck = Stuck()
    hub.register_listener(stuck)
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    ids = await asyncio.wait_for(send_many(alice, channel.id, 200), 5 * TIME_UNIT)
    assert len(set(ids)) == 200
    assert len([e for e in await channel.read() if e.event_type == EV_TEXT]) == 200
    assert stuck.entered.is_set()
    assert stuck.done == 0
    # bob's invite ack is in the hook; the 200 texts wait behind it, none dropped.
    assert stats_of(hub, stuck) == {"listener": "Stuck()", "queued": 200, "dropped": 0, "failed": 0}
    stuck.release.set()
    await hub.listeners.flush()
    assert stuck.done == 201


async def test_a_failing_listener_never_breaks_posts(hub: Hub, client: HubClient, recorder: Recorder) -> None:
    broken = Broken()
    hub.register_listener(broken)
    alice = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    ids = await send_many(alice, channel.id, 10)
    await hub.listeners.flush()
    assert [e.envelope_id for e in await channel.read() if e.event_type == EV_TEXT] == ids
    posted = recorder.of("on_envelope_posted")
    assert [e.envelope_id for (e,) in posted if e.event_type == EV_TEXT] == ids
    assert stats_of(hub, broken)["failed"] == len(posted) == 11


def test_a_listener_without_hooks_costs_nothing() -> None:
    listeners = Listeners()
    listeners.add(HubListener())
    assert [h for h in HOOKS if listeners.wants(h)] == []
    # No event loop runs here: queueing the event for the listener would need one.
    listeners.emit("on_envelope_posted", object())
    [stats] = listeners.stats()
    assert (stats["queued"], stats["dropped"], stats["failed"]) == (0, 0, 0)


def test_only_implemented_hooks_are_wanted() -> None:
    class PostsOnly(HubListener):
        def on_envelope_posted(self, envelope: Envelope) -> None:
            pass

    listeners = Listeners()
    listeners.add(PostsOnly())
    assert [h for h in HOOKS if listeners.wants(h)] == ["on_envelope_posted"]


async def test_the_hub_wants_only_what_its_listeners_implement(hub: Hub) -> None:
    hub.register_listener(HubListener())
    # Delegated tasks listen for what happens outside their channels (the audit log is written
    # directly, not through a listener). Nothing listens on the post path (on_envelope_posted)
    # unless asked to.
    assert [h for h in HOOKS if hub.listeners.wants(h)] == [
        "on_envelope_rejected",
        "on_agent_event",
        "on_turn_failed",
    ]
