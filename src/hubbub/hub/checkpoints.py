"""Task checkpoints kept by the hub, in its store, so they survive a restart of the hub and of
whoever wrote them.

Each task id has at most one checkpoint, the latest, stored under the keyed
state key ``ckpt/<task_id>`` (written in order with the WAL like every keyed
write, and awaited: a save returns once it is durable).

Who may read, replace or delete the checkpoint of a task:

* a delegated task of this hub (see :mod:`hubbub.hub.delegation`): its
  requester and its current worker, and no one else;
* any other task id: the agent that saved its first checkpoint (its owner),
  and no one else. The first save claims the id. This is how ag2's hub
  treats task ids it has not observed, and it covers the tasks an agent runs
  on its own.

A caller acts as a set of agents (those bound to its connection, or the one
it names); ``None`` is a trusted in-process caller (the hub's own code, or a
``HubBackedCheckpointStore`` on a ``Hub``), which may do anything. A checkpoint
larger than :attr:`Checkpoints.max_bytes` is refused with a ``protocol_error``
(reason ``checkpoint_too_large``) naming both sizes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Set
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..errors import AccessDeniedError, NotFoundError, ProtocolError, StorageError, UsageError
from ..model._time import iso_now
from ..model.checkpoint import MAX_CHECKPOINT_BYTES, Checkpoint, CheckpointData, CheckpointInfo, check_task_id

if TYPE_CHECKING:
    from .core import Hub

__all__ = ["CHECKPOINT_PREFIX", "Checkpoints"]

CHECKPOINT_PREFIX = "ckpt/"
"""Key prefix of checkpoints in the store's keyed state: ``ckpt/<task_id>``."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Checkpoint).decode


class Checkpoints:
    """The checkpoints of one hub's tasks."""

    def __init__(self, hub: Hub, *, max_bytes: int = MAX_CHECKPOINT_BYTES) -> None:
        self.hub = hub
        self.max_bytes = max_bytes
        """The largest checkpoint saved, in bytes."""
        self._lock = asyncio.Lock()  # a read-check-write per save: the first writer's claim is atomic

    async def save(
        self, task_id: str, data: CheckpointData, *, agents: Set[str] | None = None
    ) -> CheckpointInfo:
        """Replace ``task_id``'s checkpoint with ``data``; returns once it is durable."""
        check_task_id(task_id)
        if isinstance(data, bytes | bytearray | memoryview):
            raw = bytes(data)
            blob: bytes | None = raw
            state: dict[str, Any] | None = None
            size = len(raw)
        elif isinstance(data, dict):
            blob, state = None, data
            try:
                size = len(_encode(state))
            except (TypeError, msgspec.EncodeError) as exc:
                raise UsageError(f"checkpoint of task {task_id} is not JSON-encodable: {exc}") from exc
        else:
            raise ProtocolError(
                f"a checkpoint is a JSON object or bytes, got {type(data).__name__}", reason="bad_checkpoint"
            )
        if size > self.max_bytes:
            raise ProtocolError(
                f"checkpoint of task {task_id} is {size} bytes, over this hub's limit of {self.max_bytes} "
                "bytes: checkpoint less (keep large artifacts in a KnowledgeStore and checkpoint their path)",
                reason="checkpoint_too_large",
            )
        async with self._lock:
            previous = await self._read(task_id)
            actor = self._authorize(task_id, previous, agents)
            checkpoint = Checkpoint(
                task_id=task_id,
                owner_id=previous.owner_id if previous is not None else actor,
                version=previous.version + 1 if previous is not None else 1,
                size=size,
                kind="bytes" if blob is not None else "json",
                saved_at=iso_now(),
                state=state,
                blob=blob,
            )
            durable = self.hub.store.put_kv(CHECKPOINT_PREFIX + task_id, _encode(checkpoint))
            if durable is not None:
                await durable
        return checkpoint.info()

    async def load(self, task_id: str, *, agents: Set[str] | None = None) -> Checkpoint | None:
        """The latest checkpoint of ``task_id``, or None if it has none."""
        check_task_id(task_id)
        checkpoint = await self._read(task_id)
        self._authorize(task_id, checkpoint, agents)
        return checkpoint

    async def delete(self, task_id: str, *, agents: Set[str] | None = None) -> CheckpointInfo:
        """Forget ``task_id``'s checkpoint; returns what it was. ``not_found`` if it has none."""
        check_task_id(task_id)
        async with self._lock:
            checkpoint = await self._read(task_id)
            self._authorize(task_id, checkpoint, agents)
            if checkpoint is None:
                raise NotFoundError(
                    f"task {task_id} has no checkpoint on this hub (list them with checkpoint_list)",
                    reason="no_checkpoint",
                )
            durable = self.hub.store.delete_kv(CHECKPOINT_PREFIX + task_id)
            if durable is not None:
                await durable
        return checkpoint.info()

    async def list(self, *, agents: Set[str] | None = None) -> list[CheckpointInfo]:
        """Every checkpoint the caller may read, by task id. Reads them all: not for a hot path."""
        found = []
        for data in (await self.hub.store.scan_kv(CHECKPOINT_PREFIX)).values():
            checkpoint = self._decode(data)
            if checkpoint is not None and self._allowed(checkpoint.task_id, checkpoint, agents) is not False:
                found.append(checkpoint.info())
        return found

    # who may

    def _authorize(self, task_id: str, checkpoint: Checkpoint | None, agents: Set[str] | None) -> str | None:
        """The agent the caller acts as (None: trusted); :class:`AccessDeniedError` if it may not."""
        allowed = self._allowed(task_id, checkpoint, agents)
        if allowed is not False:
            return allowed
        task = self.hub.delegations.records.tasks.get(task_id)
        if task is not None:
            raise AccessDeniedError(
                f"only the requester or the worker of delegated task {task_id} may use its checkpoint",
                reason="not_task_party",
            )
        if checkpoint is None:
            raise AccessDeniedError(
                f"checkpoints are saved and read as an agent: register or attach one first (task {task_id})",
                reason="not_bound",
            )
        raise AccessDeniedError(
            f"the checkpoint of task {task_id} belongs to agent {checkpoint.owner_id}; "
            "only its owner may read or change it",
            reason="not_owner",
        )

    def _allowed(
        self, task_id: str, checkpoint: Checkpoint | None, agents: Set[str] | None
    ) -> str | Literal[False] | None:
        """The agent the caller acts as, None when trusted, False when it may not."""
        if agents is None:
            return None
        if not agents:
            return False
        task = self.hub.delegations.records.tasks.get(task_id)
        if task is not None:
            parties = [a for a in (task.requester_id, task.worker_id) if a is not None and a in agents]
            return parties[0] if parties else False
        if checkpoint is not None and checkpoint.owner_id is not None:
            return checkpoint.owner_id if checkpoint.owner_id in agents else False
        return self._claimant(task_id, agents)

    def _claimant(self, task_id: str, agents: Set[str]) -> str:
        """Who claims a new id: the agent mirroring a task of that id, else the first by id."""
        for agent_id in sorted(agents):
            if task_id in self.hub.tasks.open_tasks(agent_id):
                return agent_id
        return sorted(agents)[0]

    # storage

    async def _read(self, task_id: str) -> Checkpoint | None:
        data = await self.hub.store.get_kv(CHECKPOINT_PREFIX + task_id)
        if data is None:
            return None
        checkpoint = self._decode(data)
        if checkpoint is None:
            raise StorageError(
                f"the stored checkpoint of task {task_id} does not decode; restore the store from a backup",
                reason="bad_record",
            )
        return checkpoint

    def _decode(self, data: bytes) -> Checkpoint | None:
        try:
            return _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
