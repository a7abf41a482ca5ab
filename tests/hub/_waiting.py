"""Waiting on conditions instead of sleeping: poll a predicate every few ms up to a timeout."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from hubbub import Hub
from hubbub.model.audit import AuditRecord
from tests.conftest import TIME_UNIT

POLL = 0.005


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5 * TIME_UNIT, *, what: str = ""
) -> None:
    """Return once ``predicate()`` is true; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what or predicate!r}")
        # Polling a cheap predicate keeps tests free of hooks into the code under test.
        await asyncio.sleep(POLL)


async def audit_records(
    hub: Hub,
    kind: str,
    *,
    count: int = 1,
    where: Callable[[AuditRecord], bool] | None = None,
    timeout: float = 5 * TIME_UNIT,
    **filters: Any,
) -> list[AuditRecord]:
    """Wait until the audit log holds ``count`` records of ``kind`` (matching ``where``); return them."""
    found: list[AuditRecord] = []

    async def enough() -> bool:
        nonlocal found
        found = [r for r in await hub.audit.query(kind=kind, **filters) if where is None or where(r)]
        return len(found) >= count

    await wait_until(enough, timeout, what=f"{count} {kind!r} audit record(s)")
    return found
