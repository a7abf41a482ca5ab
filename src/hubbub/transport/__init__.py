"""Links between clients and hubs: the ``Link`` protocol, ``LocalLink`` and the WebSocket pair."""

from .link import Link, NotifyHandler
from .local import LocalLink
from .ws import WsLink, WsServer, serve_ws

__all__ = ["Link", "LocalLink", "NotifyHandler", "WsLink", "WsServer", "serve_ws"]
