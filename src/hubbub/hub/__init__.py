"""The asyncio hub, split by concern: registry, channels, lifecycle, delivery, deadlines, sessions."""

from .core import Hub
from .delivery import Endpoint
from .session import Session

__all__ = ["Endpoint", "Hub", "Session"]
