"""Group commit on the event loop's side: every write one turn makes goes into one batch.

A :class:`TurnBatches` collects the writes a ``SqliteStore`` is asked for, in
call order, into the current event-loop turn's :class:`Batch` and hands it to
the :class:`Writer` at the end of the turn (or once it holds :data:`FLUSH_AT`
writes), so concurrent posts share one transaction and one fsync. A batch of
writes that may wait (ack cursors) waits up to :data:`LINGER` for other writes
to commit with; the first write that may not wait sends it at the end of its
own turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import StorageError
from ..model.envelope import Envelope
from ._sqlite_writer import FLUSH_AT, LINGER, Batch, Durable, Writer

__all__ = ["TurnBatches"]


class TurnBatches:
    """The open batch of the current turn, and the writer it goes to."""

    def __init__(self, writer: Writer, path: str) -> None:
        self._writer = writer
        self._path = path
        self._batch: Batch | None = None
        self.closed = False

    def place(
        self, op: int, row: tuple[Any, ...], envelope: Envelope | None = None, *, linger: bool = False
    ) -> Batch:
        """Add one write to this turn's batch (opening it if need be); the batch it went into.

        ``linger``: the write may wait up to :data:`LINGER` for other writes to commit with.
        """
        if self.closed:
            raise StorageError(
                f"SqliteStore({self._path}) is closed; open a new store to write", reason="closed"
            )
        if self._writer.failure is not None:
            raise StorageError(self._writer.failure.message, reason="write_failed")
        batch = self._batch
        if batch is None or batch.future.get_loop() is not asyncio.get_running_loop():
            batch = self._open(linger)
        elif batch.lingering and not linger:
            batch.lingering = False
            asyncio.get_running_loop().call_soon(self._flush, batch)
        batch.ops.append((op, row))
        if envelope is not None:
            batch.envelopes.append(envelope)
        if len(batch.ops) >= FLUSH_AT:
            self._flush(batch)
        return batch

    def close(self) -> None:
        """Send what is placed to the writer now and take no more writes."""
        if self._batch is not None:
            self._flush(self._batch)
        self.closed = True

    def _open(self, linger: bool) -> Batch:
        if self._batch is not None:
            self._flush(self._batch)  # made on another loop: keep the order, send it now
        loop = asyncio.get_running_loop()
        batch = self._batch = Batch(Durable(loop=loop))
        if linger:
            batch.lingering = True
            loop.call_later(LINGER, self._flush, batch)
        else:
            loop.call_soon(self._flush, batch)
        return batch

    def _flush(self, batch: Batch) -> None:
        """Send ``batch`` to the writer, unless it was sent already."""
        if self._batch is batch:
            self._batch = None
            self._writer.queue.put(batch)
