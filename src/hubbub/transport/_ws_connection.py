"""One WebSocket connection on the hub side: a read loop, a bounded outbox and its writer.

:class:`Connection` is the :class:`~hubbub.hub.delivery.Endpoint` of one
:class:`~hubbub.hub.session.Session`. Frames in: requests run concurrently
(at most ``max_inflight_requests``: a post is answered from a callback once
its commit is done, any other op runs in a task of its own); hellos and receipts are
handled in arrival order; anything malformed gets an ``error`` frame (or a
failed ``response`` when it still names its ``request_id``) and the
connection stays open. Frames out: everything goes through one bounded
outbox, flushed once per event-loop turn (a callback, not a task wake-up):
every frame queued during the turn is framed and written in one syscall.
While the socket's buffer is full (the peer reads slowly) a writer task waits
for it to drain and flushes again. A full outbox means the peer reads too
slowly: the connection is closed with 1013 and its agents unbound; they
re-attach and replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Any, NamedTuple

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ..errors import HubbubError, ProtocolError, TransportError
from ..hub.core import Hub
from ..hub.session import Session
from ..model._time import iso_now
from ..model.envelope import Envelope
from ..model.ids import make_id
from ..protocol.codec import decode_frame, encode_frame
from ..protocol.failures import failure_details, wire_code
from ..protocol.frames import (
    ErrorFrame,
    HelloFrame,
    NotifyFrame,
    PingFrame,
    PongFrame,
    ReceiptFrame,
    RequestFrame,
    ResponseFrame,
    WelcomeFrame,
)
from ._ws_batching import queue_server_text

__all__ = ["CLOSE_TRY_AGAIN_LATER", "Connection"]

log = logging.getLogger("hubbub.transport.ws")

CLOSE_TRY_AGAIN_LATER = 1013
_CLOSE_TIMEOUT = 10.0
_BATCH_BYTES = 256 * 1024
_REMEMBERED = 512
"""Deliveries a connection remembers, so receipts for them are checked without reading the store."""
_ANY = msgspec.json.Decoder()


def _encoded(item: bytes | NotifyFrame) -> bytes:
    if isinstance(item, bytes):
        return item
    try:
        return encode_frame(item)
    except ProtocolError:
        log.exception("dropped an envelope that cannot be encoded")
        return b""


_MOST_SAID = 2000
"""Characters of an error message sent back (one may quote a huge bad input)."""


def _cut(text: str, most: int = _MOST_SAID) -> str:
    return text if len(text) <= most else f"{text[:most]}... ({len(text) - most} more characters)"


def _said(exc: HubbubError) -> str:
    return _cut(str(exc))


def _failed(request_id: str, exc: HubbubError) -> ResponseFrame:
    """The failed response for ``exc``, its message and fields cut to a sane size."""
    details = failure_details(exc)
    if details is not None:
        details = {k: _cut(v, 200) if isinstance(v, str) else v for k, v in details.items()}
    return ResponseFrame(request_id, False, details, wire_code(exc), _said(exc))


class Limits(NamedTuple):
    """What one connection may hold (see :func:`~hubbub.transport.ws_server.serve_ws`)."""

    outbox_size: int
    """Frames waiting to be written."""
    outbox_bytes: int
    """Bytes of encoded responses waiting to be written (notifies count as frames only)."""
    max_inflight_requests: int
    max_frame_bytes: int
    """The largest frame the hub reads, and the largest response it writes."""


class Connection:
    """The hub side of one WebSocket: the session's :class:`~hubbub.hub.delivery.Endpoint`."""

    def __init__(self, hub: Hub, ws: ServerConnection, limits: Limits) -> None:
        self.endpoint_id = make_id()
        self.ws = ws
        self.session = Session(hub, self)
        self.outbox: deque[bytes | NotifyFrame] = deque()
        self.limits = limits
        self.queued_bytes = 0
        """Bytes of the encoded responses in :attr:`outbox`."""
        self.inflight: set[asyncio.Future[Any]] = set()
        """Requests (and receipts) running: tasks, or a post's own future."""
        self._delivered: dict[tuple[str, str, str], None] = {}  # (recipient, channel, envelope), oldest first
        self.requests = 0
        self.closing = False
        self.draining = False
        """The server is shutting down: requests already running finish, new ones are refused."""
        self._loop = asyncio.get_running_loop()
        self._flush_pending = False
        self._wakeup = asyncio.Event()  # the socket's buffer is full: the writer waits for it to drain
        self._roomy = asyncio.Event()
        self._roomy.set()
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    # Endpoint

    @property
    def outbox_size(self) -> int:
        """Most frames waiting to be written (a replay paces itself on a quarter of it)."""
        return self.limits.outbox_size

    def deliver(self, envelope: Envelope, recipient_id: str) -> None:
        """Queue a notify frame; never blocks or raises (a full outbox closes the connection)."""
        delivered = self._delivered
        delivered[(recipient_id, envelope.channel_id, envelope.envelope_id)] = None
        if len(delivered) > _REMEMBERED:
            del delivered[next(iter(delivered))]
        session = self.session
        turn = session.turn_for(envelope, recipient_id) if session.pushed_turns else None
        self._enqueue(NotifyFrame(envelope, recipient_id, turn))

    async def writable(self) -> None:
        """Wait until the outbox is at most half full, or the connection is gone: a replay paces
        itself on this (a hello's replay blocks the read loop, so the socket's end must wake it)."""
        while len(self.outbox) > self.outbox_size // 2 and not self.closing:
            self._roomy.clear()
            lost = self.ws.connection_lost_waiter
            if lost.done():
                self.closing = True
                return
            roomy = self._loop.create_task(self._roomy.wait())
            try:
                await asyncio.wait((roomy, lost), return_when=asyncio.FIRST_COMPLETED)
            finally:
                roomy.cancel()

    def _enqueue(self, item: bytes | NotifyFrame) -> None:
        if self.closing:
            return
        if len(self.outbox) >= self.outbox_size:
            self._overflow(f"{self.outbox_size} frames")
            return
        if isinstance(item, bytes):
            self.queued_bytes += len(item)
            if self.queued_bytes > self.limits.outbox_bytes:
                self._overflow(f"{self.limits.outbox_bytes} bytes")
                return
        self.outbox.append(item)
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _send(self, frame: ErrorFrame | ResponseFrame | WelcomeFrame | PongFrame) -> None:
        self._enqueue(encode_frame(frame))

    def _overflow(self, limit: str) -> None:
        self.closing = True
        self.outbox.clear()
        self.queued_bytes = 0
        log.warning(
            "closing connection %s (agents %s): more than %s queued unread",
            self.endpoint_id,
            sorted(self.session.bound),
            limit,
        )
        reason = f"too slow: outbox of {limit} full; re-attach to replay"
        self._closer = asyncio.get_running_loop().create_task(self.close(CLOSE_TRY_AGAIN_LATER, reason))

    async def close(self, code: int, reason: str) -> None:
        """Unbind the agents, then close the socket (abort it if the peer does not answer)."""
        self.closing = True
        self.session.close()
        if self._writer is not None:
            self._writer.cancel()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.ws.close(code, reason)
        except TimeoutError:
            self.ws.transport.abort()

    # the two loops

    async def run(self) -> None:
        """Serve the connection until it closes; then unbind its agents."""
        try:
            while True:
                try:
                    data = await self.ws.recv(decode=False)
                except ConnectionClosed:
                    break
                waiting = self._handle(data)
                if waiting is not None:  # a hello, or a receipt while every slot is busy
                    await waiting
        finally:
            self.closing = True
            self.session.close()
            if self._writer is not None:
                self._writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
            if self._closer is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._closer
            # Requests already running finish (a half-done post must not be cut
            # short); anything they bind afterwards is unbound again below.
            while self.inflight:
                await asyncio.gather(*self.inflight, return_exceptions=True)
            self.session.close()

    def _flush(self) -> None:
        """Frame everything queued (up to a batch) and write it in one go; no await."""
        self._flush_pending = False
        ws, outbox = self.ws, self.outbox
        if self.closing or not outbox or self._wakeup.is_set():
            return
        if ws.paused:  # the peer is behind: a writer task waits for the buffer to drain
            self._wakeup.set()
            if self._writer is None:
                self._writer = self._loop.create_task(self._write())
            return
        protocol = ws.protocol
        if protocol.state is not State.OPEN:
            return  # closing: the read loop ends and cleans up
        try:
            size = 0
            while outbox and size < _BATCH_BYTES:
                item = outbox.popleft()
                if isinstance(item, bytes):
                    self.queued_bytes -= len(item)
                if data := _encoded(item):
                    queue_server_text(ws, data)
                    size += len(data)
            ws.send_data()
        except Exception:
            log.exception("writing to connection %s failed; aborting it", self.endpoint_id)
            self.closing = True
            ws.transport.abort()
            return
        if len(outbox) <= self.outbox_size // 2:
            self._roomy.set()
        if outbox:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    async def _write(self) -> None:
        """Wait out full socket buffers: drain, then flush what piled up meanwhile."""
        ws, wakeup = self.ws, self._wakeup
        try:
            while True:
                await wakeup.wait()
                await ws.drain()
                wakeup.clear()
                self._flush()
        except (ConnectionClosed, OSError):
            pass
        except Exception:
            log.exception("writer of connection %s failed; aborting it", self.endpoint_id)
            self.closing = True
            ws.transport.abort()

    # frames in

    def _handle(self, data: bytes) -> Awaitable[None] | None:
        """Act on one frame; what must finish before the next frame is read is returned to await."""
        try:
            frame = decode_frame(data)
        except ProtocolError as exc:
            self._refuse(data, exc)
            return None
        match frame:
            case RequestFrame():
                if self.draining:
                    message = "the hub is shutting down; reconnect and send the request again"
                    self._send(_failed(frame.request_id, TransportError(message, reason="shutting_down")))
                elif self.requests >= (most := self.limits.max_inflight_requests):
                    message = f"too many requests in flight (limit {most}); await responses first"
                    self._send(_failed(frame.request_id, ProtocolError(message, reason="too_many_requests")))
                else:
                    self.requests += 1
                    self._call(frame)
            case ReceiptFrame():
                key = (frame.recipient_id, frame.channel_id, frame.envelope_id)
                if self._delivered.pop(key, 0) is None:  # delivered here: nothing to look up
                    self._receipt_now(frame)
                elif len(self.inflight) < self.limits.max_inflight_requests:
                    self._start(self._receipt(frame))
                else:  # no response to refuse with: slow the reader down instead
                    return self._receipt(frame)
            case HelloFrame():
                return self._hello(frame)
            case PingFrame():
                self._send(PongFrame())
            case PongFrame():
                pass
            case ErrorFrame():
                log.info("client %s reported %s: %s", self.endpoint_id, frame.code, frame.message)
            case WelcomeFrame() | ResponseFrame() | NotifyFrame():
                message = f"frame kind {frame.kind!r} travels from hub to client only"
                self._send(ErrorFrame(code=ProtocolError.code, message=message))
        return None

    def _refuse(self, data: bytes, exc: ProtocolError) -> None:
        """A malformed request that still names its request_id gets a failed response."""
        try:
            raw = _ANY.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError, RecursionError):
            raw = None
        request_id = raw.get("request_id") if isinstance(raw, dict) and raw.get("kind") == "request" else None
        if isinstance(request_id, str):
            self._send(_failed(request_id, exc))
        else:
            self._send(ErrorFrame(code=wire_code(exc), message=_said(exc)))

    def _start(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    def _call(self, frame: RequestFrame) -> None:
        """Start one request: a post answers from a callback on its commit, other ops in a task."""
        try:
            pending = self.session.call(frame.op, frame.params)
        except Exception as exc:
            self.requests -= 1
            self._respond(frame, None, exc)
            return
        if isinstance(pending, asyncio.Future):
            self.inflight.add(pending)
            pending.add_done_callback(functools.partial(self._answered, frame))
        else:
            self._start(self._request(frame, pending))

    def _answered(self, frame: RequestFrame, done: asyncio.Future[Any]) -> None:
        self.inflight.discard(done)
        self.requests -= 1
        if not done.cancelled():  # cancelled: the server is closing this connection
            error = done.exception()
            self._respond(frame, None if error is not None else done.result(), error)

    async def _request(self, frame: RequestFrame, pending: Awaitable[Any]) -> None:
        try:
            result = await pending
        except Exception as exc:
            self._respond(frame, None, exc)
            return
        finally:
            self.requests -= 1
        self._respond(frame, result, None)

    def _respond(self, frame: RequestFrame, result: Any, error: BaseException | None) -> None:
        """Queue the response to ``frame``: its result, or the error it failed with."""
        request_id, op = frame.request_id, frame.op
        if isinstance(error, HubbubError):
            self._send(_failed(request_id, error))
            return
        if error is not None:
            log.error("op %r failed on connection %s", op, self.endpoint_id, exc_info=error)
            message = f"op {op!r} failed inside the hub; the hub's log has the details"
            self._send(ResponseFrame(request_id, False, None, HubbubError.code, message))
            return
        try:
            data = encode_frame(ResponseFrame(request_id, True, result))
        except ProtocolError as exc:
            log.error("result of op %r cannot be sent: %s", op, exc)
            data = encode_frame(ResponseFrame(request_id, False, None, HubbubError.code, str(exc)))
        limit = self.limits.max_frame_bytes
        if len(data) > limit:  # the peer would close the connection on it (1009): refuse it instead
            too_big = ProtocolError(
                f"the result of op {op!r} is {len(data)} bytes, more than the {limit}-byte frame limit; "
                "ask for less at a time (read_wal, hub_wal: a smaller 'limit', then page with 'since')",
                reason="response_too_large",
            )
            self._respond(frame, None, too_big)
            return
        self._enqueue(data)

    def _receipt_now(self, frame: ReceiptFrame) -> None:
        """A receipt for an envelope this connection delivered: acted on at once, no task."""
        try:
            self.session.receipt_delivered(
                frame.envelope_id, frame.status, frame.recipient_id, frame.channel_id, frame.reason
            )
        except Exception as exc:
            self._refused_receipt(frame, exc)

    async def _receipt(self, frame: ReceiptFrame) -> None:
        """A receipt for an envelope this connection does not remember delivering: checked first."""
        try:
            await self.session.receipt(
                frame.envelope_id, frame.status, frame.recipient_id, frame.channel_id, frame.reason
            )
        except Exception as exc:
            self._refused_receipt(frame, exc)

    def _refused_receipt(self, frame: ReceiptFrame, exc: Exception) -> None:
        if isinstance(exc, HubbubError):
            self._send(
                ErrorFrame(code=wire_code(exc), message=_said(exc), envelope_id=_cut(frame.envelope_id))
            )
            return
        log.error("receipt for %s failed on connection %s", frame.envelope_id, self.endpoint_id, exc_info=exc)
        envelope_id = _cut(frame.envelope_id)
        message = f"receipt for {envelope_id} failed inside the hub; the hub's log has the details"
        self._send(ErrorFrame(code=HubbubError.code, message=message, envelope_id=envelope_id))

    async def _hello(self, frame: HelloFrame) -> None:
        try:
            params = {
                "name": frame.name,
                "auth_scheme": frame.auth_scheme,
                "auth_claim": frame.auth_claim,
                "hold": frame.since_envelope_id is not None,
            }
            passport = await self.session.call("attach", params)
            self._send(WelcomeFrame(self.endpoint_id, iso_now()))
            if frame.since_envelope_id is not None:
                params = {"agent_id": passport.agent_id, "since_envelope_id": frame.since_envelope_id}
                await self.session.call("replay", params)
        except HubbubError as exc:
            self._send(ErrorFrame(code=wire_code(exc), message=_said(exc)))
        except Exception:
            log.exception("hello for %r failed on connection %s", frame.name, self.endpoint_id)
            message = f"hello for {frame.name!r} failed inside the hub; the hub's log has the details"
            self._send(ErrorFrame(code=HubbubError.code, message=message))
