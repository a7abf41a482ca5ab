"""Task checkpoints: the state a task saved so that it can resume after a restart. No I/O here.

A checkpoint belongs to one task id and holds either a JSON object (``state``)
or opaque bytes (``blob``), never both. Each save replaces the previous one
and bumps ``version``; only the latest is kept.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import msgspec

from ..errors import ProtocolError

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "TASK_ID_PATTERN",
    "Checkpoint",
    "CheckpointData",
    "CheckpointInfo",
    "check_task_id",
]

CheckpointData = dict[str, Any] | bytes
"""What a task checkpoints: a JSON object, or bytes."""

MAX_CHECKPOINT_BYTES: Final = 1024 * 1024
"""The default largest checkpoint a hub takes (its encoded JSON ``state`` or its ``blob``)."""

TASK_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""Task ids a checkpoint may name: what ag2 accepts (plus ``:``), at most 128 characters."""


def check_task_id(task_id: Any) -> str:
    """``task_id`` if it is a valid checkpoint task id; :class:`ProtocolError` naming it otherwise."""
    if not isinstance(task_id, str) or not TASK_ID_PATTERN.fullmatch(task_id):
        raise ProtocolError(
            f"task_id must be 1 to 128 letters, digits, '.', '_', ':' or '-' (starting with a letter "
            f"or digit), got {task_id!r}",
            reason="bad_task_id",
        )
    return task_id


class CheckpointInfo(msgspec.Struct, kw_only=True, frozen=True):
    """What a checkpoint is, without its data.

    ``owner_id`` is the agent that saved the first checkpoint of the task (None when a
    trusted in-process caller did). ``size`` is the data's size in bytes (a ``state``
    counted as its JSON encoding). ``saved_at`` is ISO-8601 UTC.
    """

    task_id: str
    owner_id: str | None = None
    version: int
    size: int
    kind: Literal["json", "bytes"]
    saved_at: str


class Checkpoint(CheckpointInfo, kw_only=True, frozen=True):
    """A checkpoint with its data: ``state`` for kind ``json``, ``blob`` for kind ``bytes``.

    On the JSON wire, ``blob`` travels as a base64 string.
    """

    state: dict[str, Any] | None = None
    blob: bytes | None = None

    @property
    def data(self) -> CheckpointData:
        """The saved data, as it was given to ``save``."""
        if self.blob is not None:
            return self.blob
        return self.state if self.state is not None else {}

    def info(self) -> CheckpointInfo:
        """The record without its data."""
        return CheckpointInfo(
            task_id=self.task_id,
            owner_id=self.owner_id,
            version=self.version,
            size=self.size,
            kind=self.kind,
            saved_at=self.saved_at,
        )
