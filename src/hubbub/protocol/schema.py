"""The wire protocol as a JSON Schema, generated from the frame and record types.

The root schema is the :data:`~hubbub.protocol.frames.Frame` union (one JSON
object per WebSocket message, discriminated by ``kind``); ``$defs`` also holds
the records that travel inside a request's ``params`` and a response's
``result`` (envelopes, passports, channel metadata, turn contexts ...), so a
client in another language can generate or check its types from one file.

``docs/protocol.schema.json`` is this module's output, checked in; regenerate
it after changing a frame or a record::

    .venv/bin/python -m hubbub.protocol.schema > docs/protocol.schema.json
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import msgspec

from ..adapters.base import AgentReply
from ..model.audit import AuditRecord
from ..model.channel import ChannelMetadata
from ..model.checkpoint import Checkpoint, CheckpointInfo
from ..model.delegation import DelegatedTask
from ..model.envelope import Envelope
from ..model.identity import AgentInfo, Passport, Resume
from ..model.rule import Rule
from ..model.task import TaskEvent
from ..model.turn import PendingTurn, TurnContext
from .frames import Frame

__all__ = ["RECORD_TYPES", "json_schema", "render"]

RECORD_TYPES: tuple[type[msgspec.Struct], ...] = (
    Envelope,
    Passport,
    Resume,
    Rule,
    ChannelMetadata,
    AgentReply,
    TurnContext,
    PendingTurn,
    AuditRecord,
    TaskEvent,
    AgentInfo,
    DelegatedTask,
    CheckpointInfo,
    Checkpoint,
)
"""Records carried in ``params`` and ``result``, listed in ``$defs`` besides the frames."""

_REF_TEMPLATE = "#/$defs/{name}"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every frame, with the records in ``$defs``.

    Validate a decoded frame against the root; validate a record against
    ``{"$ref": "#/$defs/<Name>"}`` resolved in this document.
    """
    (frame, *_), components = msgspec.json.schema_components(
        (Frame, *RECORD_TYPES), ref_template=_REF_TEMPLATE
    )
    for component in components.values():
        _clean_descriptions(component)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hubbub wire protocol",
        "description": (
            "One JSON object per WebSocket text message, discriminated by 'kind'. "
            "Receivers ignore fields they do not know; the hub sends every field of a frame. "
            "See docs/protocol.md."
        ),
        **frame,
        "$defs": components,
    }


def _clean_descriptions(node: Any) -> None:
    """Dedent docstrings msgspec copied in, so the JSON reads as plain text."""
    if isinstance(node, dict):
        description = node.get("description")
        if isinstance(description, str):
            node["description"] = inspect.cleandoc(description)
        for value in node.values():
            _clean_descriptions(value)
    elif isinstance(node, list):
        for value in node:
            _clean_descriptions(value)


def render() -> str:
    """:func:`json_schema` as the checked-in file holds it: sorted keys, indent 2, final newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
