"""ag2's task-observation ops, served on hubbub's mirrored tasks.

An unmodified ag2 client mirrors the sub-tasks its agent runs during a turn
(its ``TaskMirror``) with ``observe_task`` (the task's ag2 ``TaskMetadata``),
``update_task`` (progress and the final state), ``record_observation`` and,
when one of those failed, ``fire_task_event``. hubbub has the same feature
under its own names (:class:`~hubbub.hub.tasks.TaskBook`, the ``task_event``
op), so these ops translate onto it:

* ``observe_task`` with state ``created`` / ``running``: ``started``, tagged
  with ``spec.capability`` when there is one (observing a task already open
  changes nothing); with a terminal state: started if need be, then finished.
* ``update_task`` with a terminal state: ``completed`` → ``succeeded``;
  ``failed``, ``cancelled`` and ``expired`` → ``failed`` (the error says
  which). Progress-only updates are accepted and not kept. An unknown task
  is ``not_found``, which ag2's mirror ignores.
* ``record_observation`` is accepted and changes nothing: the outcome was
  already counted in ``Resume.observed`` when ``update_task`` finished the
  task, and counting it twice would skew discovery's ranking.
* ``fire_task_event`` becomes an audit record ``task_event`` (reason: its kind).

The owner must be an agent bound to the calling connection, as for every
agent-scoped op. ``get_task`` and ``list_tasks`` are not served: hubbub keeps
no ag2-style task record. ``checkpoint_task`` and ``read_task_checkpoint`` are
served by ``hub/_checkpoint_ops.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, ProtocolError
from ..model.task import TaskEvent

if TYPE_CHECKING:
    from .session import Session

__all__ = ["fire_task_event", "observe_task", "record_observation", "update_task"]

_OPEN_STATES = frozenset({"created", "running"})
_FINISHED: dict[str, tuple[str, str | None]] = {
    "completed": ("succeeded", None),
    "failed": ("failed", "failed"),
    "cancelled": ("failed", "cancelled"),
    "expired": ("failed", "expired (reported by the agent)"),
}
_MAX_TEXT = 2000


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"param {key!r} must be a non-empty string, got {value!r}")
    return value


def _state(value: Any, what: str) -> str:
    if not isinstance(value, str) or (value not in _OPEN_STATES and value not in _FINISHED):
        known = ", ".join(sorted(_OPEN_STATES | _FINISHED.keys()))
        raise ProtocolError(f"{what} must be one of {known}, got {value!r}")
    return str(value)


def _owner_of(session: Session, task_id: str) -> str:
    for agent_id in sorted(session.bound):
        if task_id in session.hub.tasks.open_tasks(agent_id):
            return agent_id
    raise NotFoundError(
        f"no agent on this connection has an open task {task_id!r}; observe_task it first",
        reason="unknown_task",
    )


async def _finish(session: Session, owner: str, task_id: str, state: str, error: Any) -> TaskEvent:
    kind, default_error = _FINISHED[state]
    text = error if isinstance(error, str) and error else default_error
    if state in ("cancelled", "expired") and text != default_error:
        text = f"{state}: {text}"
    return await session.hub.tasks.record(
        owner, task_id, kind, error=text[:_MAX_TEXT] if text is not None else None
    )


async def observe_task(session: Session, p: dict[str, Any]) -> None:
    metadata = p.get("metadata")
    if not isinstance(metadata, dict):
        raise ProtocolError(f"param 'metadata' must be an ag2 TaskMetadata object, got {metadata!r}")
    owner = session._require_bound(metadata.get("owner_id"), "metadata.owner_id")
    task_id = _text(metadata, "task_id")
    state = _state(metadata.get("state", "created"), "metadata.state")
    spec = metadata.get("spec")
    capability = spec.get("capability") if isinstance(spec, dict) else None
    tasks = session.hub.tasks
    if task_id not in tasks.open_tasks(owner):
        capabilities = [capability] if isinstance(capability, str) and capability else None
        await tasks.record(owner, task_id, "started", capabilities=capabilities)
    if state in _FINISHED:
        await _finish(session, owner, task_id, state, metadata.get("error"))


async def update_task(session: Session, p: dict[str, Any]) -> None:
    task_id = _text(p, "task_id")
    owner = _owner_of(session, task_id)
    state = p.get("state")
    if state is None:
        return
    if _state(state, "param 'state'") in _FINISHED:
        await _finish(session, owner, task_id, state, p.get("error"))


async def record_observation(session: Session, p: dict[str, Any]) -> None:
    session._require_bound(p.get("owner_id"), "owner_id")
    _text(p, "capability")
    _state(p.get("outcome"), "param 'outcome'")


async def fire_task_event(session: Session, p: dict[str, Any]) -> None:
    task_id = _text(p, "task_id")
    kind = _text(p, "kind")
    payload = p.get("payload") or {}
    if not isinstance(payload, dict):
        raise ProtocolError(f"param 'payload' must be an object, got {payload!r}")
    if not session.bound:
        raise ProtocolError("fire_task_event needs an agent registered or attached on this connection")
    owner = payload.get("owner_id")
    actor = owner if isinstance(owner, str) and owner in session.bound else sorted(session.bound)[0]
    session.hub.governance.audit(
        "task_event",
        actor=actor,
        agent_id=actor,
        reason=kind[:200],
        data={
            "task_id": task_id[:200],
            "payload": {k: v[:_MAX_TEXT] if isinstance(v, str) else v for k, v in payload.items()},
        },
    )
