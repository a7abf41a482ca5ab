"""Workflow: two or more participants whose turns follow a :class:`TransitionGraph`.

Knobs: ``graph`` (required, a ``TransitionGraph.to_dict()``), ``context_vars``
(optional dict of initial context variables).

Only the expected speaker may send a turn (``ag2.msg.text`` or ``ag2.packet``).
After each turn the next speaker is chosen, in order, by: a packet routed
``finish`` (the channel closes with its reason); a packet routed ``handoff``
with a ``target`` (that participant speaks next); the graph's transitions,
then its default target. A target that names nobody closes the channel, as
does reaching ``max_turns`` (reason ``"max_turns"``). A packet's
``context_updates`` apply before routing, so ``ContextEquals`` sees them.
Any participant may send ``ag2.context.set`` at any time. The adapter is
strict: every other non-control event type is refused.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import WorkflowGraphError
from ..model.channel import ChannelManifest, ChannelMetadata, ChannelState, Expectation, ParticipantSchema
from ..model.envelope import EV_CONTEXT_SET, EV_PACKET, EV_TEXT, Envelope
from ._common import is_bypass
from .base import AdapterResult, AgentReply, ExpectedTurn, default_turn_input, refuse
from .transitions import TransitionDecision, TransitionGraph, TransitionRegistry
from .views import NamedWindowedSummary, ViewPolicy

__all__ = ["WORKFLOW", "WorkflowAdapter", "WorkflowState"]

WORKFLOW = "workflow"

_TURN_EVENTS = frozenset({EV_TEXT, EV_PACKET})
_ROUTING_KINDS = frozenset({"text", "handoff", "finish"})
# Parsed graphs kept per adapter; beyond this many channels the oldest entry is
# dropped and re-parsed on that channel's next turn.
_GRAPH_CACHE_SIZE = 4096


class WorkflowState(msgspec.Struct, frozen=True, kw_only=True):
    """Whose turn it is, who spoke last, and the shared context variables.

    ``expected_next_speaker`` None means the workflow has ended, with
    ``pending_close_reason``. ``graph_data`` is the graph as given in the
    knobs; treat it and ``context_vars`` as read-only (``fold`` copies).
    """

    participant_order: tuple[str, ...]
    expected_next_speaker: str | None
    last_speaker_id: str | None = None
    last_envelope_id: str | None = None
    turn_count: int = 0
    pending_close_reason: str = ""
    creator_id: str = ""
    graph_data: dict[str, Any] = msgspec.field(default_factory=dict)
    context_vars: dict[str, Any] = msgspec.field(default_factory=dict)


class WorkflowAdapter:
    """Turn-taking by a declarative graph; pass ``registry`` for custom targets/conditions."""

    state_type = WorkflowState
    """Lets the hub snapshot and restore the folded state (msgspec-encodable)."""

    manifest = ChannelManifest(
        type=WORKFLOW,
        participants=ParticipantSchema(min=2, roles=["initiator", "participant"]),
        knobs_schema={"graph": "TransitionGraph", "context_vars": "dict"},
        default_view_policy=NamedWindowedSummary.name,
        expectations=[
            Expectation(name="turn_within", on_violation="audit", params={"seconds": 120}),
            Expectation(name="turn_within", on_violation="auto_close", params={"seconds": 600}),
        ],
    )

    def __init__(self, registry: TransitionRegistry | None = None) -> None:
        self._registry = registry
        # id(graph_data) -> (graph_data, parsed). Holding graph_data keeps its id
        # from being reused, so the identity check below cannot match a stranger.
        self._graphs: dict[int, tuple[dict[str, Any], TransitionGraph]] = {}

    def validate_create(self, metadata: ChannelMetadata) -> None:
        count = len(metadata.participants)
        if count < 2:
            raise _create_error(
                metadata,
                f"needs at least 2 participants, got {count}: pass target= with the other agents",
                "participant_count",
            )
        self._checked_graph(metadata)

    def initial_state(self, metadata: ChannelMetadata) -> WorkflowState:
        graph = self._checked_graph(metadata)
        order = tuple(p.agent_id for p in sorted(metadata.participants, key=lambda p: p.order))
        return WorkflowState(
            participant_order=order,
            expected_next_speaker=graph.initial_speaker,
            creator_id=metadata.creator_id,
            graph_data=metadata.knobs["graph"],
            context_vars=dict(metadata.knobs.get("context_vars") or {}),
        )

    def fold(self, state: WorkflowState, envelope: Envelope) -> WorkflowState:
        kind = envelope.event_type
        data = envelope.event_data
        if kind == EV_CONTEXT_SET:
            return msgspec.structs.replace(state, context_vars=_updated(state.context_vars, data))
        if kind not in _TURN_EVENTS:
            return state
        routing: dict[str, Any] = {}
        context = state.context_vars
        if kind == EV_PACKET:
            routing = _dict(data.get("routing"))
            context = _updated(context, _dict(data.get("context_updates")))
        after = msgspec.structs.replace(
            state,
            last_speaker_id=envelope.sender_id,
            last_envelope_id=envelope.envelope_id,
            turn_count=state.turn_count + 1,
            context_vars=context,
        )
        graph = self._graph(state.graph_data)
        decision = _route(graph, after, envelope, routing)
        # The graph's own close reason wins over the turn cap on the same turn.
        limit = graph.max_turns
        if decision.next_speaker is not None and limit is not None and after.turn_count >= limit:
            decision = TransitionDecision(None, "max_turns")
        return msgspec.structs.replace(
            after, expected_next_speaker=decision.next_speaker, pending_close_reason=decision.close_reason
        )

    def validate_send(self, metadata: ChannelMetadata, state: WorkflowState, envelope: Envelope) -> None:
        if is_bypass(envelope):
            return
        sender = envelope.sender_id
        kind = envelope.event_type
        if kind == EV_CONTEXT_SET:
            if sender not in state.participant_order:
                raise refuse(metadata, sender, "only participants may set workflow context variables")
            _check_context(metadata, sender, envelope.event_data, f"{EV_CONTEXT_SET} event_data")
            return
        if kind not in _TURN_EVENTS:
            raise refuse(
                metadata,
                sender,
                f"workflow channels take only {EV_TEXT}, {EV_PACKET} and {EV_CONTEXT_SET}, not {kind!r}",
            )
        expected = state.expected_next_speaker
        if expected is None:
            reason = state.pending_close_reason or "workflow_terminated"
            raise refuse(metadata, sender, f"the workflow has ended ({reason}); open a new channel")
        if sender != expected:
            raise refuse(metadata, sender, f"out of turn: the workflow expects {expected} to speak next")
        if kind == EV_PACKET:
            _check_packet(metadata, state, envelope)

    def on_accepted(
        self, metadata: ChannelMetadata, state: WorkflowState, envelope: Envelope
    ) -> AdapterResult:
        if envelope.event_type in _TURN_EVENTS and state.expected_next_speaker is None:
            return AdapterResult(ChannelState.CLOSED, state.pending_close_reason or "workflow_terminated")
        return AdapterResult()

    def expected_next(self, metadata: ChannelMetadata, state: WorkflowState) -> ExpectedTurn | None:
        if state.expected_next_speaker is None:
            return None
        return ExpectedTurn(state.expected_next_speaker, state.last_envelope_id)

    def default_view(self, metadata: ChannelMetadata, participant_id: str) -> ViewPolicy:
        return NamedWindowedSummary(2 * len(metadata.participants))

    def turn_input(self, envelope: Envelope) -> str | None:
        return default_turn_input(envelope)

    def reply_envelope(
        self, metadata: ChannelMetadata, state: WorkflowState, sender_id: str, reply: AgentReply
    ) -> Envelope | None:
        """An ``EV_PACKET`` for the reply; None only when the reply holds nothing at all."""
        routing: dict[str, Any]
        if reply.finish is not None:
            routing = {"kind": "finish", "reason": reply.finish.reason, "tool": reply.finish.tool}
        elif reply.handoff is not None:
            h = reply.handoff
            routing = {"kind": "handoff", "target": h.target, "tool": h.tool, "reason": h.reason}
        elif reply.tool is not None:
            routing = {"kind": "text", "tool": reply.tool}
        elif not (reply.text or reply.context_set or reply.context_delete):
            return None
        else:
            routing = {"kind": "text"}
        return Envelope(
            channel_id=metadata.channel_id,
            sender_id=sender_id,
            event_type=EV_PACKET,
            event_data={
                "routing": routing,
                "context_updates": {"set": dict(reply.context_set), "delete": list(reply.context_delete)},
                "body": reply.text,
            },
        )

    def _graph(self, graph_data: dict[str, Any]) -> TransitionGraph:
        hit = self._graphs.get(id(graph_data))
        if hit is not None and hit[0] is graph_data:
            return hit[1]
        graph = TransitionGraph.loads(graph_data, registry=self._registry)
        if len(self._graphs) >= _GRAPH_CACHE_SIZE:
            del self._graphs[next(iter(self._graphs))]
        self._graphs[id(graph_data)] = (graph_data, graph)
        return graph

    def _checked_graph(self, metadata: ChannelMetadata) -> TransitionGraph:
        data = metadata.knobs.get("graph")
        if not isinstance(data, dict):
            raise _create_error(
                metadata,
                f"knobs['graph'] must be a transition graph dict (TransitionGraph.to_dict()), got {data!r}",
                "knob:graph",
            )
        try:
            graph = self._graph(data)
        except WorkflowGraphError as exc:
            raise _create_error(metadata, f"invalid graph: {exc.message}", "knob:graph") from exc
        ids = metadata.participant_ids()
        if graph.initial_speaker not in ids:
            raise _create_error(
                metadata,
                f"initial_speaker {graph.initial_speaker!r} is not a participant; pick one of {ids}",
                "knob:graph",
            )
        strangers = sorted(graph.agent_ids() - set(ids))
        if strangers:
            raise _create_error(
                metadata,
                f"AgentTarget names non-participants {strangers}; invite them or target one of {ids}",
                "knob:graph",
            )
        context = metadata.knobs.get("context_vars")
        if context is not None and not isinstance(context, dict):
            raise _create_error(
                metadata, f"knobs['context_vars'] must be a dict, got {context!r}", "knob:context_vars"
            )
        return graph


def _create_error(metadata: ChannelMetadata, problem: str, reason: str) -> WorkflowGraphError:
    return WorkflowGraphError(
        f"workflow channel {metadata.channel_id}: {problem}", channel_id=metadata.channel_id, reason=reason
    )


def _route(
    graph: TransitionGraph, state: WorkflowState, envelope: Envelope, routing: dict[str, Any]
) -> TransitionDecision:
    kind = routing.get("kind")
    if kind == "finish":
        reason = routing.get("reason")
        return TransitionDecision(None, reason if isinstance(reason, str) and reason else "finished")
    target = routing.get("target")
    if kind == "handoff" and isinstance(target, str) and target:
        return TransitionDecision(target)
    return graph.select(state, envelope)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _updated(context: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``context`` after ``{"delete": [...], "set": {...}}`` (deletes first); never mutates it."""
    delete = updates.get("delete")
    to_set = updates.get("set")
    if not delete and not to_set:
        return context
    out = dict(context)
    if isinstance(delete, list):
        for key in delete:
            out.pop(key, None)
    if isinstance(to_set, dict):
        out.update(to_set)
    return out


def _check_context(metadata: ChannelMetadata, sender: str, updates: object, where: str) -> None:
    if updates is None:
        return
    if not isinstance(updates, dict):
        raise refuse(
            metadata, sender, f'{where} must be {{"set": {{...}}, "delete": [...]}}, got {updates!r}'
        )
    to_set = updates.get("set")
    if to_set is not None and not isinstance(to_set, dict):
        raise refuse(metadata, sender, f"{where}['set'] must be a dict of variables, got {to_set!r}")
    delete = updates.get("delete")
    if delete is not None and not (isinstance(delete, list) and all(isinstance(k, str) for k in delete)):
        raise refuse(metadata, sender, f"{where}['delete'] must be a list of variable names, got {delete!r}")


def _check_packet(metadata: ChannelMetadata, state: WorkflowState, envelope: Envelope) -> None:
    sender = envelope.sender_id
    data = envelope.event_data
    _check_context(metadata, sender, data.get("context_updates"), "packet context_updates")
    routing = data.get("routing")
    if routing is None:
        return
    if not isinstance(routing, dict):
        raise refuse(metadata, sender, f"packet routing must be a dict, got {routing!r}")
    kind = routing.get("kind", "text")
    if kind not in _ROUTING_KINDS:
        raise refuse(
            metadata, sender, f"packet routing kind must be one of {sorted(_ROUTING_KINDS)}, got {kind!r}"
        )
    for key in ("tool", "reason", "target"):
        value = routing.get(key)
        if value is not None and not isinstance(value, str):
            raise refuse(metadata, sender, f"packet routing {key!r} must be a string, got {value!r}")
    target = routing.get("target")
    if kind == "handoff" and target and target not in state.participant_order:
        others = list(state.participant_order)
        raise refuse(
            metadata,
            sender,
            f"handoff target {target} is not a participant; hand off to one of {others}",
        )
