"""Running the MCP server: over stdio (one client, the process's stdin/stdout), or streamable HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn

from ...errors import HubbubError, UsageError
from .bridge import HubBridge
from .server import build_server

__all__ = ["HTTP_PATH", "check_http_host", "run_http", "run_stdio"]

log = logging.getLogger("hubbub.mcp")

HTTP_PATH = "/mcp"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _warm_up(bridge: HubBridge) -> None:
    """Connect and take the identity now, so the server shows up on the hub at once; if the hub
    is not there yet, say so and let the tools try again when called."""
    try:
        await bridge.operator()
    except HubbubError as exc:
        log.warning("%s (the tools will try again when called)", exc)


async def run_stdio(bridge: HubBridge) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin."""
    server = build_server(bridge)
    try:
        await _warm_up(bridge)
        await server.run_stdio_async()
    finally:
        await bridge.aclose()


def check_http_host(host: str, *, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless told: the tools act on the hub with no login."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise UsageError(
            f"refusing to serve MCP over HTTP on {host}: anyone who can reach it acts on the hub as "
            "this server's identity. Bind 127.0.0.1 (the default), or pass --allow-remote behind "
            "your own authenticating proxy"
        )


class _Server(uvicorn.Server):
    """uvicorn, leaving signals to :func:`run_http`: it installs them before announcing the URL
    (so a SIGTERM right after is a clean stop too), and does not re-raise them afterwards, so the
    hub connection closes and the process exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_http(
    bridge: HubBridge,
    *,
    host: str = "127.0.0.1",
    port: int = 8766,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve MCP over streamable HTTP at ``http://host:port/mcp`` until SIGINT/SIGTERM.

    ``port=0`` picks a free port; ``announce`` gets the URL once the socket
    listens (``hubbub mcp --http`` prints it).
    """
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0 (any free port) to 65535, got {port}")
    server = build_server(bridge)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound = sock.getsockname()[1]
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    shown = f"[{host}]" if ":" in host else host
    http = _Server(config)
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, http.handle_exit, sig, None)
    try:
        await _warm_up(bridge)
        announce(f"http://{shown}:{bound}{HTTP_PATH}")
        await http.serve(sockets=[sock])
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        sock.close()
        await bridge.aclose()
