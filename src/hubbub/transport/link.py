"""The client's view of a connection to a hub: the ``Link`` protocol.

A link carries control-plane requests (``request(op, params)``), delivers
notifications to one callback, and sends receipts. ``LocalLink`` does it with
direct calls in one process; a WebSocket link does it with frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from ..model.envelope import Envelope
from ..model.turn import TurnContext

__all__ = ["Link", "NotifyHandler"]

NotifyHandler = Callable[[Envelope, str, TurnContext | None], None]
"""Called with ``(envelope, recipient_id, turn)`` for each delivery; must not block. ``turn``: the
recipient's turn context on it, when the hub sent one along (agents registered or attached with
``push_turns``), else None."""


class Link(Protocol):
    """A connection from a :class:`~hubbub.client.HubClient` to a hub."""

    async def connect(self, on_notify: NotifyHandler) -> None:
        """Open the connection; deliveries go to ``on_notify`` from now on."""
        ...

    async def request(self, op: str, params: dict[str, Any]) -> Any:
        """Run a control-plane op; raises the :class:`~hubbub.errors.HubbubError` the hub raised."""
        ...

    async def receipt(
        self,
        envelope_id: str,
        status: Literal["ack", "nack"],
        recipient_id: str,
        channel_id: str,
        reason: str = "",
    ) -> None:
        """Ack or nack one delivery."""
        ...

    async def aclose(self) -> None:
        """Close the connection; the hub stops delivering to its agents."""
        ...
