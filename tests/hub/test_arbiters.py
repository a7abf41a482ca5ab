"""Custom arbiters are consulted before register, open, send and each dispatch; the first Deny wins."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_OPENED,
    EV_TEXT,
    AccessDeniedError,
    AgentClient,
    ChannelMetadata,
    Envelope,
    Hub,
    HubClient,
    Passport,
)
from hubbub.hub.arbiter import Deny, HubArbiter
from hubbub.storage.base import AgentRecord
from tests.hub._waiting import audit_records, wait_until


class Inbox:
    """What one agent was delivered, in order."""

    def __init__(self, agent: AgentClient) -> None:
        self.got: list[Envelope] = []
        agent.on_envelope(self.got.append)

    def ids(self) -> list[str]:
        return [e.envelope_id for e in self.got]

    def texts(self) -> list[str]:
        return [e.text for e in self.got if e.event_type == EV_TEXT]


async def quiet(client: HubClient, name: str) -> tuple[AgentClient, Inbox]:
    agent = await client.register(name=name, handle_turns=False)
    return agent, Inbox(agent)


class NoBots(HubArbiter):
    def authorize_register(self, passport: Passport) -> Deny | None:
        if fnmatchcase(passport.name, "bot-*"):
            return Deny(f"{passport.name} looks like a bot", "custom.no_bots")
        return None


class NoDiscussions(HubArbiter):
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, list[str]]] = []

    def authorize_open(
        self, creator: AgentRecord, channel_type: str, invitees: list[AgentRecord]
    ) -> Deny | None:
        self.asked.append((creator.passport.name, channel_type, [i.passport.name for i in invitees]))
        if channel_type == "discussion":
            return Deny(f"{creator.passport.name} may not start discussions", "custom.no_discussions")
        return None


class NoForbiddenWords(HubArbiter):
    def authorize_send(
        self, sender: AgentRecord, envelope: Envelope, channel: ChannelMetadata
    ) -> Deny | None:
        if "forbidden" in envelope.text:
            return Deny(f"{sender.passport.name} used a forbidden word", "custom.words")
        return None


class OnLeave(HubArbiter):
    """Hides texts from one recipient."""

    def __init__(self, name: str) -> None:
        self.name = name

    def authorize_dispatch(self, sender_name: str, recipient: AgentRecord, envelope: Envelope) -> Deny | None:
        if recipient.passport.name == self.name and envelope.event_type == EV_TEXT:
            return Deny(f"{self.name} is on leave", "custom.on_leave")
        return None


class Refuses(HubArbiter):
    """Denies every send, counting how often it was asked."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.asked = 0

    def authorize_send(
        self, sender: AgentRecord, envelope: Envelope, channel: ChannelMetadata
    ) -> Deny | None:
        self.asked += 1
        return Deny(f"{self.rule} says no", self.rule)


async def test_register_denied_by_a_custom_arbiter(hub: Hub, client: HubClient) -> None:
    hub.register_arbiter(NoBots())
    with pytest.raises(AccessDeniedError) as err:
        await client.register(name="bot-7")
    assert err.value.reason == "custom.no_bots"
    assert str(err.value) == "denied by custom.no_bots: bot-7 looks like a bot"
    assert hub.registry.id_for_name("bot-7") is None
    human = await client.register(name="human-1")
    assert [p.name for p in hub.list_agents()] == ["human-1"]
    [record] = await audit_records(hub, "register_denied")
    assert (record.actor, record.reason) == ("bot-7", "custom.no_bots")
    registered = await audit_records(hub, "agent_registered")
    assert [r.agent_id for r in registered] == [human.agent_id]


async def test_open_denied_by_a_custom_arbiter(hub: Hub, client: HubClient) -> None:
    arbiter = NoDiscussions()
    hub.register_arbiter(arbiter)
    lead, _ = await quiet(client, "lead")
    await quiet(client, "x")
    await quiet(client, "y")
    with pytest.raises(AccessDeniedError) as err:
        await lead.open("discussion", ["x", "y"])
    assert err.value.reason == "custom.no_discussions"
    assert "denied by custom.no_discussions: lead may not start discussions" in str(err.value)
    assert err.value.agent_id == lead.agent_id
    assert hub.list_channels() == []
    assert arbiter.asked == [("lead", "discussion", ["x", "y"])]
    [record] = await audit_records(hub, "open_denied")
    assert (record.agent_id, record.reason) == (lead.agent_id, "custom.no_discussions")
    allowed = await lead.open("conversation", "x")
    assert [m.channel_id for m in hub.list_channels()] == [allowed.id]


async def test_a_denied_send_reaches_no_wal_and_no_inbox(hub: Hub, client: HubClient) -> None:
    hub.register_arbiter(NoForbiddenWords())
    alice, _ = await quiet(client, "alice")
    _, bobs = await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    with pytest.raises(AccessDeniedError) as err:
        await channel.send("the forbidden word")
    assert err.value.reason == "custom.words"
    assert "denied by custom.words: alice used a forbidden word" in str(err.value)
    assert (err.value.channel_id, err.value.agent_id) == (channel.id, alice.agent_id)
    fine = await channel.send("a fine word")
    await wait_until(lambda: fine in bobs.ids(), what="bob to get the allowed text")
    assert bobs.texts() == ["a fine word"]
    assert [e.text for e in await channel.read() if e.event_type == EV_TEXT] == ["a fine word"]
    [record] = await audit_records(hub, "send_denied")
    assert (record.agent_id, record.channel_id, record.reason) == (alice.agent_id, channel.id, "custom.words")


async def test_a_denied_dispatch_skips_only_that_recipient(hub: Hub, client: HubClient) -> None:
    hub.register_arbiter(OnLeave("carol"))
    lead, _ = await quiet(client, "lead")
    _, bobs = await quiet(client, "bob")
    carol, carols = await quiet(client, "carol")
    channel = await lead.open("discussion", ["bob", "carol"])
    topic = await channel.send("the topic")
    await wait_until(lambda: topic in bobs.ids(), what="bob to get the topic")
    await channel.close("done")
    await wait_until(
        lambda: EV_CHANNEL_CLOSED in [e.event_type for e in carols.got], what="carol to see the close"
    )
    assert topic not in carols.ids()
    assert carols.texts() == []
    assert {EV_CHANNEL_INVITE, EV_CHANNEL_OPENED} <= {e.event_type for e in carols.got}
    assert topic in [e.envelope_id for e in await channel.read()]
    [record] = await audit_records(hub, "delivery_skipped")
    assert (record.actor, record.agent_id, record.channel_id, record.reason) == (
        lead.agent_id,
        carol.agent_id,
        channel.id,
        "custom.on_leave",
    )
    assert record.data["envelope_id"] == topic


async def test_the_first_deny_wins(hub: Hub, client: HubClient) -> None:
    first, second = Refuses("custom.first"), Refuses("custom.second")
    hub.register_arbiter(first)
    hub.register_arbiter(second)
    alice, _ = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    with pytest.raises(AccessDeniedError) as err:
        await channel.send("hello")
    assert err.value.reason == "custom.first"
    assert str(err.value) == "denied by custom.first: custom.first says no"
    assert (first.asked, second.asked) == (1, 0)


async def test_the_rule_based_arbiter_answers_before_custom_ones(hub: Hub, client: HubClient) -> None:
    custom = Refuses("custom.first")
    hub.register_arbiter(custom)
    alice, _ = await quiet(client, "alice")
    await quiet(client, "bob")
    channel = await alice.open("conversation", "bob")
    with pytest.raises(AccessDeniedError) as err:
        await channel.send("too deep", depth=99)
    assert err.value.reason == "limits.delegation_depth"
    assert custom.asked == 0
    assert [e for e in await channel.read() if e.event_type == EV_TEXT] == []
