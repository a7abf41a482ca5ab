"""WorkflowAdapter: turn gating, routing by graph/handoff/finish, context variables, refusals."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
import pytest

from hubbub.adapters import transitions as tr
from hubbub.adapters.base import AdapterResult, AgentReply, ChannelAdapter, ExpectedTurn, Finish, Handoff
from hubbub.adapters.transitions import (
    AgentTarget,
    Always,
    ContextEquals,
    FromSpeaker,
    RevertToInitiatorTarget,
    RoundRobinTarget,
    StayTarget,
    TerminateTarget,
    ToolCalled,
    Transition,
    TransitionGraph,
)
from hubbub.adapters.views import NamedWindowedSummary
from hubbub.adapters.workflow import WorkflowAdapter, WorkflowState
from hubbub.errors import ChannelRuleError, WorkflowGraphError
from hubbub.model.channel import (
    ChannelManifest,
    ChannelMetadata,
    ChannelState,
    Expectation,
    Participant,
    ParticipantRole,
    ParticipantSchema,
)
from hubbub.model.envelope import (
    EV_CHANNEL_OPENED,
    EV_CONTEXT_SET,
    EV_EXPECTATION_VIOLATED,
    EV_PACKET,
    EV_TASK_CANCELLED,
    EV_TEXT,
    Envelope,
)

CHANNEL = "ch-wf-1"


def meta(graph: Any, *ids: str, context: Any = None) -> ChannelMetadata:
    """A channel created by ids[0] with ids as participants in join order."""
    ids = ids or ("a", "b", "c")
    knobs: dict[str, Any] = {"graph": graph.to_dict() if isinstance(graph, TransitionGraph) else graph}
    if context is not None:
        knobs["context_vars"] = context
    participants = [
        Participant(
            agent_id=agent, role=ParticipantRole.INITIATOR if i == 0 else ParticipantRole.PARTICIPANT, order=i
        )
        for i, agent in enumerate(ids)
    ]
    return ChannelMetadata(
        channel_id=CHANNEL,
        manifest=WorkflowAdapter.manifest,
        creator_id=ids[0],
        participants=participants,
        state=ChannelState.ACTIVE,
        created_at="2026-01-01T00:00:00Z",
        knobs=knobs,
    )


def text(sender: str, body: str = "hi", eid: str = "") -> Envelope:
    return Envelope(
        channel_id=CHANNEL, sender_id=sender, event_type=EV_TEXT, event_data={"text": body}, envelope_id=eid
    )


def packet(sender: str, routing: Any = None, updates: Any = None, body: str = "", eid: str = "") -> Envelope:
    data: dict[str, Any] = {"body": body}
    if routing is not None:
        data["routing"] = routing
    if updates is not None:
        data["context_updates"] = updates
    return Envelope(
        channel_id=CHANNEL, sender_id=sender, event_type=EV_PACKET, event_data=data, envelope_id=eid
    )


def ctx(sender: str, set_: Any = None, delete: Any = None) -> Envelope:
    data: dict[str, Any] = {}
    if set_ is not None:
        data["set"] = set_
    if delete is not None:
        data["delete"] = delete
    return Envelope(channel_id=CHANNEL, sender_id=sender, event_type=EV_CONTEXT_SET, event_data=data)


class Run:
    """Drives an adapter the way the hub does: validate, fold, on_accepted."""

    def __init__(
        self, graph: Any, *ids: str, context: Any = None, adapter: WorkflowAdapter | None = None
    ) -> None:
        self.adapter = adapter or WorkflowAdapter()
        self.metadata = meta(graph, *ids, context=context)
        self.adapter.validate_create(self.metadata)
        self.state: WorkflowState = self.adapter.initial_state(self.metadata)

    def send(self, envelope: Envelope) -> AdapterResult:
        self.adapter.validate_send(self.metadata, self.state, envelope)
        self.state = self.adapter.fold(self.state, envelope)
        return self.adapter.on_accepted(self.metadata, self.state, envelope)

    def refused(self, envelope: Envelope) -> ChannelRuleError:
        with pytest.raises(ChannelRuleError) as info:
            self.adapter.validate_send(self.metadata, self.state, envelope)
        return info.value

    @property
    def next(self) -> str | None:
        turn = self.adapter.expected_next(self.metadata, self.state)
        return None if turn is None else turn.agent_id


OPEN = AdapterResult()


# ── contract and creation ───────────────────────────────────────────────────


def test_is_a_channel_adapter_with_the_workflow_manifest() -> None:
    adapter = WorkflowAdapter()
    assert isinstance(adapter, ChannelAdapter)
    assert adapter.manifest == ChannelManifest(
        type="workflow",
        participants=ParticipantSchema(min=2, roles=["initiator", "participant"]),
        knobs_schema={"graph": "TransitionGraph", "context_vars": "dict"},
        default_view_policy="named_windowed",
        expectations=[
            Expectation(name="turn_within", on_violation="audit", params={"seconds": 120}),
            Expectation(name="turn_within", on_violation="auto_close", params={"seconds": 600}),
        ],
    )


def test_initial_state_snapshots_order_creator_graph_and_context() -> None:
    graph = tr.round_robin(["b", "a", "c"])
    metadata = meta(graph, "a", "b", "c", context={"topic": "x"})
    state = WorkflowAdapter().initial_state(metadata)
    assert state == WorkflowState(
        participant_order=("a", "b", "c"),
        expected_next_speaker="b",
        creator_id="a",
        graph_data=graph.to_dict(),
        context_vars={"topic": "x"},
    )
    assert state.context_vars is not metadata.knobs["context_vars"]
    assert WorkflowAdapter().expected_next(metadata, state) == ExpectedTurn("b", None)


def create_error(graph: Any, *ids: str, context: Any = None) -> WorkflowGraphError:
    with pytest.raises(WorkflowGraphError) as info:
        WorkflowAdapter().validate_create(meta(graph, *ids, context=context))
    assert info.value.channel_id == CHANNEL
    return info.value


def test_create_needs_two_participants() -> None:
    err = create_error(tr.sequence(["a"]), "a")
    assert err.message == (
        "workflow channel ch-wf-1: needs at least 2 participants, got 1: pass target= with the other agents"
    )
    assert err.reason == "participant_count"


@pytest.mark.parametrize(
    ("graph", "context", "message", "reason"),
    [
        (
            None,
            None,
            "knobs['graph'] must be a transition graph dict (TransitionGraph.to_dict()), got None",
            "knob:graph",
        ),
        (
            '{"initial_speaker": "a"}',
            None,
            "knobs['graph'] must be a transition graph dict (TransitionGraph.to_dict()), "
            'got \'{"initial_speaker": "a"}\'',
            "knob:graph",
        ),
        (
            {"initial_speaker": "a", "default_target": {"name": "teleport"}},
            None,
            "invalid graph: default_target: unknown transition target 'teleport'; known targets: "
            "['agent', 'revert_to_initiator', 'round_robin', 'stay', 'terminate']. "
            "Register a custom target with register_target() before loading the graph.",
            "knob:graph",
        ),
        (
            {"initial_speaker": "a", "max_turns": 0},
            None,
            "invalid graph: max_turns must be an int of 1 or more, or None for no cap; got 0",
            "knob:graph",
        ),
        (
            tr.sequence(["zed", "a"]),
            None,
            "initial_speaker 'zed' is not a participant; pick one of ['a', 'b', 'c']",
            "knob:graph",
        ),
        (
            tr.sequence(["a", "x", "b", "y"]),
            None,
            "AgentTarget names non-participants ['x', 'y']; invite them or target one of ['a', 'b', 'c']",
            "knob:graph",
        ),
        (
            tr.sequence(["a", "b"]),
            ["x"],
            "knobs['context_vars'] must be a dict, got ['x']",
            "knob:context_vars",
        ),
    ],
)
def test_create_refuses_bad_knobs(graph: Any, context: Any, message: str, reason: str) -> None:
    err = create_error(graph, context=context)
    assert err.message == f"workflow channel ch-wf-1: {message}"
    assert err.reason == reason


# ── routing ─────────────────────────────────────────────────────────────────


def test_sequence_runs_each_step_then_closes() -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    assert run.send(text("a", eid="e1")) == OPEN
    assert run.adapter.expected_next(run.metadata, run.state) == ExpectedTurn("b", "e1")
    assert run.send(text("b", eid="e2")) == OPEN
    assert run.next == "c"
    # Turn 3 is also max_turns; the graph's own reason wins.
    assert run.send(text("c", eid="e3")) == AdapterResult(ChannelState.CLOSED, "sequence_complete")
    assert run.next is None
    assert (run.state.turn_count, run.state.last_speaker_id, run.state.last_envelope_id) == (3, "c", "e3")


def test_round_robin_closes_at_max_turns() -> None:
    run = Run(tr.round_robin(["a", "b", "c"], max_turns=4))
    for speaker in ["a", "b", "c"]:
        assert run.send(text(speaker)) == OPEN
    assert run.state.expected_next_speaker == "a"
    assert run.send(text("a")) == AdapterResult(ChannelState.CLOSED, "max_turns")
    assert (run.next, run.state.pending_close_reason, run.state.turn_count) == (None, "max_turns", 4)


def test_stay_and_revert_to_initiator_through_the_adapter() -> None:
    graph = TransitionGraph(
        "b",
        [Transition(FromSpeaker("b"), StayTarget()), Transition(FromSpeaker("c"), RevertToInitiatorTarget())],
        AgentTarget("c"),
    )
    run = Run(graph)
    run.send(text("b"))
    assert run.next == "b"
    run.send(packet("b", {"kind": "handoff", "target": "c"}))
    assert run.next == "c"
    run.send(text("c"))
    assert run.next == "a"
    run.send(text("a"))
    assert run.next == "c"


def test_default_terminate_closes_with_after_work() -> None:
    run = Run(TransitionGraph("a"))
    assert run.send(text("a")) == AdapterResult(ChannelState.CLOSED, "after_work")


def test_handoff_with_a_target_overrides_the_graph() -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    assert (
        run.send(packet("a", {"kind": "handoff", "target": "c", "tool": "transfer", "reason": "tech"}))
        == OPEN
    )
    assert run.next == "c"


def test_handoff_without_a_target_lets_tool_called_decide() -> None:
    graph = TransitionGraph("a", [Transition(ToolCalled("escalate"), AgentTarget("c"))], AgentTarget("b"))
    run = Run(graph)
    run.send(packet("a", {"kind": "handoff", "tool": "escalate"}))
    assert run.next == "c"
    run.send(packet("c", {"kind": "text", "tool": "other"}))
    assert run.next == "b"
    run.send(text("b"))
    assert run.next == "b"


def test_priority_decides_between_matching_transitions() -> None:
    graph = TransitionGraph(
        "a",
        [
            Transition(Always(), AgentTarget("b"), priority=10),
            Transition(ToolCalled("escalate"), AgentTarget("c"), priority=-5),
        ],
    )
    run = Run(graph)
    run.send(packet("a", {"kind": "text", "tool": "escalate"}))
    assert run.next == "c"
    run.send(text("c"))
    assert run.next == "b"


def test_finish_packet_closes_with_its_reason() -> None:
    run = Run(tr.round_robin(["a", "b", "c"]))
    run.send(text("a"))
    assert run.send(packet("b", {"kind": "finish", "reason": "solved", "tool": "finish"})) == AdapterResult(
        ChannelState.CLOSED, "solved"
    )
    assert run.next is None
    again = Run(tr.round_robin(["a", "b", "c"]))
    assert again.send(packet("a", {"kind": "finish"})) == AdapterResult(ChannelState.CLOSED, "finished")


def test_context_set_from_any_participant_steers_context_equals() -> None:
    graph = TransitionGraph(
        "a",
        [
            Transition(ContextEquals("topic", "billing"), AgentTarget("b")),
            Transition(ContextEquals("topic", None), AgentTarget("a")),
        ],
        AgentTarget("c"),
    )
    run = Run(graph, context={"topic": "tech"})
    assert run.send(ctx("c", {"topic": "billing"})) == OPEN  # c is not the speaker, and that is fine
    assert (run.state.context_vars, run.next, run.state.turn_count) == ({"topic": "billing"}, "a", 0)
    run.send(text("a"))
    assert run.next == "b"
    run.send(ctx("a", delete=["topic"]))
    run.send(text("b"))
    assert run.next == "a"
    run.send(ctx("b", {"topic": "sales"}))
    run.send(text("a"))
    assert run.next == "c"


def test_context_set_deletes_before_setting() -> None:
    run = Run(tr.round_robin(["a", "b"]), "a", "b", context={"k": 1, "gone": 2})
    run.send(ctx("b", {"k": 3}, ["k", "gone"]))
    assert run.state.context_vars == {"k": 3}


def test_packet_context_updates_apply_before_routing() -> None:
    graph = TransitionGraph(
        "a", [Transition(ContextEquals("route", "billing"), AgentTarget("c"))], AgentTarget("b")
    )
    run = Run(graph, context={"stale": True})
    run.send(packet("a", {"kind": "text"}, {"set": {"route": "billing"}, "delete": ["stale"]}))
    assert (run.next, run.state.context_vars) == ("c", {"route": "billing"})


def test_ag2_default_packet_shape_is_accepted() -> None:
    # ag2's default_build_packet_envelope: no context_updates, context under "context".
    run = Run(tr.sequence(["a", "b", "c"]))
    envelope = Envelope(
        channel_id=CHANNEL,
        sender_id="a",
        event_type=EV_PACKET,
        event_data={"body": "over", "routing": {"kind": "handoff", "target": "c"}, "context": {"x": 1}},
    )
    assert run.send(envelope) == OPEN
    assert run.next == "c"


def test_custom_registry_reaches_the_adapter() -> None:
    registry = tr.TransitionRegistry()

    class Alphabetical(msgspec.Struct, frozen=True):
        name: ClassVar[str] = "alphabetical"

        def resolve(self, state: tr.RoutingState, envelope: Envelope) -> tr.TransitionDecision:
            return tr.TransitionDecision(min(state.participant_order))

    registry.register_target(Alphabetical)
    graph = {"initial_speaker": "c", "default_target": {"name": "alphabetical", "args": {}}}
    run = Run(graph, adapter=WorkflowAdapter(registry))
    run.send(text("c"))
    assert run.next == "a"
    with pytest.raises(WorkflowGraphError, match="unknown transition target 'alphabetical'"):
        WorkflowAdapter().validate_create(meta(graph))


# ── refusals ────────────────────────────────────────────────────────────────


def test_out_of_turn_send_is_refused_naming_channel_agent_and_rule() -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    err = run.refused(text("b"))
    assert str(err) == (
        "workflow channel ch-wf-1 refused a send from b: out of turn: the workflow expects a to speak next"
    )
    assert (err.channel_id, err.agent_id, err.reason) == (
        CHANNEL,
        "b",
        "out of turn: the workflow expects a to speak next",
    )
    run.refused(packet("c", {"kind": "finish"}))


def test_handoff_to_a_non_participant_is_refused() -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    err = run.refused(packet("a", {"kind": "handoff", "target": "mallory"}))
    assert err.reason == "handoff target mallory is not a participant; hand off to one of ['a', 'b', 'c']"
    assert (err.channel_id, err.agent_id) == (CHANNEL, "a")


@pytest.mark.parametrize(
    "event_type", ["ag2.custom.thing", "ag2.msg.image", "ag2.context.get", "ag2.channel.unknown_kind"]
)
def test_unknown_event_types_are_refused(event_type: str) -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    err = run.refused(Envelope(channel_id=CHANNEL, sender_id="a", event_type=event_type))
    assert err.reason == (
        f"workflow channels take only ag2.msg.text, ag2.packet and ag2.context.set, not {event_type!r}"
    )


@pytest.mark.parametrize("event_type", [EV_CHANNEL_OPENED, EV_TASK_CANCELLED, EV_EXPECTATION_VIOLATED])
def test_control_events_bypass_turns_and_change_nothing(event_type: str) -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    before = run.state
    assert run.send(Envelope(channel_id=CHANNEL, sender_id="hub", event_type=event_type)) == OPEN
    assert run.state is before


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        (ctx("mallory", {"k": 1}), "only participants may set workflow context variables"),
        (ctx("b", ["k"]), "ag2.context.set event_data['set'] must be a dict of variables, got ['k']"),
        (
            ctx("b", delete="k"),
            "ag2.context.set event_data['delete'] must be a list of variable names, got 'k'",
        ),
        (
            ctx("b", delete=[1]),
            "ag2.context.set event_data['delete'] must be a list of variable names, got [1]",
        ),
        (packet("a", "finish"), "packet routing must be a dict, got 'finish'"),
        (
            packet("a", {"kind": "teleport"}),
            "packet routing kind must be one of ['finish', 'handoff', 'text'], got 'teleport'",
        ),
        (packet("a", {"kind": "handoff", "target": 7}), "packet routing 'target' must be a string, got 7"),
        (
            packet("a", {"kind": "finish", "reason": ["x"]}),
            "packet routing 'reason' must be a string, got ['x']",
        ),
        (packet("a", updates=[]), 'packet context_updates must be {"set": {...}, "delete": [...]}, got []'),
        (packet("a", updates={"set": 1}), "packet context_updates['set'] must be a dict of variables, got 1"),
    ],
)
def test_malformed_context_and_packets_are_refused(envelope: Envelope, reason: str) -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    err = run.refused(envelope)
    assert (err.reason, err.agent_id, err.channel_id) == (reason, envelope.sender_id, CHANNEL)


def test_turns_after_the_workflow_ended_are_refused() -> None:
    run = Run(TransitionGraph("a", default_target=TerminateTarget("done")))
    run.send(text("a"))
    err = run.refused(text("b"))
    assert err.reason == "the workflow has ended (done); open a new channel"
    assert run.adapter.on_accepted(run.metadata, run.state, ctx("a", {"k": 1})) == OPEN


# ── purity and caching ──────────────────────────────────────────────────────


def test_fold_does_not_mutate_the_input_state() -> None:
    run = Run(TransitionGraph("a", [Transition(Always(), RoundRobinTarget())]), context={"keep": 1})
    before = run.state
    snapshot = msgspec.json.encode(before)
    after = run.adapter.fold(before, packet("a", {"kind": "text"}, {"set": {"new": 2}, "delete": ["keep"]}))
    after = run.adapter.fold(after, ctx("b", {"more": 3}))
    assert msgspec.json.encode(before) == snapshot
    assert before.context_vars == {"keep": 1}
    assert (after.context_vars, after.expected_next_speaker, after.turn_count) == (
        {"new": 2, "more": 3},
        "b",
        1,
    )


def test_graph_is_parsed_once_per_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = TransitionGraph.loads.__func__  # type: ignore[attr-defined]

    def counting(cls: type[TransitionGraph], data: Any, registry: Any = None) -> TransitionGraph:
        calls.append(data)
        return real(cls, data, registry)  # type: ignore[no-any-return]

    monkeypatch.setattr(TransitionGraph, "loads", classmethod(counting))
    run = Run(tr.round_robin(["a", "b", "c"]))
    for speaker in ["a", "b", "c", "a", "b"]:
        run.send(text(speaker))
    assert len(calls) == 1
    # A state rebuilt from storage carries a new dict: parsed once more, then cached.
    state = msgspec.json.decode(msgspec.json.encode(run.state), type=WorkflowState)
    run.adapter.fold(run.adapter.fold(state, text("c")), text("a"))
    assert len(calls) == 2


# ── view, turn input, replies ───────────────────────────────────────────────


def test_default_view_is_named_windowed_over_two_rounds() -> None:
    view = WorkflowAdapter().default_view(meta(tr.sequence(["a"]), "a", "b", "c"), "a")
    assert isinstance(view, NamedWindowedSummary)
    assert (view.name, view.recent_n) == ("named_windowed", 6)


def test_turn_input_is_the_text_or_packet_body() -> None:
    adapter = WorkflowAdapter()
    assert adapter.turn_input(text("a", "question?")) == "question?"
    assert adapter.turn_input(packet("a", {"kind": "text"}, body="result")) == "result"
    assert adapter.turn_input(ctx("a", {"k": 1})) is None


@pytest.mark.parametrize(
    ("reply", "routing"),
    [
        (
            AgentReply(text="bye", finish=Finish(reason="solved"), handoff=Handoff(target="b")),
            {"kind": "finish", "reason": "solved", "tool": "finish"},
        ),
        (
            AgentReply(text="over", handoff=Handoff(target="c", tool="transfer", reason="tech")),
            {"kind": "handoff", "target": "c", "tool": "transfer", "reason": "tech"},
        ),
        (AgentReply(text="x", tool="escalate"), {"kind": "text", "tool": "escalate"}),
        (AgentReply(tool="escalate"), {"kind": "text", "tool": "escalate"}),
        (AgentReply(text="plain"), {"kind": "text"}),
        (AgentReply(context_delete=["k"]), {"kind": "text"}),
    ],
)
def test_reply_envelope_builds_a_packet(reply: AgentReply, routing: dict[str, Any]) -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    envelope = run.adapter.reply_envelope(run.metadata, run.state, "a", reply)
    assert envelope is not None
    assert (envelope.channel_id, envelope.sender_id, envelope.event_type) == (CHANNEL, "a", EV_PACKET)
    assert envelope.event_data == {
        "routing": routing,
        "context_updates": {"set": reply.context_set, "delete": reply.context_delete},
        "body": reply.text,
    }


def test_reply_envelope_carries_context_and_round_trips_through_the_adapter() -> None:
    graph = TransitionGraph(
        "a", [Transition(ContextEquals("lane", "fast"), AgentTarget("c"))], AgentTarget("b")
    )
    run = Run(graph)
    reply = AgentReply(text="done", context_set={"lane": "fast"})
    envelope = run.adapter.reply_envelope(run.metadata, run.state, "a", reply)
    assert envelope is not None
    assert envelope.event_data["context_updates"] == {"set": {"lane": "fast"}, "delete": []}
    assert run.send(envelope) == OPEN
    assert (run.next, run.state.context_vars) == ("c", {"lane": "fast"})


def test_reply_envelope_is_none_only_for_an_empty_reply() -> None:
    run = Run(tr.sequence(["a", "b", "c"]))
    assert run.adapter.reply_envelope(run.metadata, run.state, "a", AgentReply()) is None
