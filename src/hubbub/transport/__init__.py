"""Links between clients and hubs: the ``Link`` protocol and ``LocalLink``."""

from .link import Link, NotifyHandler
from .local import LocalLink

__all__ = ["Link", "LocalLink", "NotifyHandler"]
