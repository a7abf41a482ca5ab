"""The WebSocket transport: :func:`serve_ws` on the hub side, :class:`WsLink` on the client side.

Both speak the frames of :mod:`hubbub.protocol.frames`, one JSON object per
text message, with permessage-deflate off (it costs more CPU than it saves on
small frames). The ``websockets`` library stays behind these two names, so a
faster one can replace it.
"""

from .ws_client import WsLink
from .ws_server import DEFAULT_MAX_FRAME_BYTES, WsServer, serve_ws

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "WsLink", "WsServer", "serve_ws"]
