"""The audit log: every governance event, persisted, queryable and followable.

The hub's governance hands every :class:`AuditRecord` to :meth:`AuditLog.write`,
which places it in the store at once, in order with the envelopes of the same
event-loop turn (one commit holds a closing envelope and its ``channel_closed``
record); nothing awaits it, so a slow store never slows a post. Listeners get
the same records through the ``on_governance_event`` hook. Kinds include
``agent_registered``, ``agent_unregistered``, ``resume_set``, ``rule_set``,
``skill_set``, ``channel_created``, ``channel_closed``, ``channel_expired``,
``expectation_violated``, ``task_terminated``, ``turn_failed``,
``send_denied``, ``open_denied``, ``delivery_skipped``, ``inbox_overflow``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from ..errors import StorageError
from ..model.audit import AuditQuery, AuditRecord, make_audit_record
from ..storage.base import Store

__all__ = ["AuditLog", "AuditRecord", "make_audit_record"]

log = logging.getLogger("hubbub.audit")


class AuditLog:
    """Persists governance events; :meth:`query` reads them back, :meth:`follow` streams new ones."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._followers: set[asyncio.Queue[AuditRecord]] = set()

    def write(self, record: AuditRecord) -> None:
        """Place ``record`` in the store now; followers get it once it is durable.

        Never raises: a store that failed or closed is logged here (it fails the hub's
        writes itself), not raised into whatever the hub was doing when it audited.
        """
        try:
            durable = self._store.place_audit(record)
        except StorageError as exc:
            log.warning("audit record %s (%s) not written: %s", record.id, record.kind, exc)
            return
        if not self._followers:
            return
        if durable is None:
            self._tell(record)
        else:
            asyncio.ensure_future(durable).add_done_callback(
                lambda done: None if done.cancelled() or done.exception() else self._tell(record)
            )

    def _tell(self, record: AuditRecord) -> None:
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
