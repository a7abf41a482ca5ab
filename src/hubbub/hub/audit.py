"""The audit log: every governance event, persisted, queryable and followable.

The hub emits :class:`AuditRecord` s through its listeners (hook
``on_governance_event``); :class:`AuditLog` is the listener that writes them to
the store, so a slow store never slows a post. Kinds include
``agent_registered``, ``agent_unregistered``, ``resume_set``, ``rule_set``,
``skill_set``, ``channel_created``, ``channel_closed``, ``channel_expired``,
``expectation_violated``, ``task_terminated``, ``turn_failed``,
``send_denied``, ``open_denied``, ``delivery_skipped``, ``inbox_overflow``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..model.audit import AuditQuery, AuditRecord, make_audit_record
from ..storage.base import Store
from .listeners import HubListener

__all__ = ["AuditLog", "AuditRecord", "make_audit_record"]


class AuditLog(HubListener):
    """Persists governance events; :meth:`query` reads them back, :meth:`follow` streams new ones."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._followers: set[asyncio.Queue[AuditRecord]] = set()

    async def on_governance_event(self, record: AuditRecord) -> None:
        await self._store.append_audit(record)
        for queue in self._followers:
            if queue.qsize() < 10_000:
                queue.put_nowait(record)

    async def query(
        self,
        *,
        kind: str | None = None,
        agent_id: str | None = None,
        channel_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
        tail: bool = False,
    ) -> list[AuditRecord]:
        """Stored records, oldest first, filtered by kind, agent, channel and ``since <= at <= until``:
        the first ``limit`` of them, or with ``tail`` the latest ``limit``."""
        query = AuditQuery(
            kind=kind,
            agent_id=agent_id,
            channel_id=channel_id,
            since=since,
            until=until,
            limit=limit,
            tail=tail,
        )
        return await self._store.read_audit(query)

    async def follow(self, *, kind: str | None = None) -> AsyncIterator[AuditRecord]:
        """Yield each new record (of ``kind``, if given) as it is written; runs until cancelled."""
        queue: asyncio.Queue[AuditRecord] = asyncio.Queue()
        self._followers.add(queue)
        try:
            while True:
                record = await queue.get()
                if kind is None or record.kind == kind:
                    yield record
        finally:
            self._followers.discard(queue)
