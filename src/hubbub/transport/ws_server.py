"""``serve_ws``: the hub on a WebSocket, one :class:`~hubbub.hub.session.Session` per connection.

Each connection reads frames in one loop and writes them from one writer task
that drains a bounded outbox, so a slow reader never stalls the hub or any
other connection: when its outbox is full the connection is closed with code
1013 (try again later), and the agent re-attaches and replays what it missed.

Requests on one connection run concurrently (up to ``max_inflight_requests``),
which is what lets one connection host both ends of a channel and open it:
``create_channel`` waits for an invite ack that arrives on the same
connection. Bad input gets an ``error`` frame (or a failed ``response``)
naming the problem and the connection stays open; only a frame larger than
``max_frame_bytes`` closes it (code 1009). See ``_ws_connection`` for the
per-connection details.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator

from websockets.asyncio.server import Server, ServerConnection, serve

from ..errors import UsageError
from ..hub.core import Hub
from ._ws_batching import CoalescingServerConnection
from ._ws_connection import Connection, Limits

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "WsServer", "serve_ws"]

log = logging.getLogger("hubbub.transport.ws")

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame either side accepts by default (16 MiB)."""


DRAIN_SECONDS = 5.0
"""How long a closing server lets running requests finish (a ``task_wait`` may be holding)."""


class WsServer:
    """A running WebSocket hub server (from :func:`serve_ws`).

    ``url`` is what clients connect to (``WsLink(server.url)``); ``port`` is
    the bound port, useful after asking for port 0.
    """

    host: str
    port: int
    url: str

    def __init__(self, hub: Hub, limits: Limits) -> None:
        self.hub = hub
        self._limits = limits
        self._connections: set[Connection] = set()
        self._server: Server | None = None

    async def _listen(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        max_size: int,
        *,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
    ) -> None:
        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=ssl_context,
            compression=None,
            max_size=max_size,
            create_connection=CoalescingServerConnection,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
        )
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"{'wss' if ssl_context is not None else 'ws'}://{netloc}:{self.port}"

    async def _handle(self, ws: ServerConnection) -> None:
        connection = Connection(self.hub, ws, self._limits)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    @property
    def connection_count(self) -> int:
        """Connections currently open."""
        return len(self._connections)

    async def aclose(self, grace: float = DRAIN_SECONDS) -> None:
        """Stop accepting; let running requests finish and send their responses (for up to
        ``grace`` seconds, new requests refused meanwhile); close every connection with 1001
        (going away); cancel what still runs.

        The hub itself stays open; close it separately.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=False)
        connections = list(self._connections)
        for connection in connections:
            connection.draining = True
        running = [task for connection in connections for task in connection.inflight]
        if running:
            await asyncio.wait(running, timeout=grace)
        await asyncio.sleep(0)  # their responses go out before the close frame
        await asyncio.gather(
            *(c.close(1001, "hub shutting down") for c in connections), return_exceptions=True
        )
        for connection in connections:
            for task in list(connection.inflight):
                task.cancel()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def serve_ws(
    hub: Hub,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    max_inflight_requests: int = 64,
    outbox_size: int = 10_000,
    outbox_bytes: int = 64 << 20,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 10.0,
    allow_unauthenticated: bool = False,
) -> AsyncIterator[WsServer]:
    """Serve ``hub`` over WebSocket for the duration of the ``async with`` block.

    Port 0 binds a free port (read it from ``server.port``). Starts the hub if
    needed. Per connection: frames above ``max_frame_bytes`` close it with
    code 1009; at most ``max_inflight_requests`` requests run at once (more
    get a ``protocol_error`` response); at most ``outbox_size`` frames, and
    ``outbox_bytes`` bytes of responses, wait to be written (past that the
    reader is too slow and the connection is closed with 1013); a response
    above ``max_frame_bytes`` is refused (``protocol_error``,
    ``response_too_large``) rather than sent. Heartbeats: each connection is pinged every ``ping_interval``
    seconds; a peer that sends no pong within ``ping_timeout`` is dropped (at
    most ``close_timeout`` later), its session closed and its agents unbound,
    so they can attach elsewhere (None disables pings). Leaving the block
    closes every connection; the hub stays open.

    A hub that accepts agents without credentials (its ``auth`` takes scheme
    ``none``) is served on a loopback address only, unless
    ``allow_unauthenticated``: anyone who can reach it could act as any agent.
    """
    if outbox_bytes < max_frame_bytes:
        raise UsageError(
            f"outbox_bytes ({outbox_bytes}) must be at least max_frame_bytes ({max_frame_bytes}): "
            "one response of the largest size must fit"
        )
    if hub.auth.open and not allow_unauthenticated and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without authentication: anyone who can reach it could act as "
            "any agent. Give the hub an AuthRegistry that checks credentials (hubbub serve --auth-keys "
            "FILE), serve on 127.0.0.1, or pass allow_unauthenticated=True if the network is trusted"
        )
    await hub.start()
    limits = Limits(outbox_size, outbox_bytes, max_inflight_requests, max_frame_bytes)
    server = WsServer(hub, limits)
    await server._listen(
        host,
        port,
        ssl_context,
        max_frame_bytes,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
    )
    log.info("hub %s listening on %s", hub.hub_id, server.url)
    try:
        yield server
    finally:
        await server.aclose()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
