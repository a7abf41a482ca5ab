"""Deadlines on the event loop's own timer heap, keyed so they can be replaced or cancelled.

Channel TTLs, invite ack timeouts and (later) expectations are deadlines, not
periodic scans: each costs one heap entry and fires once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["Deadlines"]

log = logging.getLogger("hubbub.hub")


class Deadlines:
    """Schedule ``callback()`` at a wall-clock time; at most one deadline per key."""

    def __init__(self) -> None:
        self._handles: dict[Hashable, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._handles)

    def at(self, key: Hashable, when: float, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` at POSIX time ``when`` (now if past), replacing ``key``'s deadline."""
        self.cancel(key)
        loop = asyncio.get_running_loop()
        delay = max(0.0, when - time.time())
        self._handles[key] = loop.call_at(loop.time() + delay, self._fire, key, callback)

    def __contains__(self, key: Hashable) -> bool:
        """Whether ``key`` has a deadline still to fire."""
        return key in self._handles

    def cancel(self, key: Hashable) -> None:
        """Forget ``key``'s deadline, if any."""
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, key: Hashable, callback: Callable[[], Awaitable[None]]) -> None:
        self._handles.pop(key, None)
        task = asyncio.ensure_future(self._run(key, callback))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(key: Hashable, callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except Exception:
            log.exception("deadline %r failed", key)

    async def aclose(self) -> None:
        """Cancel every pending deadline and wait for running callbacks."""
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
