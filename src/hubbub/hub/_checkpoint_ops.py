"""The wire ops for task checkpoints: hubbub's ``checkpoint_*`` and ag2's two.

hubbub's ops take an optional ``agent_id`` (an agent bound to the calling
connection); without it the caller acts as every agent bound to it. A
connection with no agent bound may not use checkpoints, except an in-process
(trusted) one, which acts as the hub itself. Who may use which checkpoint is
decided by :class:`~hubbub.hub.checkpoints.Checkpoints`.

ag2's ``checkpoint_task`` / ``read_task_checkpoint`` (what ag2 1.2.1's
``HubBackedCheckpointStore`` sends) store and read a JSON object, with the same
owner rules; the caller acts as the agents bound to its connection.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Set
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError
from ..model.checkpoint import Checkpoint, CheckpointData, CheckpointInfo, check_task_id

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "checkpoint_delete",
    "checkpoint_get",
    "checkpoint_list",
    "checkpoint_put",
    "checkpoint_task",
    "read_task_checkpoint",
]


_BAD = "bad_checkpoint"


def _not_object(state: Any) -> ProtocolError:
    return ProtocolError(f"param 'state' must be a JSON object, got {state!r:.100}", reason=_BAD)


def _agents(session: Session, params: dict[str, Any]) -> Set[str] | None:
    agent_id = params.get("agent_id")
    if agent_id is not None:
        return {session._require_bound(agent_id)}
    if not session.bound and session.trusted:
        return None
    return set(session.bound)


def _data(params: dict[str, Any]) -> CheckpointData:
    state, blob = params.get("state"), params.get("blob")
    if (state is None) == (blob is None):
        raise ProtocolError(
            "checkpoint_put takes exactly one of 'state' (a JSON object) or 'blob' (bytes, base64 in JSON)",
            reason="bad_checkpoint",
        )
    if state is not None:
        if not isinstance(state, dict):
            raise _not_object(state)
        return state
    if isinstance(blob, bytes):
        return blob
    if not isinstance(blob, str):
        raise ProtocolError(f"param 'blob' must be a base64 string, got {blob!r:.100}", reason=_BAD)
    try:
        return base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"param 'blob' is not valid base64 ({exc})", reason="bad_checkpoint") from exc


async def checkpoint_put(session: Session, p: dict[str, Any]) -> CheckpointInfo:
    agents = _agents(session, p)
    return await session.hub.checkpoints.save(check_task_id(p.get("task_id")), _data(p), agents=agents)


async def checkpoint_get(session: Session, p: dict[str, Any]) -> Checkpoint | None:
    return await session.hub.checkpoints.load(check_task_id(p.get("task_id")), agents=_agents(session, p))


async def checkpoint_list(session: Session, p: dict[str, Any]) -> list[CheckpointInfo]:
    return await session.hub.checkpoints.list(agents=_agents(session, p))


async def checkpoint_delete(session: Session, p: dict[str, Any]) -> CheckpointInfo:
    return await session.hub.checkpoints.delete(check_task_id(p.get("task_id")), agents=_agents(session, p))


async def checkpoint_task(session: Session, p: dict[str, Any]) -> None:
    state = p.get("state")
    if not isinstance(state, dict):
        raise _not_object(state)
    await session.hub.checkpoints.save(check_task_id(p.get("task_id")), state, agents=_ag2_agents(session))


async def read_task_checkpoint(session: Session, p: dict[str, Any]) -> dict[str, Any] | None:
    task_id = check_task_id(p.get("task_id"))
    checkpoint = await session.hub.checkpoints.load(task_id, agents=_ag2_agents(session))
    if checkpoint is None:
        return None
    if checkpoint.state is None:
        raise ProtocolError(
            f"the checkpoint of task {task_id} holds bytes, not a JSON object: read it with checkpoint_get",
            reason="bad_checkpoint",
        )
    return checkpoint.state


def _ag2_agents(session: Session) -> Set[str] | None:
    return None if not session.bound and session.trusted else set(session.bound)
