"""Fewer syscalls: every frame queued on a WebSocket during one event-loop turn goes out in one write.

websockets frames each message into the protocol's buffer and writes each
buffer with its own ``transport.write``. :func:`write_joined` writes them all
in one. :class:`TurnWriter` lets code without an ``await`` queue a frame and
have it written at the end of the current loop turn, together with every other
frame queued meanwhile on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.protocol import Side, State

__all__ = [
    "CoalescingClientConnection",
    "CoalescingServerConnection",
    "TurnWriter",
    "queue_server_text",
    "write_joined",
]

_SHORT_HEADS = [bytes((0x81, length)) for length in range(126)]
"""FIN + text opcode, unmasked, for each payload length that fits the first length field."""


def queue_server_text(connection: Connection, data: bytes) -> None:
    """``connection.protocol.send_text(data)``, framed here when that is what websockets would do.

    A server's text frame without extensions is a fixed header and the payload (RFC 6455 §5.2:
    no mask); framing it here skips websockets' per-frame ``Frame`` object and ``BytesIO``.
    Anything else (a client, compression, a fragmented message, a closing connection, debug
    logging) goes through websockets.
    """
    protocol = connection.protocol
    if (
        protocol.side is not Side.SERVER
        or protocol.extensions
        or protocol.expect_continuation_frame
        or protocol.state is not State.OPEN
        or protocol.debug
    ):
        protocol.send_text(data)
        return
    length = len(data)
    if length < 126:
        head = _SHORT_HEADS[length]
    elif length < 65536:
        head = b"\x81\x7e" + length.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + length.to_bytes(8, "big")
    protocol.writes.append(head + data)  # one chunk: an empty chunk would mean end of stream


def write_joined(connection: Connection) -> None:
    """``Connection.send_data`` with one ``transport.write`` for all the data waiting."""
    chunks = connection.protocol.data_to_send()
    transport = connection.transport
    if len(chunks) > 1 and all(chunks):
        transport.write(b"".join(chunks))
        return
    for data in chunks:  # the base class's handling of b"" (end of stream)
        if data:
            transport.write(data)
        elif transport.can_write_eof():
            with contextlib.suppress(Exception):
                transport.write_eof()
        else:
            transport.close()


class CoalescingServerConnection(ServerConnection):
    """Writes every frame queued since the last write in one ``transport.write``."""

    def send_data(self) -> None:
        write_joined(self)


class CoalescingClientConnection(ClientConnection):
    """Writes every frame queued since the last write in one ``transport.write``."""

    def send_data(self) -> None:
        write_joined(self)


class TurnWriter:
    """Queues text frames on one connection and writes them at the end of the loop turn."""

    __slots__ = ("_loop", "_pending", "connection")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._loop = asyncio.get_running_loop()
        self._pending = False

    def ready(self) -> bool:
        """Whether :meth:`write` may be used now: open, and the socket's buffer not full.

        Otherwise await ``connection.send`` instead, which waits for room (or
        raises ``ConnectionClosed``).
        """
        connection = self.connection
        return connection.protocol.state is State.OPEN and not connection.paused

    def write(self, data: bytes) -> None:
        """Queue one text frame (``data`` is UTF-8 JSON); check :meth:`ready` first."""
        self.connection.protocol.send_text(data)
        if not self._pending:
            self._pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._pending = False
        # A failed write closes the transport; the connection's reader sees it and reports it.
        with contextlib.suppress(OSError):
            self.connection.send_data()
