"""An unmodified ``ag2==1.2.1`` network client against hubbub's WebSocket hub.

Every test drives the real ``ag2.network.HubClient(ag2.network.WsLink(url))``
against ``serve_ws`` on 127.0.0.1 (port 0), over a hub on SQLite as ``hubbub serve``
runs it (durability "full"). ag2's agents are ``ag2.Agent``s
with a scripted model (``ag2.testing.TestConfig``: each turn answers with the
scripted text), so ag2's own default handler acks invites, reads the WAL,
folds its adapters' state and posts the replies. What does not work, and
why, is in docs/compat.md.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ag2.network as ag2net
import pytest
from ag2 import Agent
from ag2.events import ToolCallEvent
from ag2.network.transitions import Transition
from ag2.task import TaskMetadata, TaskSpec, TaskState
from ag2.testing import TestConfig, TrackingConfig

from hubbub import ChannelState, FunctionAgent, Hub, HubClient, SqliteStore, Turn, WsLink, serve_ws
from tests.conftest import TIME_UNIT
from tests.hub._waiting import audit_records, wait_until

WAIT = 5 * TIME_UNIT

INVITE = ag2net.EV_CHANNEL_INVITE
ACK = ag2net.EV_CHANNEL_INVITE_ACK
OPENED = ag2net.EV_CHANNEL_OPENED
TEXT = ag2net.EV_TEXT
PACKET = ag2net.EV_PACKET
CLOSED = ag2net.EV_CHANNEL_CLOSED

Connect = Callable[[], ag2net.HubClient]


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with Hub(SqliteStore(tmp_path / "hub.db"), invite_ack_timeout=5 * TIME_UNIT) as h:
        yield h


@pytest.fixture
async def url(hub: Hub) -> AsyncIterator[str]:
    async with serve_ws(hub) as server:
        yield server.url


@pytest.fixture
async def connect(url: str) -> AsyncIterator[Connect]:
    """A factory of ag2 clients, each on its own WebSocket; all closed at the end."""
    opened: list[ag2net.HubClient] = []

    def new() -> ag2net.HubClient:
        client = ag2net.HubClient(ag2net.WsLink(url), rpc_timeout=WAIT)
        opened.append(client)
        return client

    yield new
    for client in opened:
        await client.close()


def scripted(name: str, reply: str | BaseException) -> Agent[Any]:
    """An ag2 agent whose model answers every turn with ``reply``."""
    return Agent(name, config=TestConfig(reply))


async def closed(client: ag2net.AgentClient, channel: ag2net.Channel) -> ag2net.ChannelMetadata:
    """Wait, through ag2's own API, until ``client`` is told the channel closed; its final metadata."""
    await client.wait_for_channel_event(
        channel_id=channel.channel_id, predicate=lambda e: e.event_type == CLOSED, timeout=WAIT
    )
    return await channel.info()


async def kinds_and_texts(hc: ag2net.HubClient, channel_id: str) -> list[tuple[str, str | None]]:
    """The WAL as (event_type, text or packet body)."""
    return [
        (e.event_type, e.event_data.get("text", e.event_data.get("body")))
        for e in await hc.read_wal(channel_id)
    ]


# identity and discovery


async def test_register_get_list_and_update_agents(connect: Connect) -> None:
    hc = connect()
    bob_agent = scripted("bob", "unused")
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    bob = await hc.register(
        bob_agent,
        ag2net.Passport(name="bob", owner="team-b", provider="scripted", model="test"),
        ag2net.Resume(claimed_capabilities=["math"], summary="Adds numbers quickly"),
        skill_md="# bob\nAdds numbers.",
    )
    # With the plugin (the default) ag2 gives the agent its network tools; without, none.
    assert sorted(t.name for t in bob_agent.tools) == ["channels", "context", "delegate", "peers", "tasks"]
    assert alice.agent.tools == []

    assert len(alice.agent_id) == len(bob.agent_id) == 32
    assert alice.agent_id != bob.agent_id
    by_name = await hc.get_agent("bob")
    by_id = await hc.get_agent(bob.agent_id)
    assert by_name == by_id == bob.passport
    assert (by_name.name, by_name.owner, by_name.provider, by_name.model, by_name.auth.scheme) == (
        "bob",
        "team-b",
        "scripted",
        "test",
        "none",
    )
    assert [p.name for p in await hc.list_agents()] == ["alice", "bob"]
    assert [p.name for p in await hc.list_agents(capability="math")] == ["bob"]
    assert [p.name for p in await hc.list_agents(query="numbers")] == ["bob"]
    assert [p.name for p in await hc.list_agents(kind="agent", sort_by="name", limit=1)] == ["alice"]

    resume = await hc.get_resume(bob.agent_id)
    assert (resume.claimed_capabilities, resume.summary, resume.observed) == (
        ["math"],
        "Adds numbers quickly",
        {},
    )
    assert await hc.get_rule(bob.agent_id) == ag2net.Rule()
    assert await hc.get_skill(bob.agent_id) == "# bob\nAdds numbers."
    assert await hc.get_skill(alice.agent_id) is None

    await alice.set_resume(ag2net.Resume(claimed_capabilities=["poetry"], summary="Writes verse"))
    assert alice.resume.claimed_capabilities == ["poetry"]
    assert [p.name for p in await hc.list_agents(capability="poetry")] == ["alice"]
    await alice.set_skill("# alice")
    assert await hc.get_skill(alice.agent_id) == "# alice"
    await alice.set_skill(None)
    assert await hc.get_skill(alice.agent_id) is None
    strict = ag2net.Rule(access=ag2net.AccessBlock(inbound_from=["bob"]))
    await alice.set_rule(strict)
    assert (await hc.get_rule(alice.agent_id)).access.inbound_from == ["bob"]

    await bob.unregister()
    assert [p.name for p in await hc.list_agents()] == ["alice"]
    with pytest.raises(ag2net.NotFoundError):
        await hc.get_agent("bob")


async def test_the_peers_tool_of_the_plugin_describes_a_peer_over_the_wire(connect: Connect) -> None:
    hc = connect()
    describe = ToolCallEvent("peers", arguments=json.dumps({"action": "describe", "name": "carol"}))
    model = TrackingConfig(TestConfig(describe, "carol adds numbers"))
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    bob = await hc.register(Agent("bob", config=model))
    await hc.register(
        scripted("carol", "unused"),
        ag2net.Passport(name="carol"),
        ag2net.Resume(claimed_capabilities=["math"], summary="Adds numbers"),
        skill_md="# carol\nAdds numbers.",
        attach_plugin=False,
    )
    channel = await alice.open(type="consulting", target="bob")
    await channel.send("who is carol?")
    final = await closed(alice, channel)
    assert final.close_reason == "consulting_complete"
    assert (await kinds_and_texts(hc, channel.channel_id))[-2][1] == "carol adds numbers"
    # The model's second call got the tool's result: get_agent, get_resume and get_skill over the wire.
    tool_results = model.mock.call_args_list[-1].args[0]
    [result] = tool_results.results
    [part] = result.result.parts
    assert part.data["passport"]["name"] == "carol"
    assert part.data["resume"]["claimed_capabilities"] == ["math"]
    assert part.data["skill_md"] == "# carol\nAdds numbers."
    assert bob.agent_id != alice.agent_id


# the four channel types


async def test_consulting_one_question_one_reply_then_closed(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    bob = await hc.register(scripted("bob", "4"))
    channel = await alice.open(type="consulting", target="bob", intent="arithmetic")
    assert channel.state is ag2net.ChannelState.ACTIVE
    assert channel.metadata.manifest.type == "consulting"
    assert [(p.agent_id, p.role.value) for p in channel.metadata.participants] == [
        (alice.agent_id, "initiator"),
        (bob.agent_id, "respondent"),
    ]
    question_id = await channel.send("what is 2+2?")
    reply = await alice.wait_for_channel_event(
        channel_id=channel.channel_id, predicate=lambda e: e.event_type == TEXT, timeout=WAIT
    )
    assert (reply.sender_id, reply.event_data, reply.causation_id) == (
        bob.agent_id,
        {"text": "4"},
        question_id,
    )

    final = await closed(alice, channel)
    assert (final.state, final.close_reason) == (ag2net.ChannelState.CLOSED, "consulting_complete")
    assert final.closed_at
    assert await kinds_and_texts(hc, channel.channel_id) == [
        (INVITE, None),
        (ACK, None),
        (OPENED, None),
        (TEXT, "what is 2+2?"),
        (TEXT, "4"),
        (CLOSED, None),
    ]
    wal = await hc.read_wal(channel.channel_id)
    assert [e.sender_id for e in wal[3:5]] == [alice.agent_id, bob.agent_id]
    assert wal[1].causation_id == wal[0].envelope_id  # the ack answers the invite
    assert [e.envelope_id for e in wal] == sorted(e.envelope_id for e in wal)

    assert await hc.list_channels(agent_id=alice.agent_id) == []  # terminal ones are left out
    listed = await hc.list_channels(agent_id=alice.agent_id, include_terminal=True)
    assert [(m.channel_id, m.state, m.close_reason) for m in listed] == [
        (channel.channel_id, ag2net.ChannelState.CLOSED, "consulting_complete")
    ]


async def test_conversation_closed_explicitly_by_its_initiator(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    bob = await hc.register(scripted("bob", "hello alice"))
    heard: list[ag2net.Envelope] = []

    async def listen(envelope: ag2net.Envelope) -> None:  # alice reads, never answers
        heard.append(envelope)

    alice.on_envelope(listen)
    channel = await alice.open(type="conversation", target="bob")
    assert [m.channel_id for m in await hc.list_channels(agent_id=bob.agent_id)] == [channel.channel_id]
    await channel.send("hi bob")
    await wait_until(lambda: any(e.event_type == TEXT for e in heard), WAIT, what="bob's reply")
    final = await channel.close(reason="done")
    assert (final.state, final.close_reason) == (ag2net.ChannelState.CLOSED, "done")
    assert (await channel.info()).close_reason == "done"
    assert await kinds_and_texts(hc, channel.channel_id) == [
        (INVITE, None),
        (ACK, None),
        (OPENED, None),
        (TEXT, "hi bob"),
        (TEXT, "hello alice"),
        (CLOSED, None),
    ]
    await wait_until(lambda: heard[-1].event_type == CLOSED, WAIT, what="alice told of the close")
    # Unlike ag2's hub, hubbub delivers an invitee's ack to the other participants too
    # (docs/compat.md); ag2's default handler ignores every ag2.channel.* event.
    assert [e.event_type for e in heard] == [ACK, OPENED, TEXT, CLOSED]


async def test_conversation_between_two_ag2_agents_until_max_turns(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "alice again"))
    await hc.register(scripted("bob", "bob again"))
    channel = await alice.open(type="conversation", target="bob", knobs={"max_turns": 4})
    await channel.send("hi bob")
    final = await closed(alice, channel)
    assert (final.state, final.close_reason) == (ag2net.ChannelState.CLOSED, "max_turns")
    assert [t for k, t in await kinds_and_texts(hc, channel.channel_id) if k == TEXT] == [
        "hi bob",
        "bob again",
        "alice again",
        "bob again",
    ]


async def test_discussion_is_round_robin_among_three_ag2_agents(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "alice speaks"))
    await hc.register(scripted("bob", "bob speaks"))
    await hc.register(scripted("carol", "carol speaks"))
    channel = await alice.open(type="discussion", target=["bob", "carol"], knobs={"max_turns": 5})
    assert [p.role.value for p in channel.metadata.participants] == [
        "initiator",
        "participant",
        "participant",
    ]
    await channel.send("topic: tabs or spaces")
    final = await closed(alice, channel)
    assert (final.state, final.close_reason) == (ag2net.ChannelState.CLOSED, "max_turns")
    assert await kinds_and_texts(hc, channel.channel_id) == [
        (INVITE, None),
        (INVITE, None),
        (ACK, None),
        (ACK, None),
        (OPENED, None),
        (TEXT, "topic: tabs or spaces"),
        (TEXT, "bob speaks"),
        (TEXT, "carol speaks"),
        (TEXT, "alice speaks"),
        (TEXT, "bob speaks"),
        (CLOSED, None),
    ]


async def test_workflow_follows_an_ag2_transition_graph(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"))
    bob = await hc.register(scripted("bob", "bob drafted"))
    carol = await hc.register(scripted("carol", "carol reviewed"))
    graph = ag2net.TransitionGraph(
        initial_speaker=alice.agent_id,
        transitions=[
            Transition(when=ag2net.FromSpeaker(alice.agent_id), then=ag2net.AgentTarget(bob.agent_id)),
            Transition(when=ag2net.FromSpeaker(bob.agent_id), then=ag2net.AgentTarget(carol.agent_id)),
        ],
        default_target=ag2net.TerminateTarget(reason="review_done"),
    )
    channel = await alice.open(type="workflow", target=["bob", "carol"], knobs={"graph": graph.to_dict()})
    assert channel.metadata.knobs["graph"] == graph.to_dict()
    await channel.send("draft the release notes")
    final = await closed(alice, channel)
    assert (final.state, final.close_reason) == (ag2net.ChannelState.CLOSED, "review_done")
    assert await kinds_and_texts(hc, channel.channel_id) == [
        (INVITE, None),
        (INVITE, None),
        (ACK, None),
        (ACK, None),
        (OPENED, None),
        (TEXT, "draft the release notes"),
        (PACKET, "bob drafted"),
        (PACKET, "carol reviewed"),
        (CLOSED, None),
    ]
    packets = [e for e in await hc.read_wal(channel.channel_id) if e.event_type == PACKET]
    assert [e.sender_id for e in packets] == [bob.agent_id, carol.agent_id]
    assert packets[0].event_data["routing"] == {"kind": "text"}


async def test_workflow_round_robin_graph_stops_at_max_turns(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "alice turn"))
    bob = await hc.register(scripted("bob", "bob turn"))
    graph = ag2net.TransitionGraph.round_robin([alice.agent_id, bob.agent_id], max_turns=4)
    channel = await alice.open(type="workflow", target="bob", knobs={"graph": graph.to_dict()})
    await channel.send("go")
    final = await closed(alice, channel)
    assert final.close_reason == "max_turns"
    assert [(k, t) for k, t in await kinds_and_texts(hc, channel.channel_id) if k in (TEXT, PACKET)] == [
        (TEXT, "go"),
        (PACKET, "bob turn"),
        (PACKET, "alice turn"),
        (PACKET, "bob turn"),
    ]
    assert bob.agent_id in final.participant_ids()


# refusals come back as ag2's exception classes


async def test_refusals_raise_ag2s_exception_classes(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    bob = await hc.register(scripted("bob", "4"), attach_plugin=False)
    channel = await alice.open(type="consulting", target="bob")
    as_bob = ag2net.Channel(metadata=channel.metadata, client=bob)
    with pytest.raises(ag2net.ProtocolError):  # the respondent may not speak first
        await as_bob.send("me first")
    with pytest.raises(ag2net.NotFoundError):
        await hc.get_agent("nobody")
    with pytest.raises(ag2net.NotFoundError):
        await hc.get_channel("no-such-channel")

    intruder = connect()
    await intruder.register(scripted("mallory", "unused"), attach_plugin=False)
    forged = ag2net.Envelope(
        channel_id=channel.channel_id,
        sender_id=alice.agent_id,
        audience=None,
        event_type=TEXT,
        event_data={"text": "forged"},
    )
    with pytest.raises(ag2net.AccessDeniedError):
        await intruder.post_envelope(forged)
    with pytest.raises(ag2net.AccessDeniedError):
        await intruder.read_wal(channel.channel_id)

    await channel.close(reason="enough")
    with pytest.raises(ag2net.ProtocolError):  # the channel is no longer active
        await channel.send("still there?")


# reconnecting: attach by name, replay what was not acked, resume pending turns


async def test_attach_by_name_replays_what_was_not_acked(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    first = connect()
    bob = await first.register(scripted("bob", "first life"), attach_plugin=False)
    channel = await alice.open(type="consulting", target="bob")
    await first.close()  # bob's process dies
    question_id = await channel.send("are you there?")

    again = connect()
    bob_again = await again.attach(scripted("bob", "back again"), "bob", attach_plugin=False)
    assert bob_again.agent_id == bob.agent_id
    assert bob_again.passport == bob.passport
    final = await closed(alice, channel)
    assert final.close_reason == "consulting_complete"
    wal = await hc.read_wal(channel.channel_id)
    assert [(e.event_type, e.event_data.get("text")) for e in wal[3:]] == [
        (TEXT, "are you there?"),
        (TEXT, "back again"),
        (CLOSED, None),
    ]
    assert wal[4].causation_id == question_id


async def test_attach_since_an_envelope_then_resume_pending_turns(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    first = connect()
    await first.register(scripted("bob", "unused"), attach_plugin=False)
    one = await alice.open(type="consulting", target="bob")
    two = await alice.open(type="consulting", target="bob")
    await first.close()
    q1 = await one.send("question one")
    await two.send("question two")

    again = connect()
    # Replay strictly past question one: only question two comes back (and is answered).
    bob = await again.attach(scripted("bob", "answer"), "bob", since_envelope_id=q1, attach_plugin=False)
    assert (await closed(alice, two)).close_reason == "consulting_complete"
    assert (await one.info()).state is ag2net.ChannelState.ACTIVE

    [pending] = await again.pending_turns_for(bob.agent_id)
    wal_one = await hc.read_wal(one.channel_id)
    assert (pending.channel_id, pending.triggering_envelope_id, pending.expected_at) == (
        one.channel_id,
        q1,
        wal_one[-1].created_at,
    )
    assert await bob.resume_pending_turns() == 1
    assert (await closed(alice, one)).close_reason == "consulting_complete"
    for channel in (one, two):
        texts = [t for k, t in await kinds_and_texts(hc, channel.channel_id) if k == TEXT]
        assert texts[1:] == ["answer"]
    assert await again.pending_turns_for(bob.agent_id) == []
    assert await bob.resume_pending_turns() == 0


async def test_attach_without_replay_then_resume_pending_turns(connect: Connect) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    first = connect()
    await first.register(scripted("bob", "unused"), attach_plugin=False)
    channel = await alice.open(type="consulting", target="bob")
    await first.close()
    await channel.send("still there?")

    again = connect()
    bob = await again.attach(scripted("bob", "resumed"), "bob", since_envelope_id=None, attach_plugin=False)
    assert (await channel.info()).state is ag2net.ChannelState.ACTIVE
    assert await bob.resume_pending_turns() == 1
    assert (await closed(alice, channel)).close_reason == "consulting_complete"
    assert [t for k, t in await kinds_and_texts(hc, channel.channel_id) if k == TEXT] == [
        "still there?",
        "resumed",
    ]


async def test_attach_to_an_unknown_name_registers_it(connect: Connect) -> None:
    hc = connect()
    dave = await hc.attach(
        scripted("dave", "unused"),
        "dave",
        passport=ag2net.Passport(name="dave"),
        resume=ag2net.Resume(summary="new here"),
        attach_plugin=False,
    )
    assert (await hc.get_agent("dave")).agent_id == dave.agent_id
    assert (await hc.get_resume(dave.agent_id)).summary == "new here"


# ag2 agents and hubbub agents together


async def test_ag2_and_hubbub_agents_consult_each_other(connect: Connect, url: str) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "alice says 5"), attach_plugin=False)

    def bob_answers(turn: Turn) -> str:
        return f"bob heard {turn.prompt!r} from {turn.names[turn.envelope.sender_id]}"

    async with HubClient(WsLink(url)) as ours:
        bob = await ours.register(FunctionAgent(bob_answers, name="bob"))

        # ag2 asks, hubbub answers.
        asked = await alice.open(type="consulting", target="bob")
        await asked.send("what is 2+2?")
        final = await closed(alice, asked)
        assert final.close_reason == "consulting_complete"
        assert await kinds_and_texts(hc, asked.channel_id) == [
            (INVITE, None),
            (ACK, None),
            (OPENED, None),
            (TEXT, "what is 2+2?"),
            (TEXT, "bob heard 'what is 2+2?' from alice"),
            (CLOSED, None),
        ]

        # hubbub asks, ag2 answers.
        asking = await bob.open("consulting", "alice")
        assert asking.metadata.state is ChannelState.ACTIVE
        question_id = await asking.send("what is 2+3?")
        final_ours = await asking.wait_closed(timeout=WAIT)
        assert (final_ours.state, final_ours.close_reason) == (ChannelState.CLOSED, "consulting_complete")
        wal = await asking.read()
        assert [(e.event_type, e.text or None) for e in wal] == [
            (INVITE, None),
            (ACK, None),
            (OPENED, None),
            (TEXT, "what is 2+3?"),
            (TEXT, "alice says 5"),
            (CLOSED, None),
        ]
        assert (wal[4].sender_id, wal[4].causation_id) == (alice.agent_id, question_id)
        # Both clients read the same WAL.
        assert [e.envelope_id for e in await hc.read_wal(asking.id)] == [e.envelope_id for e in wal]


# failures and tasks reported by ag2's client


async def test_a_failed_turn_is_reported_and_audited(connect: Connect, hub: Hub) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    bob = await hc.register(scripted("bob", RuntimeError("model down")), attach_plugin=False)
    channel = await alice.open(type="consulting", target="bob")
    question_id = await channel.send("anyone?")
    [record] = await audit_records(hub, "turn_failed", channel_id=channel.channel_id)
    assert (record.agent_id, record.data) == (bob.agent_id, {"envelope_id": question_id})
    assert "model down" in record.reason
    assert (await channel.info()).state is ag2net.ChannelState.ACTIVE  # no reply was invented
    assert (await channel.close()).close_reason == "explicit_close"  # ag2's word for no reason


async def test_mirrored_task_ops_feed_the_track_record(connect: Connect, hub: Hub) -> None:
    hc = connect()
    alice = await hc.register(scripted("alice", "unused"), attach_plugin=False)
    spec = TaskSpec(title="add", capability="math")
    await hc.observe_task(
        TaskMetadata(task_id="t-1", owner_id=alice.agent_id, spec=spec, state=TaskState.RUNNING)
    )
    await hc.update_task("t-1", progress={"step": 1})
    await hc.update_task("t-1", state=TaskState.COMPLETED, result=4)
    await hc.record_observation(
        owner_id=alice.agent_id, capability="math", outcome=TaskState.COMPLETED, task_id="t-1"
    )
    observed = (await hc.get_resume(alice.agent_id)).observed
    assert list(observed) == ["math"]
    assert (observed["math"].n, observed["math"].completed, observed["math"].failed) == (1, 1, 0)

    await hc.observe_task(
        TaskMetadata(task_id="t-2", owner_id=alice.agent_id, spec=spec, state=TaskState.RUNNING)
    )
    await hc.update_task("t-2", state=TaskState.CANCELLED, error="user stopped it")
    stat = (await hc.get_resume(alice.agent_id)).observed["math"]
    assert (stat.n, stat.completed, stat.failed) == (2, 1, 1)
    [failed] = await audit_records(hub, "task_terminated", where=lambda r: r.data["task_id"] == "t-2")
    assert failed.data["error"] == "cancelled: user stopped it"

    with pytest.raises(ag2net.NotFoundError):  # ag2's mirror ignores exactly this
        await hc.update_task("t-unknown", state=TaskState.COMPLETED)
    await hc.fire_task_event("t-2", "mirror_failed", {"owner_id": alice.agent_id, "op": "progress"})
    [event] = await audit_records(hub, "task_event")
    assert (event.agent_id, event.reason, event.data["task_id"]) == (alice.agent_id, "mirror_failed", "t-2")
    with pytest.raises(ag2net.ProtocolError, match="not served"):
        await hc.get_task("t-1")
