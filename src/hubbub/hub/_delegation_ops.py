"""The wire ops for delegated tasks and broadcast: param checks, then the hub's own methods.

``delegate``, ``task_cancel`` and ``broadcast`` act as an agent bound to the
calling connection (its ``agent_id``), like every agent-scoped op; the reads
(``task_status``, ``task_wait``, ``task_list``) take a task id or filters.
A param of the wrong JSON type is a ``protocol_error`` naming it; a value of
the right type the hub cannot use (a TTL of -1, an unknown capability) is the
hub's own ``usage`` / ``not_found`` error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError
from ..model.delegation import DelegatedTask
from ._ops_admin import require_viewer
from ._params import opt_str, req_str

if TYPE_CHECKING:
    from .session import Session

__all__ = ["MAX_WAIT", "broadcast", "delegate", "task_cancel", "task_list", "task_status", "task_wait"]

MAX_WAIT = 300.0
"""The longest one ``task_wait`` request holds (a client waiting longer asks again)."""


def _number(params: dict[str, Any], key: str, default: float) -> Any:
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"param {key!r} must be a number, got {value!r}")
    return value


def _integer(params: dict[str, Any], key: str, default: int) -> Any:
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"param {key!r} must be an integer, got {value!r}")
    return value


async def delegate(session: Session, p: dict[str, Any]) -> DelegatedTask:
    requester = session._require_bound(p.get("agent_id"))
    return await session.hub.delegate(
        requester,
        req_str(p, "capability"),
        p.get("input"),
        target=opt_str(p, "target"),
        ttl=_number(p, "ttl", 60.0),
        priority=_integer(p, "priority", 0),
        idempotency_key=opt_str(p, "idempotency_key"),
        max_retries=_integer(p, "max_retries", 2),
    )


async def task_status(session: Session, p: dict[str, Any]) -> DelegatedTask:
    require_viewer(session, "task_status")
    return session.hub.get_task(req_str(p, "task_id"))


async def task_wait(session: Session, p: dict[str, Any]) -> DelegatedTask:
    require_viewer(session, "task_wait")
    task_id = req_str(p, "task_id")
    timeout = _number(p, "timeout", 30.0)
    if timeout > MAX_WAIT:
        raise ProtocolError(
            f"param 'timeout' must be at most {MAX_WAIT:g} seconds (ask again), got {timeout!r}"
        )
    return await session.hub.wait_task(task_id, timeout)


async def task_list(session: Session, p: dict[str, Any]) -> list[DelegatedTask]:
    require_viewer(session, "task_list")
    return session.hub.list_tasks(
        state=opt_str(p, "state"),
        requester_id=opt_str(p, "requester_id"),
        worker_id=opt_str(p, "worker_id"),
        limit=_integer(p, "limit", 100),
    )


async def task_cancel(session: Session, p: dict[str, Any]) -> DelegatedTask:
    agent_id = session._require_bound(p.get("agent_id"))
    return await session.hub.cancel_task(req_str(p, "task_id"), by=agent_id)


async def broadcast(session: Session, p: dict[str, Any]) -> dict[str, int]:
    sender = session._require_bound(p.get("agent_id"))
    text = p.get("text")
    if not isinstance(text, str):
        raise ProtocolError(f"param 'text' must be a string, got {text!r:.80}")
    return {"recipients": await session.hub.broadcast(sender, text, capability=opt_str(p, "capability"))}
