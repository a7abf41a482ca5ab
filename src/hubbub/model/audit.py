"""Audit records: one governance event each (the hub's audit log stores them)."""

from __future__ import annotations

from typing import Any

import msgspec

from ._time import iso_now
from .ids import make_id

__all__ = ["AuditQuery", "AuditRecord", "make_audit_record"]


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


class AuditQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Which audit records to read: every filter given must match; oldest first, at most ``limit``.

    ``agent_id`` matches the record's agent or its actor; ``since``/``until`` bound ``at``.
    With ``tail`` the *last* ``limit`` matching records are read (still returned oldest first):
    what "the latest N events" means.
    """

    kind: str | None = None
    agent_id: str | None = None
    channel_id: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 1000
    tail: bool = False

    def matches(self, r: AuditRecord) -> bool:
        """Whether ``r`` passes every filter."""
        return (
            (self.kind is None or r.kind == self.kind)
            and (self.agent_id is None or self.agent_id in (r.agent_id, r.actor))
            and (self.channel_id is None or r.channel_id == self.channel_id)
            and (self.since is None or r.at >= self.since)
            and (self.until is None or r.at <= self.until)
        )
