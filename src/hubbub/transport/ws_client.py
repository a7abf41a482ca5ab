"""``WsLink``: a :class:`~hubbub.transport.link.Link` to a hub over WebSocket.

Requests are ``request`` frames correlated by ``request_id``, so any number
may be in flight at once; deliveries arrive as ``notify`` frames and go to the
link's notify handler; receipts are ``receipt`` frames. Params may hold typed
records (``Envelope``, ``Passport``, ``AgentReply`` ...): msgspec writes them
as JSON objects, and results come back as plain JSON values, which
:class:`~hubbub.client.HubClient` converts to the typed records.

When the connection drops the link reconnects by itself (exponential backoff
with full jitter, see :class:`~hubbub.transport._backoff.Backoff`), runs the
hook registered with :meth:`WsLink.on_reconnect` (``HubClient`` re-attaches
its agents and asks for a replay there), and only then lets waiting requests
through.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..errors import HubTimeoutError, ProtocolError, TransportError
from ..protocol.codec import decode_frame, encode_frame
from ..protocol.failures import error_from_failure
from ..protocol.frames import (
    ErrorFrame,
    NotifyFrame,
    PingFrame,
    PongFrame,
    ReceiptFrame,
    RequestFrame,
    ResponseFrame,
)
from ._backoff import Backoff
from ._ws_batching import CoalescingClientConnection, TurnWriter
from .link import NotifyHandler
from .ws_server import DEFAULT_MAX_FRAME_BYTES

__all__ = ["ReconnectHook", "WsLink"]

log = logging.getLogger("hubbub.transport.ws")

ReconnectHook = Callable[[], Awaitable[None]]
"""Runs on every new connection after a drop, before waiting requests are sent."""

_NOT_CONNECTED = "this WsLink is not connected; use it through HubClient, which connects it"

# Set while the reconnect hook runs: its requests go out on the fresh connection
# that everyone else is still waiting for.
_IN_HOOK: contextvars.ContextVar[bool] = contextvars.ContextVar("hubbub_ws_reconnect_hook", default=False)


class WsLink:
    """Connects a :class:`~hubbub.client.HubClient` to the hub served at ``url`` (``ws://`` or ``wss://``).

    ``ssl_context`` is for ``wss://`` URLs (None: the system's default
    trust). Frames above ``max_frame_bytes`` are refused by either side.
    ``request`` raises :class:`~hubbub.errors.HubTimeoutError` when no
    response arrives within ``request_timeout`` seconds; keep it above the
    hub's ``invite_ack_timeout``, since opening a channel waits for invitees.
    At most ``max_inflight_requests`` requests are sent at once (more wait
    their turn): keep it at or below the hub's limit of the same name, which
    refuses the excess.

    Heartbeats: a WebSocket ping every ``ping_interval`` seconds; no pong
    within ``ping_timeout`` means the hub is gone, and the socket is dropped
    at most ``close_timeout`` later (None disables pings).

    With ``reconnect`` (the default) a dropped connection (anything but
    :meth:`aclose`) is reopened after ``backoff_initial`` seconds doubling up
    to ``backoff_max``, each delay drawn uniformly below that bound
    (``jitter`` supplies the fraction; ``on_backoff(attempt, delay)`` sees
    each one). Requests in flight when it dropped raise
    :class:`~hubbub.errors.TransportError` (retry them if they are
    idempotent); requests made meanwhile wait for the new connection, within
    their ``request_timeout``; receipts fail fast (the hub replays what was
    not acked). With ``reconnect=False`` every call raises
    :class:`~hubbub.errors.TransportError` once the connection is gone.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float = 10.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        request_timeout: float = 30.0,
        max_inflight_requests: int = 64,
        reconnect: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        jitter: Callable[[], float] = random.random,
        on_backoff: Callable[[int, float], None] | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.ssl_context = ssl_context
        self.open_timeout = open_timeout
        self.max_frame_bytes = max_frame_bytes
        self.request_timeout = request_timeout
        self.reconnect = reconnect
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.reconnects = 0
        """How many times the connection was reopened after a drop."""
        self._backoff = Backoff(backoff_initial, backoff_max, jitter)
        self._on_backoff = on_backoff
        self._hook: ReconnectHook | None = None
        self._on_notify: NotifyHandler | None = None
        self._ws: ClientConnection | None = None
        self._writer: TurnWriter | None = None  # for self._ws
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._live_event = asyncio.Event()  # set while requests may use self._ws
        self._closed = False
        self._pending: dict[str, asyncio.Future[ResponseFrame]] = {}
        self._deadlines: dict[str, float] = {}  # request id -> loop time its response is due by
        self._sweep: asyncio.TimerHandle | None = None
        self._ids = itertools.count(1)
        self._slots = asyncio.Semaphore(max_inflight_requests)
        self._broken: str | None = None  # why the connection is gone

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (a dropped connection that reconnects is not closed)."""
        return self._closed

    def on_reconnect(self, hook: ReconnectHook) -> None:
        """Run ``hook`` after each reconnect, before requests that waited for it are sent.

        The hook's own requests go out at once. If it raises
        :class:`~hubbub.errors.TransportError` the connection dropped again
        and the link starts over; other exceptions are logged.
        """
        self._hook = hook

    async def connect(self, on_notify: NotifyHandler) -> None:
        """Open the socket and start reading; raises :class:`TransportError` if the hub is unreachable."""
        if self._ws is not None:
            return
        self._on_notify = on_notify
        self._closed = False
        self._start(await self._open())
        self._live_event.set()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _open(self) -> ClientConnection:
        options: dict[str, Any] = {}
        if self.ssl_context is not None:
            options["ssl"] = self.ssl_context
        try:
            return await connect(
                self.url,
                open_timeout=self.open_timeout,
                max_size=self.max_frame_bytes,
                compression=None,
                create_connection=CoalescingClientConnection,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=self.close_timeout,
                **options,
            )
        except (OSError, TimeoutError, InvalidURI, InvalidHandshake, ValueError) as exc:
            raise TransportError(f"could not connect to the hub at {self.url}: {exc}") from exc

    def _start(self, ws: ClientConnection) -> None:
        assert self._on_notify is not None
        self._ws = ws
        self._writer = TurnWriter(ws)
        self._broken = None
        self._reader = asyncio.get_running_loop().create_task(self._read(ws, self._on_notify))

    async def _supervise(self) -> None:
        """Wait for the connection to drop; reopen it until one sticks or the link is closed."""
        while True:
            assert self._reader is not None
            await asyncio.wait([self._reader])
            if self._closed or not self.reconnect:
                return
            log.warning("%s; reconnecting", self._broken)
            while not await self._reopen():
                pass

    async def _reopen(self) -> bool:
        """One attempt after a backoff delay; True once connected and the hook has run."""
        delay = self._backoff.next()
        if self._on_backoff is not None:
            self._on_backoff(self._backoff.attempt, delay)
        await asyncio.sleep(delay)
        try:
            ws = await self._open()
        except TransportError as exc:
            log.info("reconnect attempt %d failed: %s", self._backoff.attempt, exc)
            return False
        self._start(ws)
        if self._hook is not None:
            token = _IN_HOOK.set(True)
            try:
                await self._hook()
            except TransportError as exc:
                log.info("connection dropped again while re-attaching: %s", exc)
            except Exception:
                log.exception("the reconnect hook failed; carrying on with the new connection")
            finally:
                _IN_HOOK.reset(token)
        assert self._reader is not None
        if self._reader.done():
            return False
        self.reconnects += 1
        self._backoff.reset()
        self._live_event.set()
        log.info("reconnected to the hub at %s", self.url)
        return True

    def _current(self) -> ClientConnection | None:
        """The connection requests may use now, or None."""
        if self._closed or not (self._live_event.is_set() or _IN_HOOK.get()):
            return None
        return self._ws

    async def _wait_live(self) -> ClientConnection:
        while True:
            ws = self._current()
            if ws is not None:
                return ws
            if self._closed or self._supervisor is None:
                raise TransportError(_NOT_CONNECTED)
            if _IN_HOOK.get() or self._supervisor.done():
                raise TransportError(self._broken or f"the link to the hub at {self.url} was closed")
            await self._live_event.wait()

    async def request(self, op: str, params: dict[str, Any]) -> Any:
        """Run ``op`` on the hub and return its JSON result; raises what the hub raised."""
        request_id = str(next(self._ids))
        data = encode_frame(RequestFrame(request_id, op, params))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResponseFrame] = loop.create_future()
        try:
            ws, writer = self._current(), self._writer
            if (
                ws is not None
                and writer is not None
                and writer.connection is ws
                and writer.ready()
                and not self._slots.locked()
                and not _IN_HOOK.get()
            ):
                # Nothing to wait for before the frame is out, so only the response needs a
                # bound: the link's deadline sweep gives it one without a timer per request.
                async with self._slots:
                    self._due(request_id, loop.time() + self.request_timeout)
                    response = await self._exchange(ws, request_id, data, future)
            else:
                async with asyncio.timeout(self.request_timeout):
                    if _IN_HOOK.get():  # few, sequential: no slot, or waiting requests could starve it
                        response = await self._exchange(await self._wait_live(), request_id, data, future)
                    else:
                        self._fail_fast()
                        async with self._slots:
                            response = await self._exchange(await self._wait_live(), request_id, data, future)
        except TimeoutError:
            raise HubTimeoutError(
                f"no response to op {op!r} from {self.url} within {self.request_timeout:g}s"
            ) from None
        finally:
            self._pending.pop(request_id, None)
            self._deadlines.pop(request_id, None)
        if response.ok:
            return response.result
        raise error_from_failure(response.error_code, response.error_message, response.result)

    def _due(self, request_id: str, when: float) -> None:
        """Fail request ``request_id`` with TimeoutError if no response came by loop time ``when``."""
        self._deadlines[request_id] = when
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_at(when, self._expire)

    def _expire(self) -> None:
        """Fail the requests past their deadline; come back for the next one due."""
        self._sweep = None
        deadlines = self._deadlines
        if not deadlines:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for request_id, when in list(deadlines.items()):
            if when <= now:
                del deadlines[request_id]
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_exception(TimeoutError())
        if deadlines:
            self._sweep = loop.call_at(min(deadlines.values()), self._expire)

    def _fail_fast(self) -> None:
        """Raise now, before waiting for a slot, if no connection will come."""
        if self._current() is None and (self._closed or self._supervisor is None or self._supervisor.done()):
            raise TransportError(self._broken or _NOT_CONNECTED)

    async def _exchange(
        self, ws: ClientConnection, request_id: str, data: bytes, future: asyncio.Future[ResponseFrame]
    ) -> ResponseFrame:
        self._pending[request_id] = future
        await self._send(ws, data)
        return await future

    async def receipt(
        self,
        envelope_id: str,
        status: Literal["ack", "nack"],
        recipient_id: str,
        channel_id: str,
        reason: str = "",
    ) -> None:
        """Send an ack or nack; the hub answers only if it refuses it (logged here).

        Raises :class:`TransportError` while disconnected: the hub replays
        whatever was not acked once the agent is attached again.
        """
        ws = self._current()
        reader = self._reader
        if ws is None and not self._closed and reader is not None and not reader.done():
            # Reconnected, the hook re-attaching agents: a receipt for one already attached is
            # taken; for one not yet, the hub refuses it, and the replay that follows the attach
            # brings a copy of what it covered, which makes the lane ack again.
            ws = self._ws
        if ws is None:
            raise TransportError(self._broken or f"not connected to the hub at {self.url}")
        frame = ReceiptFrame(envelope_id, status, recipient_id, channel_id, reason)
        await self._send(ws, encode_frame(frame))

    async def aclose(self) -> None:
        """Close the socket and stop reconnecting; pending requests fail with :class:`TransportError`."""
        self._closed = True
        self._live_event.set()  # wake waiting requests: they see _closed and raise
        supervisor, ws, reader = self._supervisor, self._ws, self._reader
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        if ws is not None:
            await ws.close()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._ws = self._reader = self._supervisor = None
        self._writer = None
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._broken = None
        self._live_event.clear()

    async def _send(self, ws: ClientConnection, data: bytes) -> None:
        writer = self._writer
        if writer is not None and writer.connection is ws and writer.ready():
            writer.write(data)  # goes out with every frame sent this loop turn, in one write
            return
        try:
            await ws.send(data, text=True)
        except ConnectionClosed as exc:
            raise TransportError(self._broken or _closed(self.url, exc)) from exc

    async def _read(self, ws: ClientConnection, on_notify: NotifyHandler) -> None:
        pending = self._pending
        try:
            while True:
                data = await ws.recv(decode=False)
                try:
                    frame = decode_frame(data)
                except ProtocolError as exc:
                    log.warning("the hub at %s sent a frame this client cannot read: %s", self.url, exc)
                    continue
                if isinstance(frame, NotifyFrame):
                    try:
                        on_notify(frame.envelope, frame.recipient_id, frame.turn)
                    except Exception:
                        log.exception("notify handler failed for %s", frame.recipient_id)
                elif isinstance(frame, ResponseFrame):
                    future = pending.get(frame.request_id)
                    if future is not None and not future.done():
                        future.set_result(frame)
                elif isinstance(frame, ErrorFrame):
                    log.warning("the hub at %s reported %s: %s", self.url, frame.code, frame.message)
                elif isinstance(frame, PingFrame):
                    await ws.send(encode_frame(PongFrame()), text=True)
        except ConnectionClosed as exc:
            self._broken = _closed(self.url, exc, reconnecting=self.reconnect and not self._closed)
        finally:
            if self._ws is ws:
                self._live_event.clear()
            if self._broken is None:
                self._broken = f"the link to the hub at {self.url} was closed"
            for future in pending.values():
                if not future.done():
                    future.set_exception(TransportError(self._broken))


def _closed(url: str, exc: ConnectionClosed, *, reconnecting: bool = False) -> str:
    close = exc.rcvd or exc.sent
    if close is None:
        detail = "no close frame"
    else:
        detail = f"code {close.code}: {close.reason}" if close.reason else f"code {close.code}"
    advice = "this link is reconnecting" if reconnecting else "connect a new HubClient and re-attach"
    return f"the connection to the hub at {url} closed ({detail}); {advice}"
