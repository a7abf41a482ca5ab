"""Audit records: one governance event each (the hub's audit log stores them)."""

from __future__ import annotations

from typing import Any

import msgspec

from ._time import iso_now
from .ids import make_id

__all__ = ["AuditRecord", "make_audit_record"]


class AuditRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One governance event: what happened (``kind``), to whom, where, who did it, and why."""

    id: str
    at: str
    kind: str
    actor: str | None = None
    agent_id: str | None = None
    channel_id: str | None = None
    reason: str = ""
    data: dict[str, Any] = msgspec.field(default_factory=dict)


def make_audit_record(
    kind: str,
    *,
    actor: str | None = None,
    agent_id: str | None = None,
    channel_id: str | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditRecord:
    """A new record stamped now."""
    return AuditRecord(
        id=make_id(),
        at=iso_now(),
        kind=kind,
        actor=actor,
        agent_id=agent_id,
        channel_id=channel_id,
        reason=reason,
        data=data or {},
    )
