"""Checkpoint stores: where a task saves the state it needs to resume after a restart.

``CheckpointStore`` is the interface (a Protocol): save the latest checkpoint of
a task id (a JSON object or bytes), load it back, list and delete. Two
implementations:

* :class:`MemoryCheckpointStore`: a dict, for tests and for tasks that need no
  durability.
* :class:`HubBackedCheckpointStore`: through a hub (a ``Hub`` in this process,
  or a ``HubClient`` over any link), which keeps them in its store. What a task
  checkpointed survives a restart of the process that wrote it and of the hub
  (on a durable store such as ``SqliteStore``). See ``hub/checkpoints.py`` for
  who may read which checkpoint.

``load`` returns None for a task with no checkpoint: a task that finds none
starts from the beginning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from ..errors import NotFoundError, UsageError
from ..model._time import iso_now
from ..model.checkpoint import Checkpoint, CheckpointData, CheckpointInfo, check_task_id
from ._convert import as_type

if TYPE_CHECKING:
    from ..hub.core import Hub
    from .hub_client import HubClient

__all__ = ["CheckpointStore", "HubBackedCheckpointStore", "MemoryCheckpointStore"]


@runtime_checkable
class CheckpointStore(Protocol):
    """The latest checkpoint per task id."""

    async def save(self, task_id: str, data: CheckpointData) -> CheckpointInfo:
        """Replace ``task_id``'s checkpoint with ``data`` (a JSON object or bytes); once this returns
        it is as durable as the store is."""
        ...

    async def load(self, task_id: str) -> CheckpointData | None:
        """The data of ``task_id``'s latest checkpoint, or None if it has none."""
        ...

    async def list(self) -> list[CheckpointInfo]:
        """Every checkpoint this store holds (that the caller may read), by task id."""
        ...

    async def delete(self, task_id: str) -> bool:
        """Forget ``task_id``'s checkpoint; False if it had none."""
        ...


class MemoryCheckpointStore:
    """Checkpoints in a dict; gone when the process ends."""

    def __init__(self) -> None:
        self._checkpoints: dict[str, Checkpoint] = {}

    async def save(self, task_id: str, data: CheckpointData) -> CheckpointInfo:
        check_task_id(task_id)
        previous = self._checkpoints.get(task_id)
        if isinstance(data, bytes | bytearray | memoryview):
            raw = bytes(data)
            blob: bytes | None = raw
            state: dict[str, Any] | None = None
            size = len(raw)
        elif isinstance(data, dict):
            # A copy through JSON: what load returns is what a hub-backed store would return.
            try:
                encoded = msgspec.json.encode(data)
            except (TypeError, msgspec.EncodeError) as exc:
                raise UsageError(f"checkpoint of task {task_id} is not JSON-encodable: {exc}") from exc
            blob, state, size = None, msgspec.json.decode(encoded), len(encoded)
        else:
            raise UsageError(f"a checkpoint is a JSON object (dict) or bytes, got {type(data).__name__}")
        checkpoint = Checkpoint(
            task_id=task_id,
            version=previous.version + 1 if previous is not None else 1,
            size=size,
            kind="bytes" if blob is not None else "json",
            saved_at=iso_now(),
            state=state,
            blob=blob,
        )
        self._checkpoints[task_id] = checkpoint
        return checkpoint.info()

    async def load(self, task_id: str) -> CheckpointData | None:
        checkpoint = self._checkpoints.get(task_id)
        return None if checkpoint is None else checkpoint.data

    async def list(self) -> list[CheckpointInfo]:
        return [self._checkpoints[t].info() for t in sorted(self._checkpoints)]

    async def delete(self, task_id: str) -> bool:
        return self._checkpoints.pop(task_id, None) is not None


class HubBackedCheckpointStore:
    """Checkpoints kept by a hub: ``HubBackedCheckpointStore(hub)`` in process, or
    ``HubBackedCheckpointStore(hub_client)`` over a link.

    ``agent_id`` is the agent the checkpoints are saved as (one hosted by the
    client); without it, every agent the client has registered or attached
    acts, and a ``Hub`` given directly acts as itself (no owner checks).
    A checkpoint over the hub's size limit raises
    :class:`~hubbub.errors.ProtocolError` (reason ``checkpoint_too_large``); one
    the caller may not touch raises :class:`~hubbub.errors.AccessDeniedError`.
    """

    def __init__(self, hub_or_client: Hub | HubClient, *, agent_id: str | None = None) -> None:
        self._target = hub_or_client
        self.agent_id = agent_id

    async def _call(self, op: str, params: dict[str, Any]) -> Any:
        from ..hub.core import Hub  # the client package must not need the hub at import

        if self.agent_id is not None:
            params["agent_id"] = self.agent_id
        if isinstance(self._target, Hub):
            checkpoints = self._target.checkpoints
            agents = None if self.agent_id is None else {self.agent_id}
            if op == "checkpoint_put":
                data = params["state"] if "state" in params else params["blob"]
                return await checkpoints.save(params["task_id"], data, agents=agents)
            if op == "checkpoint_get":
                return await checkpoints.load(params["task_id"], agents=agents)
            if op == "checkpoint_list":
                return await checkpoints.list(agents=agents)
            return await checkpoints.delete(params["task_id"], agents=agents)
        return await self._target.request(op, params)

    async def save(self, task_id: str, data: CheckpointData) -> CheckpointInfo:
        if isinstance(data, bytes | bytearray | memoryview):
            params: dict[str, Any] = {"task_id": task_id, "blob": bytes(data)}
        elif isinstance(data, dict):
            params = {"task_id": task_id, "state": data}
        else:
            raise UsageError(f"a checkpoint is a JSON object (dict) or bytes, got {type(data).__name__}")
        return as_type(CheckpointInfo, await self._call("checkpoint_put", params))  # type: ignore[no-any-return]

    async def load(self, task_id: str) -> CheckpointData | None:
        checkpoint = await self.get(task_id)
        return None if checkpoint is None else checkpoint.data

    async def get(self, task_id: str) -> Checkpoint | None:
        """The latest checkpoint with its version, owner and time, or None."""
        raw = await self._call("checkpoint_get", {"task_id": task_id})
        return None if raw is None else as_type(Checkpoint, raw)

    async def list(self) -> list[CheckpointInfo]:
        found: list[CheckpointInfo] = as_type(list[CheckpointInfo], await self._call("checkpoint_list", {}))
        return found

    async def delete(self, task_id: str) -> bool:
        try:
            await self._call("checkpoint_delete", {"task_id": task_id})
        except NotFoundError as exc:
            if exc.reason != "no_checkpoint":
                raise
            return False
        return True
