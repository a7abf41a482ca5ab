"""Waiting for an envelope an agent processes: ``wait_for_channel_event``, ``wait_closed``.

An :class:`AgentClient` keeps its :class:`Waiters`; after each envelope it processes it
:meth:`offers <Waiters.offer>` the envelope, and the first waiter of that channel whose
predicate matches gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from ..model.envelope import Envelope

__all__ = ["Waiter", "Waiters"]


class Waiter:
    __slots__ = ("channel_id", "future", "predicate")

    def __init__(self, channel_id: str, predicate: Callable[[Envelope], bool]) -> None:
        self.channel_id = channel_id
        self.predicate = predicate
        self.future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()

    async def wait(self, timeout: float) -> Envelope:
        """The matching envelope; ``TimeoutError`` after ``timeout`` s.

        Awaits the future itself: the waiting task wakes in the loop turn after the match
        (``wait_for`` around a ``shield`` took three). The future is this waiter's alone, so
        a timeout or a cancellation may cancel it.
        """
        async with asyncio.timeout(timeout):
            return await self.future


class Waiters:
    """The waiters of one agent client."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[Waiter] = []

    @contextlib.contextmanager
    def waiting(self, channel_id: str, predicate: Callable[[Envelope], bool]) -> Iterator[Waiter]:
        """A waiter for the first envelope of ``channel_id`` processed from now on that matches."""
        waiter = Waiter(channel_id, predicate)
        self._waiters.append(waiter)
        try:
            yield waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def offer(self, envelope: Envelope) -> None:
        """``envelope`` was processed: it completes every waiter it matches."""
        for waiter in list(self._waiters):
            if (
                waiter.channel_id == envelope.channel_id
                and not waiter.future.done()
                and waiter.predicate(envelope)
            ):
                waiter.future.set_result(envelope)
