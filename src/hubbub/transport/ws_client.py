"""``WsLink``: a :class:`~hubbub.transport.link.Link` to a hub over WebSocket.

Requests are ``request`` frames correlated by ``request_id``, so any number
may be in flight at once; deliveries arrive as ``notify`` frames and go to the
link's notify handler; receipts are ``receipt`` frames. Params may hold typed
records (``Envelope``, ``Passport``, ``AgentReply`` ...): msgspec writes them
as JSON objects, and results come back as plain JSON values, which
:class:`~hubbub.client.HubClient` converts to the typed records.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
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
from .link import NotifyHandler
from .ws_server import DEFAULT_MAX_FRAME_BYTES

__all__ = ["WsLink"]

log = logging.getLogger("hubbub.transport.ws")


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
    Once the connection drops every pending and later call raises
    :class:`~hubbub.errors.TransportError`; this link does not reconnect.
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
    ) -> None:
        self.url = url
        self.ssl_context = ssl_context
        self.open_timeout = open_timeout
        self.max_frame_bytes = max_frame_bytes
        self.request_timeout = request_timeout
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[ResponseFrame]] = {}
        self._ids = itertools.count(1)
        self._slots = asyncio.Semaphore(max_inflight_requests)
        self._broken: str | None = None  # why the connection is gone

    async def connect(self, on_notify: NotifyHandler) -> None:
        """Open the socket and start reading; raises :class:`TransportError` if the hub is unreachable."""
        if self._ws is not None:
            return
        options: dict[str, Any] = {}
        if self.ssl_context is not None:
            options["ssl"] = self.ssl_context
        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.open_timeout,
                max_size=self.max_frame_bytes,
                compression=None,
                **options,
            )
        except (OSError, TimeoutError, InvalidURI, InvalidHandshake, ValueError) as exc:
            raise TransportError(f"could not connect to the hub at {self.url}: {exc}") from exc
        self._broken = None
        self._reader = asyncio.get_running_loop().create_task(self._read(self._ws, on_notify))

    def _live(self) -> ClientConnection:
        if self._broken is not None:
            raise TransportError(self._broken)
        if self._ws is None:
            raise TransportError("this WsLink is not connected; use it through HubClient, which connects it")
        return self._ws

    async def request(self, op: str, params: dict[str, Any]) -> Any:
        """Run ``op`` on the hub and return its JSON result; raises what the hub raised."""
        self._live()  # fail fast, before waiting for a slot
        request_id = str(next(self._ids))
        data = encode_frame(RequestFrame(request_id, op, params))
        future: asyncio.Future[ResponseFrame] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.request_timeout), self._slots:
                self._pending[request_id] = future
                await self._send(self._live(), data)
                response = await future
        except TimeoutError:
            raise HubTimeoutError(
                f"no response to op {op!r} from {self.url} within {self.request_timeout:g}s"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        if response.ok:
            return response.result
        raise error_from_failure(response.error_code, response.error_message, response.result)

    async def receipt(
        self,
        envelope_id: str,
        status: Literal["ack", "nack"],
        recipient_id: str,
        channel_id: str,
        reason: str = "",
    ) -> None:
        """Send an ack or nack; the hub answers only if it refuses it (logged here)."""
        frame = ReceiptFrame(envelope_id, status, recipient_id, channel_id, reason)
        await self._send(self._live(), encode_frame(frame))

    async def aclose(self) -> None:
        """Close the socket; pending requests fail with :class:`TransportError`."""
        ws, reader = self._ws, self._reader
        if ws is None:
            return
        await ws.close()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._ws = self._reader = None
        self._broken = None

    async def _send(self, ws: ClientConnection, data: bytes) -> None:
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
                        on_notify(frame.envelope, frame.recipient_id)
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
            self._broken = _closed(self.url, exc)
        finally:
            if self._broken is None:
                self._broken = f"the link to the hub at {self.url} was closed"
            for future in pending.values():
                if not future.done():
                    future.set_exception(TransportError(self._broken))


def _closed(url: str, exc: ConnectionClosed) -> str:
    close = exc.rcvd or exc.sent
    if close is None:
        detail = "no close frame"
    else:
        detail = f"code {close.code}: {close.reason}" if close.reason else f"code {close.code}"
    return f"the connection to the hub at {url} closed ({detail}); connect a new HubClient and re-attach"
