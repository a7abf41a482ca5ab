"""Group commit on the event loop's side: every write one turn makes goes into one batch.

A :class:`TurnBatches` collects the writes a ``SqliteStore`` is asked for, in
call order, into the current event-loop turn's :class:`Batch` and hands it to
the :class:`Writer` at the end of the turn (or once it holds :data:`FLUSH_AT`
writes), so concurrent posts share one transaction and one fsync.

Writes that may wait (ack cursors, audit records, snapshots) are *deferred*: they gather
for :data:`LINGER`, then go with the batch open at that moment, else with the
next one, else alone another LINGER later. Under traffic a deferred write costs
no commit of its own, and many of them share the same few B-tree pages (a
cursor acked many times in that window is written once). They only ever commit
later than the writes placed before them, never earlier, except ahead of a
:data:`BARRIERS` write (other keyed state, an agent's deletion, a compaction),
which takes them along into its own transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import StorageError
from ..model.envelope import Envelope
from ._sqlite_writer import (
    COMPACT,
    CURSOR,
    DELETE,
    FLUSH_AT,
    KV_DELETE,
    KV_PUT,
    LINGER,
    Batch,
    Durable,
    Writer,
)

__all__ = ["BARRIERS", "TurnBatches"]

BARRIERS = frozenset({DELETE, COMPACT, KV_PUT, KV_DELETE, CURSOR})
"""Writes the deferred writes may not follow: they go along with (or ahead of) them. Keyed state
may record what acks did, so it must not commit before those acks' cursors (a snapshot, which
records its inbox floors, is itself deferred: it commits with them); an agent's deletion, a
compaction and a deletion of keyed state must see every write placed before them, and a cursor
set at once (``set_cursor``) must not be overwritten by an older deferred one."""


class TurnBatches:
    """The open batch of the current turn, the deferred writes, and the writer they go to."""

    def __init__(self, writer: Writer, path: str) -> None:
        self._writer = writer
        self._path = path
        self._batch: Batch | None = None
        self._deferred: Batch | None = None
        self._due = False
        """Whether the deferred writes waited :data:`LINGER`: the next batch takes them along."""
        self._last: Batch | None = None
        """The batch handed to the writer last: once it commits, so has everything before it."""
        self.closed = False

    def place(
        self, op: int, row: tuple[Any, ...], envelope: Envelope | None = None, *, defer: bool = False
    ) -> Batch:
        """Add one write to this turn's batch (opening it if need be), or with ``defer`` to the
        deferred writes; the batch it went into."""
        if self.closed:
            raise StorageError(
                f"SqliteStore({self._path}) is closed; open a new store to write", reason="closed"
            )
        if self._writer.failure is not None:
            raise StorageError(self._writer.failure.message, reason="write_failed")
        if defer:
            return self._place_deferred(op, row)
        batch = self._batch
        if batch is None or batch.future.get_loop() is not asyncio.get_running_loop():
            batch = self._open()
        deferred = self._deferred
        if deferred is not None and (self._due or op in BARRIERS):
            if deferred.future.get_loop() is batch.future.get_loop():
                self._send_deferred(deferred)  # into this batch, ahead of this write
            else:  # another loop's (placed before this batch was opened): to the writer first
                self._deferred, self._due = None, False
                self._put(deferred)
        batch = self._batch or self._open()  # (a merge may have sent a full batch)
        batch.ops.append((op, row))
        if envelope is not None:
            batch.envelopes.append(envelope)
        if len(batch.ops) >= FLUSH_AT:
            self._flush(batch)
        return batch

    def fence(self) -> asyncio.Future[None] | None:
        """For a read that must see every write placed so far, deferred ones included: a future
        of the running loop that completes once they have all committed (None: they have)."""
        if self._deferred is not None:
            self._send_deferred(self._deferred)
        loop = asyncio.get_running_loop()
        for batch in (self._batch, self._last):
            if batch is not None and not batch.future.done():
                if batch.future.get_loop() is loop:
                    return batch.future
                fence = Batch(Durable(loop=loop))  # no writes: it commits after everything before it
                self._put(fence)
                return fence.future
        return None

    def close(self) -> None:
        """Send what is placed to the writer now and take no more writes."""
        if self._deferred is not None:
            self._send_deferred(self._deferred)
        if self._batch is not None:
            self._flush(self._batch)
        self.closed = True

    def _open(self) -> Batch:
        if self._batch is not None:
            self._flush(self._batch)  # made on another loop: keep the order, send it now
        loop = asyncio.get_running_loop()
        batch = self._batch = Batch(Durable(loop=loop))
        loop.call_soon(self._flush, batch)
        return batch

    def _flush(self, batch: Batch) -> None:
        """Send ``batch`` to the writer, unless it was sent already."""
        if self._batch is batch:
            self._batch = None
            self._put(batch)

    def _put(self, batch: Batch) -> None:
        self._last = batch
        self._writer.queue.put(batch)

    def _place_deferred(self, op: int, row: tuple[Any, ...]) -> Batch:
        loop = asyncio.get_running_loop()
        deferred = self._deferred
        if deferred is None or deferred.future.get_loop() is not loop:
            if deferred is not None:
                self._send_deferred(deferred)  # made on another loop: send it now
            deferred = self._deferred = Batch(Durable(loop=loop))
            loop.call_later(LINGER, self._come_due, deferred)
        deferred.ops.append((op, row))
        if len(deferred.ops) >= FLUSH_AT:
            self._send_deferred(deferred)
        return deferred

    def _come_due(self, deferred: Batch) -> None:
        """LINGER is up: go with the open batch, else with the next one, else alone LINGER later."""
        if self._deferred is not deferred:
            return
        batch = self._batch
        if batch is not None and batch.future.get_loop() is deferred.future.get_loop():
            self._send_deferred(deferred)
        else:
            self._due = True
            deferred.future.get_loop().call_later(LINGER, self._send_deferred, deferred)

    def _send_deferred(self, deferred: Batch) -> None:
        """Send the deferred writes now, unless they were sent already: into the open batch when
        it is on their loop, else to the writer after it (an open batch holds older writes)."""
        if self._deferred is not deferred:
            return
        self._deferred, self._due = None, False
        batch = self._batch
        if batch is not None and batch.future.get_loop() is deferred.future.get_loop():
            batch.ops += deferred.ops
            batch.riders.append(deferred.future)
            if len(batch.ops) >= FLUSH_AT:
                self._flush(batch)
            return
        if batch is not None:
            self._flush(batch)  # another loop's batch: its writes were placed first
        self._put(deferred)
