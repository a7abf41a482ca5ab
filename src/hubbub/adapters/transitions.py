"""The ``TransitionGraph`` vocabulary: who speaks next in a workflow channel.

A graph is an initial speaker, a list of :class:`Transition` rules (a
condition and a target), a default target for when no rule fires, and an
optional turn cap. After each accepted turn the workflow adapter asks
:meth:`TransitionGraph.select` for a :class:`TransitionDecision`: the next
speaker, or None and a close reason.

A graph is data. :meth:`TransitionGraph.to_dict` / :meth:`TransitionGraph.loads`
use exactly the dict format of AG2's ``ag2.network.transitions``::

    {"initial_speaker": str,
     "transitions": [{"when": {"name": ..., "args": {...}},
                      "then": {"name": ..., "args": {...}}, "priority": int}],
     "default_target": {"name": ..., "args": {...}} | None,   # None = TerminateTarget()
     "max_turns": int | None}

so a graph an AG2 client sends is a graph hubbub runs. Targets and conditions
are looked up by ``name`` in a :class:`TransitionRegistry`; register custom
ones with :func:`register_target` / :func:`register_condition` before loading.
Every malformed graph raises :class:`~hubbub.errors.WorkflowGraphError`.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import msgspec

from ..errors import UsageError, WorkflowGraphError
from ..model.envelope import Envelope
from ._routing import (
    AgentTarget,
    Always,
    ContextEquals,
    FromSpeaker,
    RevertToInitiatorTarget,
    RoundRobinTarget,
    RoutingState,
    StayTarget,
    TerminateTarget,
    ToolCalled,
    TransitionCondition,
    TransitionDecision,
    TransitionTarget,
)

__all__ = [
    "AgentTarget",
    "Always",
    "ContextEquals",
    "FromSpeaker",
    "RevertToInitiatorTarget",
    "RoundRobinTarget",
    "RoutingState",
    "StayTarget",
    "TerminateTarget",
    "ToolCalled",
    "Transition",
    "TransitionCondition",
    "TransitionDecision",
    "TransitionGraph",
    "TransitionRegistry",
    "TransitionTarget",
    "register_condition",
    "register_target",
    "round_robin",
    "sequence",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """If ``when`` fires, ``then`` picks the next speaker.

    Lower ``priority`` is checked first; equal priorities keep list order.
    """

    when: TransitionCondition
    then: TransitionTarget
    priority: int = 0

    def __post_init__(self) -> None:
        if not callable(getattr(self.when, "evaluate", None)):
            raise WorkflowGraphError(
                f"Transition.when must be a condition with evaluate(), got {self.when!r}"
            )
        if not callable(getattr(self.then, "resolve", None)):
            raise WorkflowGraphError(f"Transition.then must be a target with resolve(), got {self.then!r}")
        if type(self.priority) is not int:
            raise WorkflowGraphError(f"Transition.priority must be an int, got {self.priority!r}")


_BUILTIN_TARGETS: tuple[type[TransitionTarget], ...] = (
    AgentTarget,
    RoundRobinTarget,
    StayTarget,
    RevertToInitiatorTarget,
    TerminateTarget,
)
_BUILTIN_CONDITIONS: tuple[type[TransitionCondition], ...] = (Always, FromSpeaker, ToolCalled, ContextEquals)

_T = TypeVar("_T")


class TransitionRegistry:
    """Target and condition classes by ``name``, the built-ins included.

    A custom class needs a ``name`` class attribute, ``resolve`` (target) or
    ``evaluate`` (condition), and a constructor taking its args as keywords;
    make it a msgspec Struct or dataclass so its args serialise and are
    type-checked on load. Registering an existing name replaces the class.
    """

    _default: ClassVar[TransitionRegistry | None] = None

    def __init__(self) -> None:
        self._targets: dict[str, type[TransitionTarget]] = {cls.name: cls for cls in _BUILTIN_TARGETS}
        self._conditions: dict[str, type[TransitionCondition]] = {
            cls.name: cls for cls in _BUILTIN_CONDITIONS
        }

    @classmethod
    def default(cls) -> TransitionRegistry:
        """The process-wide registry that :meth:`TransitionGraph.loads` uses unless given one."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def register_target(self, target_cls: type[TransitionTarget]) -> None:
        """Make ``target_cls`` loadable under ``target_cls.name``."""
        self._targets[_checked_name(target_cls, "resolve")] = target_cls

    def register_condition(self, condition_cls: type[TransitionCondition]) -> None:
        """Make ``condition_cls`` loadable under ``condition_cls.name``."""
        self._conditions[_checked_name(condition_cls, "evaluate")] = condition_cls

    def target_from_dict(self, data: object, where: str = "target") -> TransitionTarget:
        """A target from ``{"name", "args"}``; None means ``TerminateTarget()``."""
        if data is None:
            return TerminateTarget()
        name, args = _name_and_args(data, where)
        cls = self._targets.get(name)
        if cls is None:
            raise WorkflowGraphError(
                f"{where}: unknown transition target {name!r}; known targets: {sorted(self._targets)}. "
                "Register a custom target with register_target() before loading the graph."
            )
        return _build(cls, args, where, name)

    def condition_from_dict(self, data: object, where: str = "condition") -> TransitionCondition:
        """A condition from ``{"name", "args"}``."""
        name, args = _name_and_args(data, where)
        cls = self._conditions.get(name)
        if cls is None:
            raise WorkflowGraphError(
                f"{where}: unknown transition condition {name!r}; known conditions: "
                f"{sorted(self._conditions)}. Register a custom condition with register_condition() "
                "before loading the graph."
            )
        return _build(cls, args, where, name)


def register_target(target_cls: type[TransitionTarget]) -> None:
    """Register a custom target on the process-wide registry."""
    TransitionRegistry.default().register_target(target_cls)


def register_condition(condition_cls: type[TransitionCondition]) -> None:
    """Register a custom condition on the process-wide registry."""
    TransitionRegistry.default().register_condition(condition_cls)


@dataclasses.dataclass(frozen=True, slots=True)
class TransitionGraph:
    """The script of a workflow channel. Construction validates it.

    ``max_turns`` caps the substantive turns (None = no cap); the channel
    closes with reason ``"max_turns"`` when the cap is reached, unless the
    graph closed it for its own reason on that same turn.
    """

    initial_speaker: str
    transitions: list[Transition] = dataclasses.field(default_factory=list)
    default_target: TransitionTarget = dataclasses.field(default_factory=TerminateTarget)
    max_turns: int | None = None
    # Sorted once here because select() runs on every accepted turn.
    _ordered: tuple[Transition, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.initial_speaker, str) or not self.initial_speaker:
            raise WorkflowGraphError(
                f"initial_speaker must be a non-empty agent id, got {self.initial_speaker!r}; "
                "name the participant who speaks first."
            )
        if self.max_turns is not None and (type(self.max_turns) is not int or self.max_turns < 1):
            raise WorkflowGraphError(
                f"max_turns must be an int of 1 or more, or None for no cap; got {self.max_turns!r}"
            )
        if not callable(getattr(self.default_target, "resolve", None)):
            raise WorkflowGraphError(
                f"default_target must be a target with resolve(), got {self.default_target!r}"
            )
        transitions = list(self.transitions)
        for i, tr in enumerate(transitions):
            if not isinstance(tr, Transition):
                raise WorkflowGraphError(f"transitions[{i}] must be a Transition, got {tr!r}")
        object.__setattr__(self, "transitions", transitions)
        object.__setattr__(self, "_ordered", tuple(sorted(transitions, key=lambda t: t.priority)))

    def select(self, state: RoutingState, envelope: Envelope) -> TransitionDecision:
        """The decision of the first transition that fires, else of ``default_target``."""
        for tr in self._ordered:
            if tr.when.evaluate(state, envelope):
                return tr.then.resolve(state, envelope)
        return self.default_target.resolve(state, envelope)

    def agent_ids(self) -> set[str]:
        """Every agent id an :class:`AgentTarget` in the graph can hand the turn to."""
        targets = [tr.then for tr in self.transitions] + [self.default_target]
        return {t.agent_id for t in targets if isinstance(t, AgentTarget)}

    def to_dict(self) -> dict[str, Any]:
        """The AG2 wire dict; :meth:`loads` turns it back into an equal graph."""
        return {
            "initial_speaker": self.initial_speaker,
            "transitions": [
                {"when": _to_dict(tr.when), "then": _to_dict(tr.then), "priority": tr.priority}
                for tr in self.transitions
            ],
            "default_target": _to_dict(self.default_target),
            "max_turns": self.max_turns,
        }

    def dumps(self) -> str:
        """:meth:`to_dict` as JSON with sorted keys (byte-identical to AG2's ``dumps``)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def loads(
        cls, data: str | Mapping[str, Any], registry: TransitionRegistry | None = None
    ) -> TransitionGraph:
        """A graph from :meth:`to_dict` output or its JSON.

        Names resolve in ``registry`` (default: the process-wide one). Raises
        :class:`WorkflowGraphError` naming the bad part of the graph.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise WorkflowGraphError(f"transition graph is not valid JSON: {exc}") from exc
        if not isinstance(data, Mapping):
            raise WorkflowGraphError(
                f"a transition graph must be a dict (TransitionGraph.to_dict()), got {type(data).__name__}"
            )
        reg = registry if registry is not None else TransitionRegistry.default()
        if "initial_speaker" not in data:
            raise WorkflowGraphError("transition graph has no initial_speaker; name who speaks first")
        raw = data.get("transitions")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise WorkflowGraphError(f"transitions must be a list, got {type(raw).__name__}")
        transitions = [_transition_from_dict(item, reg, f"transitions[{i}]") for i, item in enumerate(raw)]
        return cls(
            initial_speaker=data["initial_speaker"],
            transitions=transitions,
            default_target=reg.target_from_dict(data.get("default_target"), "default_target"),
            max_turns=data.get("max_turns"),
        )

    @classmethod
    def round_robin(cls, participants: Sequence[str], max_turns: int | None = None) -> TransitionGraph:
        """Everyone in ``participants`` order, cycling; closes after ``max_turns`` if given."""
        if not participants:
            raise WorkflowGraphError("round_robin needs at least one participant")
        return cls(
            initial_speaker=participants[0],
            transitions=[Transition(Always(), RoundRobinTarget())],
            default_target=TerminateTarget("round_robin_complete"),
            max_turns=max_turns,
        )

    @classmethod
    def sequence(cls, steps: Sequence[str]) -> TransitionGraph:
        """A pipeline: ``steps[0]``, then ``steps[1]``, ..., then close ("sequence_complete").

        Routing is by sender, so an agent listed twice always hands over to
        the step after its first appearance; list each agent once.
        """
        if not steps:
            raise WorkflowGraphError("sequence needs at least one step")
        return cls(
            initial_speaker=steps[0],
            transitions=[Transition(FromSpeaker(a), AgentTarget(b)) for a, b in itertools.pairwise(steps)],
            default_target=TerminateTarget("sequence_complete"),
            max_turns=len(steps),
        )


def round_robin(participants: Sequence[str], max_turns: int | None = None) -> TransitionGraph:
    """Shorthand for :meth:`TransitionGraph.round_robin`."""
    return TransitionGraph.round_robin(participants, max_turns=max_turns)


def sequence(steps: Sequence[str]) -> TransitionGraph:
    """Shorthand for :meth:`TransitionGraph.sequence`."""
    return TransitionGraph.sequence(steps)


def _checked_name(cls: type, method: str) -> str:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise UsageError(f"{cls.__name__} needs a non-empty class attribute `name` to be registered")
    if not callable(getattr(cls, method, None)):
        raise UsageError(f"{cls.__name__} needs a {method}(state, envelope) method to be registered")
    return name


def _name_and_args(data: object, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(data, Mapping):
        raise WorkflowGraphError(f'{where} must be a dict {{"name": ..., "args": {{...}}}}, got {data!r}')
    name = data.get("name")
    if not isinstance(name, str):
        raise WorkflowGraphError(f"{where} needs a string 'name', got {name!r}")
    args = data.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise WorkflowGraphError(f"{where} ({name!r}) args must be a dict, got {args!r}")
    return name, args


def _build(cls: type[_T], args: dict[str, Any], where: str, name: str) -> _T:
    try:
        if issubclass(cls, msgspec.Struct) or dataclasses.is_dataclass(cls):
            return msgspec.convert(args, cls)
        return cls(**args)
    except (msgspec.ValidationError, TypeError, ValueError) as exc:
        raise WorkflowGraphError(
            f"{where} ({name!r}) has bad args {args!r}: {exc}; expected {_describe(cls)}"
        ) from exc


def _describe(cls: type) -> str:
    if issubclass(cls, msgspec.Struct):
        names = [f.name for f in msgspec.structs.fields(cls)]
    elif dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    else:
        return f"the keyword arguments of {cls.__name__}()"
    return f"args {names}" if names else "no args"


def _to_dict(obj: TransitionTarget | TransitionCondition) -> dict[str, Any]:
    args: dict[str, Any]
    if isinstance(obj, msgspec.Struct):
        args = copy.deepcopy(msgspec.structs.asdict(obj))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        args = dataclasses.asdict(obj)
    else:
        args = {}
    return {"name": obj.name, "args": args}


def _transition_from_dict(data: object, reg: TransitionRegistry, where: str) -> Transition:
    if not isinstance(data, Mapping):
        raise WorkflowGraphError(f'{where} must be a dict {{"when", "then", "priority"}}, got {data!r}')
    for key in ("when", "then"):
        if key not in data:
            raise WorkflowGraphError(f"{where} has no {key!r}; a transition needs both 'when' and 'then'")
    priority = data.get("priority", 0)
    if type(priority) is not int:
        raise WorkflowGraphError(f"{where}.priority must be an int, got {priority!r}")
    return Transition(
        when=reg.condition_from_dict(data["when"], f"{where}.when"),
        then=reg.target_from_dict(data["then"], f"{where}.then"),
        priority=priority,
    )
