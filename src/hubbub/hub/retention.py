"""Compacting a hub's store without dropping what the hub still needs.

:meth:`Store.compact` applies a :class:`~hubbub.storage.retention.RetentionPolicy`
blindly; :func:`compact` adds to its ``keep_channels`` the closed channels a
hub may still read:

the channel of every unfinished delegated task (a restart resumes the task
from its channel's WAL, see ``hub/_task_restore.py``), from the running hub's
records or, offline, from the store's.

Envelopes of a compacted channel that an agent never acked are gone: a running
hub stops counting them in its inbox (:meth:`Hub.compact` does), and a hub
started later counts inboxes from what the WALs hold then.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import msgspec

from ..storage.base import Store
from ..storage.retention import CompactionReport, RetentionPolicy
from ._task_records import DTASK_PREFIX, decode_task

if TYPE_CHECKING:
    from .core import Hub

__all__ = ["compact"]

log = logging.getLogger("hubbub.hub")


async def compact(
    store: Store,
    policy: RetentionPolicy,
    *,
    hub: Hub | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> CompactionReport:
    """Apply ``policy`` to ``store``, keeping the closed channels a hub still needs.

    Pass the running ``hub`` when there is one (its store must be ``store``).
    """
    if policy.empty:
        return CompactionReport(dry_run=dry_run)
    keep = set(policy.keep_channels)
    if policy.drops_wals:
        if hub is not None:
            tasks = list(hub.delegations.records.tasks.values())
        else:
            tasks = []
            for key, data in (await store.scan_kv(DTASK_PREFIX)).items():
                try:
                    tasks.append(decode_task(data))
                except (msgspec.DecodeError, msgspec.ValidationError):
                    log.warning("task record %s does not decode; compaction ignores it", key)
        keep |= {t.channel_id for t in tasks if not t.finished and t.channel_id is not None}
    return await store.compact(
        dataclasses.replace(policy, keep_channels=frozenset(keep)), dry_run=dry_run, now=now
    )
