"""TransitionGraph vocabulary: targets, conditions, ordering, the AG2 dict format, errors."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

import msgspec
import pytest

from hubbub.adapters import transitions as tr
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
    TransitionDecision,
    TransitionGraph,
    TransitionRegistry,
)
from hubbub.adapters.workflow import WorkflowState
from hubbub.errors import UsageError, WorkflowGraphError
from hubbub.model.envelope import EV_PACKET, EV_TEXT, Envelope


def state(
    last: str | None = None,
    order: tuple[str, ...] = ("a", "b", "c"),
    creator: str = "a",
    context: dict[str, Any] | None = None,
) -> WorkflowState:
    return WorkflowState(
        participant_order=order,
        expected_next_speaker=None,
        last_speaker_id=last,
        creator_id=creator,
        context_vars=context or {},
    )


def text(sender: str) -> Envelope:
    return Envelope(channel_id="ch-1", sender_id=sender, event_type=EV_TEXT, event_data={"text": "hi"})


def packet(sender: str, routing: Any) -> Envelope:
    return Envelope(
        channel_id="ch-1", sender_id=sender, event_type=EV_PACKET, event_data={"routing": routing}
    )


# ── targets ─────────────────────────────────────────────────────────────────


def test_agent_target_names_the_agent() -> None:
    assert AgentTarget("c").resolve(state("a"), text("a")) == TransitionDecision("c", "")


@pytest.mark.parametrize(
    ("last", "sender", "expected"),
    [
        ("a", "a", "b"),
        ("b", "b", "c"),
        ("c", "c", "a"),  # wraps around
        (None, "b", "c"),  # no last speaker yet: anchor on the sender
        ("zed", "zed", "a"),  # a stranger hands the turn to the first participant
    ],
)
def test_round_robin_target_picks_the_next_participant(last: str | None, sender: str, expected: str) -> None:
    assert RoundRobinTarget().resolve(state(last), text(sender)) == TransitionDecision(expected)


def test_round_robin_target_with_no_participants_terminates() -> None:
    decision = RoundRobinTarget().resolve(state("a", order=()), text("a"))
    assert decision == TransitionDecision(None, "no_participants")


def test_stay_target_keeps_the_last_speaker() -> None:
    assert StayTarget().resolve(state("b"), text("b")) == TransitionDecision("b")
    assert StayTarget().resolve(state(None), text("c")) == TransitionDecision("c")


def test_revert_to_initiator_goes_back_to_the_creator() -> None:
    assert RevertToInitiatorTarget().resolve(state("c", creator="b"), text("c")) == TransitionDecision("b")


def test_terminate_target_closes_with_its_reason() -> None:
    assert TerminateTarget().resolve(state("a"), text("a")) == TransitionDecision(None, "after_work")
    assert TerminateTarget("done").resolve(state("a"), text("a")) == TransitionDecision(None, "done")


def test_target_names() -> None:
    names = [AgentTarget.name, RoundRobinTarget.name, StayTarget.name, RevertToInitiatorTarget.name]
    assert [*names, TerminateTarget.name] == [
        "agent",
        "round_robin",
        "stay",
        "revert_to_initiator",
        "terminate",
    ]
    assert [Always.name, FromSpeaker.name, ToolCalled.name, ContextEquals.name] == [
        "always",
        "from_speaker",
        "tool_called",
        "context_equals",
    ]


# ── conditions ──────────────────────────────────────────────────────────────


def test_always_fires() -> None:
    assert Always().evaluate(state(), text("a")) is True


def test_from_speaker_matches_the_sender() -> None:
    assert FromSpeaker("a").evaluate(state("a"), text("a")) is True
    assert FromSpeaker("a").evaluate(state("b"), text("b")) is False


def test_tool_called_reads_the_packet_routing_tool() -> None:
    cond = ToolCalled("escalate")
    assert cond.evaluate(state(), packet("a", {"kind": "text", "tool": "escalate"})) is True
    assert cond.evaluate(state(), packet("a", {"kind": "text", "tool": "other"})) is False
    assert cond.evaluate(state(), packet("a", None)) is False
    assert cond.evaluate(state(), packet("a", "escalate")) is False
    # A text envelope has no routing, even if its data looks like a packet's.
    envelope = Envelope(channel_id="ch-1", sender_id="a", event_data={"routing": {"tool": "escalate"}})
    assert cond.evaluate(state(), envelope) is False


def test_context_equals_compares_a_variable_and_missing_reads_as_none() -> None:
    assert ContextEquals("topic", "billing").evaluate(state(context={"topic": "billing"}), text("a")) is True
    assert ContextEquals("topic", "billing").evaluate(state(context={"topic": "tech"}), text("a")) is False
    assert ContextEquals("topic", "billing").evaluate(state(context={}), text("a")) is False
    assert ContextEquals("topic", None).evaluate(state(context={}), text("a")) is True
    assert ContextEquals("n", [1, 2]).evaluate(state(context={"n": [1, 2]}), text("a")) is True


# ── selection order ─────────────────────────────────────────────────────────


def test_lower_priority_is_checked_first_and_ties_keep_list_order() -> None:
    graph = TransitionGraph(
        "a",
        [
            Transition(Always(), AgentTarget("late"), priority=5),
            Transition(FromSpeaker("b"), AgentTarget("from-b"), priority=1),
            Transition(Always(), AgentTarget("first-tie"), priority=1),
            Transition(Always(), AgentTarget("second-tie"), priority=1),
        ],
    )
    assert graph.select(state("b"), text("b")) == TransitionDecision("from-b")
    assert graph.select(state("a"), text("a")) == TransitionDecision("first-tie")
    # The list itself keeps the order it was given in.
    assert graph.transitions[0].then == AgentTarget("late")


def test_default_target_applies_when_nothing_fires() -> None:
    graph = TransitionGraph("a", [Transition(FromSpeaker("z"), AgentTarget("b"))], StayTarget())
    assert graph.select(state("c"), text("c")) == TransitionDecision("c")
    assert TransitionGraph("a").select(state("c"), text("c")) == TransitionDecision(None, "after_work")


# ── serialisation ───────────────────────────────────────────────────────────

FULL_GRAPH: dict[str, Any] = {
    "initial_speaker": "a",
    "transitions": [
        {
            "when": {"name": "tool_called", "args": {"tool_name": "escalate"}},
            "then": {"name": "agent", "args": {"agent_id": "c"}},
            "priority": -1,
        },
        {
            "when": {"name": "context_equals", "args": {"key": "topic", "value": {"x": [1]}}},
            "then": {"name": "stay", "args": {}},
            "priority": 0,
        },
        {
            "when": {"name": "from_speaker", "args": {"agent_id": "b"}},
            "then": {"name": "revert_to_initiator", "args": {}},
            "priority": 2,
        },
        {"when": {"name": "always", "args": {}}, "then": {"name": "round_robin", "args": {}}, "priority": 3},
    ],
    "default_target": {"name": "terminate", "args": {"reason": "nothing_fired"}},
    "max_turns": 12,
}


def full_graph() -> TransitionGraph:
    return TransitionGraph(
        initial_speaker="a",
        transitions=[
            Transition(ToolCalled("escalate"), AgentTarget("c"), priority=-1),
            Transition(ContextEquals("topic", {"x": [1]}), StayTarget()),
            Transition(FromSpeaker("b"), RevertToInitiatorTarget(), priority=2),
            Transition(Always(), RoundRobinTarget(), priority=3),
        ],
        default_target=TerminateTarget("nothing_fired"),
        max_turns=12,
    )


def test_to_dict_is_the_ag2_format() -> None:
    assert full_graph().to_dict() == FULL_GRAPH


def test_loads_inverts_to_dict_and_dumps() -> None:
    graph = full_graph()
    assert TransitionGraph.loads(FULL_GRAPH) == graph
    assert TransitionGraph.loads(graph.dumps()) == graph
    assert graph.dumps().startswith(
        '{"default_target": {"args": {"reason": "nothing_fired"}, "name": "terminate"}'
    )


def test_to_dict_does_not_share_mutable_args_with_the_graph() -> None:
    graph = full_graph()
    graph.to_dict()["transitions"][1]["when"]["args"]["value"]["x"].append(2)
    assert graph.transitions[1].when == ContextEquals("topic", {"x": [1]})


def test_loads_fills_ag2_defaults() -> None:
    graph = TransitionGraph.loads(
        {"initial_speaker": "a", "transitions": [{"when": {"name": "always"}, "then": {"name": "stay"}}]}
    )
    assert graph == TransitionGraph("a", [Transition(Always(), StayTarget(), 0)], TerminateTarget(), None)
    assert TransitionGraph.loads({"initial_speaker": "a", "transitions": None, "default_target": None}) == (
        TransitionGraph("a")
    )


def test_graph_from_ag2_loads_and_round_trips() -> None:
    import ag2.network.transitions as ag2t

    theirs = ag2t.TransitionGraph(
        initial_speaker="a",
        transitions=[
            ag2t.Transition(ag2t.ToolCalled("escalate"), ag2t.AgentTarget("c"), priority=-1),
            ag2t.Transition(ag2t.ContextEquals("topic", {"x": [1]}), ag2t.StayTarget()),
            ag2t.Transition(ag2t.FromSpeaker("b"), ag2t.RevertToInitiatorTarget(), priority=2),
            ag2t.Transition(ag2t.Always(), ag2t.RoundRobinTarget(), priority=3),
        ],
        default_target=ag2t.TerminateTarget("nothing_fired"),
        max_turns=12,
    )
    ours = TransitionGraph.loads(theirs.to_dict())
    assert ours == full_graph()
    assert ours.to_dict() == theirs.to_dict() == FULL_GRAPH
    assert TransitionGraph.loads(theirs.dumps()).dumps() == theirs.dumps()


def test_graph_from_hubbub_loads_in_ag2_and_round_trips() -> None:
    import ag2.network.transitions as ag2t

    ours = full_graph()
    theirs = ag2t.TransitionGraph.loads(ours.to_dict())
    assert theirs.to_dict() == ours.to_dict() == FULL_GRAPH
    assert theirs.dumps() == ours.dumps()
    assert ag2t.TransitionGraph.sequence(["a", "b"]).to_dict() == tr.sequence(["a", "b"]).to_dict()
    assert ag2t.TransitionGraph.round_robin(["a", "b"], max_turns=3).to_dict() == (
        tr.round_robin(["a", "b"], max_turns=3).to_dict()
    )


# ── factories ───────────────────────────────────────────────────────────────


def test_round_robin_helper() -> None:
    graph = tr.round_robin(["a", "b", "c"], max_turns=6)
    assert graph == TransitionGraph.round_robin(["a", "b", "c"], max_turns=6)
    assert graph.to_dict() == {
        "initial_speaker": "a",
        "transitions": [
            {
                "when": {"name": "always", "args": {}},
                "then": {"name": "round_robin", "args": {}},
                "priority": 0,
            }
        ],
        "default_target": {"name": "terminate", "args": {"reason": "round_robin_complete"}},
        "max_turns": 6,
    }
    assert tr.round_robin(["a", "b"]).max_turns is None


def test_sequence_helper() -> None:
    graph = tr.sequence(["a", "b", "c"])
    assert graph == TransitionGraph.sequence(["a", "b", "c"])
    assert graph == TransitionGraph(
        "a",
        [Transition(FromSpeaker("a"), AgentTarget("b")), Transition(FromSpeaker("b"), AgentTarget("c"))],
        TerminateTarget("sequence_complete"),
        max_turns=3,
    )
    assert graph.select(state("c"), text("c")) == TransitionDecision(None, "sequence_complete")
    assert tr.sequence(["solo"]) == TransitionGraph("solo", [], TerminateTarget("sequence_complete"), 1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: tr.round_robin([]), "round_robin needs at least one participant"),
        (lambda: tr.sequence([]), "sequence needs at least one step"),
        (
            lambda: TransitionGraph("a", max_turns=0),
            "max_turns must be an int of 1 or more, or None for no cap; got 0",
        ),
        (
            lambda: TransitionGraph(""),
            "initial_speaker must be a non-empty agent id, got ''; name the participant who speaks first.",
        ),
    ],
)
def test_factories_and_constructor_refuse_bad_input(build: Any, message: str) -> None:
    with pytest.raises(WorkflowGraphError) as info:
        build()
    assert str(info.value) == message


def test_agent_ids_lists_every_agent_target() -> None:
    graph = TransitionGraph("a", [Transition(Always(), AgentTarget("b"))], AgentTarget("c"))
    assert graph.agent_ids() == {"b", "c"}
    assert full_graph().agent_ids() == {"c"}


# ── invalid graphs ──────────────────────────────────────────────────────────

KNOWN_CONDITIONS = "['always', 'context_equals', 'from_speaker', 'tool_called']"
KNOWN_TARGETS = "['agent', 'revert_to_initiator', 'round_robin', 'stay', 'terminate']"


def stay_when(when: Any) -> dict[str, Any]:
    return {"initial_speaker": "a", "transitions": [{"when": when, "then": {"name": "stay"}}]}


def with_default(target: Any) -> dict[str, Any]:
    return {"initial_speaker": "a", "default_target": target}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a transition graph must be a dict (TransitionGraph.to_dict()), got list"),
        (
            "{oops",
            "transition graph is not valid JSON: "
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        ({}, "transition graph has no initial_speaker; name who speaks first"),
        (
            {"initial_speaker": None},
            "initial_speaker must be a non-empty agent id, got None; name the participant who speaks first.",
        ),
        (
            {"initial_speaker": 5},
            "initial_speaker must be a non-empty agent id, got 5; name the participant who speaks first.",
        ),
        ({"initial_speaker": "a", "transitions": {}}, "transitions must be a list, got dict"),
        (
            {"initial_speaker": "a", "transitions": ["x"]},
            'transitions[0] must be a dict {"when", "then", "priority"}, got \'x\'',
        ),
        (
            {"initial_speaker": "a", "transitions": [{"then": {"name": "stay"}}]},
            "transitions[0] has no 'when'; a transition needs both 'when' and 'then'",
        ),
        (
            {"initial_speaker": "a", "transitions": [{"when": {"name": "always"}}]},
            "transitions[0] has no 'then'; a transition needs both 'when' and 'then'",
        ),
        (
            stay_when({"name": "nope"}),
            "transitions[0].when: unknown transition condition 'nope'; "
            f"known conditions: {KNOWN_CONDITIONS}. "
            "Register a custom condition with register_condition() before loading the graph.",
        ),
        (
            {"initial_speaker": "a", "transitions": [{"when": {"name": "always"}, "then": {"name": "nope"}}]},
            f"transitions[0].then: unknown transition target 'nope'; known targets: {KNOWN_TARGETS}. "
            "Register a custom target with register_target() before loading the graph.",
        ),
        (
            with_default({"name": "nope", "args": {}}),
            f"default_target: unknown transition target 'nope'; known targets: {KNOWN_TARGETS}. "
            "Register a custom target with register_target() before loading the graph.",
        ),
        (
            with_default({"name": "agent", "args": {"agent": "b"}}),
            "default_target ('agent') has bad args {'agent': 'b'}: "
            "Object contains unknown field `agent`; expected args ['agent_id']",
        ),
        (
            with_default({"name": "agent", "args": {"agent_id": 5}}),
            "default_target ('agent') has bad args {'agent_id': 5}: "
            "Expected `str`, got `int` - at `$.agent_id`; expected args ['agent_id']",
        ),
        (
            with_default({"name": "agent", "args": {"agent_id": ""}}),
            "default_target ('agent') has bad args {'agent_id': ''}: "
            "Expected `str` of length >= 1 - at `$.agent_id`; expected args ['agent_id']",
        ),
        (
            with_default({"name": "terminate", "args": ["x"]}),
            "default_target ('terminate') args must be a dict, got ['x']",
        ),
        (with_default({"name": 3}), "default_target needs a string 'name', got 3"),
        (
            with_default("terminate"),
            'default_target must be a dict {"name": ..., "args": {...}}, got \'terminate\'',
        ),
        (
            stay_when({"name": "from_speaker", "args": {}}),
            "transitions[0].when ('from_speaker') has bad args {}: "
            "Object missing required field `agent_id`; expected args ['agent_id']",
        ),
        (
            stay_when({"name": "always", "args": {"x": 1}}),
            "transitions[0].when ('always') has bad args {'x': 1}: "
            "Object contains unknown field `x`; expected no args",
        ),
        (
            {
                "initial_speaker": "a",
                "transitions": [{"when": {"name": "always"}, "then": {"name": "stay"}, "priority": "1"}],
            },
            "transitions[0].priority must be an int, got '1'",
        ),
        (
            {"initial_speaker": "a", "max_turns": 0},
            "max_turns must be an int of 1 or more, or None for no cap; got 0",
        ),
        (
            {"initial_speaker": "a", "max_turns": True},
            "max_turns must be an int of 1 or more, or None for no cap; got True",
        ),
        (
            {"initial_speaker": "a", "max_turns": "3"},
            "max_turns must be an int of 1 or more, or None for no cap; got '3'",
        ),
    ],
)
def test_invalid_graphs_raise_workflow_graph_error(data: Any, message: str) -> None:
    with pytest.raises(WorkflowGraphError) as info:
        TransitionGraph.loads(data)
    assert str(info.value) == message
    assert info.value.code == "invalid_graph"


# ── registry ────────────────────────────────────────────────────────────────


class NextAlphabetical(msgspec.Struct, frozen=True):
    """A custom target: the participant whose id sorts after the sender's."""

    skip: int = 1
    name: ClassVar[str] = "next_alphabetical"

    def resolve(self, state: tr.RoutingState, envelope: Envelope) -> TransitionDecision:
        order = sorted(state.participant_order)
        return TransitionDecision(order[(order.index(envelope.sender_id) + self.skip) % len(order)])


@dataclasses.dataclass(frozen=True)
class TurnAtLeast:
    """A custom condition written as a dataclass."""

    turns: int
    name: ClassVar[str] = "turn_at_least"

    def evaluate(self, state: tr.RoutingState, envelope: Envelope) -> bool:
        return state.turn_count >= self.turns


def custom_graph_dict() -> dict[str, Any]:
    return {
        "initial_speaker": "a",
        "transitions": [
            {
                "when": {"name": "turn_at_least", "args": {"turns": 3}},
                "then": {"name": "terminate", "args": {"reason": "enough"}},
                "priority": 0,
            },
            {
                "when": {"name": "always", "args": {}},
                "then": {"name": "next_alphabetical", "args": {"skip": 2}},
                "priority": 1,
            },
        ],
        "default_target": {"name": "terminate", "args": {"reason": "after_work"}},
        "max_turns": None,
    }


def test_custom_targets_and_conditions_load_from_their_registry() -> None:
    registry = TransitionRegistry()
    registry.register_target(NextAlphabetical)
    registry.register_condition(TurnAtLeast)
    graph = TransitionGraph.loads(custom_graph_dict(), registry=registry)
    assert graph.transitions[1].then == NextAlphabetical(2)
    assert graph.to_dict() == custom_graph_dict()
    assert graph.select(state("a"), text("a")) == TransitionDecision("c")
    # Args are type-checked for dataclasses too.
    bad = custom_graph_dict()
    bad["transitions"][0]["when"]["args"] = {"turns": "3"}
    with pytest.raises(WorkflowGraphError, match=re.escape("Expected `int`, got `str` - at `$.turns`")):
        TransitionGraph.loads(bad, registry=registry)
    # Another registry does not see them.
    with pytest.raises(WorkflowGraphError, match="unknown transition condition 'turn_at_least'"):
        TransitionGraph.loads(custom_graph_dict(), registry=TransitionRegistry())


def test_module_level_register_uses_the_process_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TransitionRegistry, "_default", None)
    tr.register_target(NextAlphabetical)
    tr.register_condition(TurnAtLeast)
    assert TransitionGraph.loads(custom_graph_dict()).to_dict() == custom_graph_dict()
    assert TransitionRegistry.default() is TransitionRegistry.default()


def test_registering_a_class_without_a_name_is_a_usage_error() -> None:
    class Nameless:
        def resolve(self, state: tr.RoutingState, envelope: Envelope) -> TransitionDecision:
            return TransitionDecision(None)

    class NoResolve:
        name: ClassVar[str] = "no_resolve"

    with pytest.raises(
        UsageError, match="Nameless needs a non-empty class attribute `name` to be registered"
    ):
        TransitionRegistry().register_target(Nameless)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=re.escape("NoResolve needs a resolve(state, envelope) method")):
        TransitionRegistry().register_target(NoResolve)  # type: ignore[arg-type]
