"""``LocalLink``: a client and a hub in one process, joined by direct calls.

No serialisation: params and results are the typed records themselves, and a
delivery is one call into the client's notify handler.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from ..errors import TransportError
from ..hub.core import Hub
from ..hub.session import Session
from ..model.envelope import Envelope
from ..model.ids import make_id
from .link import NotifyHandler

__all__ = ["LocalLink"]

log = logging.getLogger("hubbub.transport")


class _LocalEndpoint:
    __slots__ = ("endpoint_id", "on_notify", "session")

    def __init__(self, on_notify: NotifyHandler) -> None:
        self.endpoint_id = make_id()
        self.on_notify = on_notify
        self.session: Session | None = None

    def deliver(self, envelope: Envelope, recipient_id: str) -> None:
        try:
            session = self.session
            turn = session.turn_for(envelope, recipient_id) if session and session.pushed_turns else None
            self.on_notify(envelope, recipient_id, turn)
        except Exception:
            log.exception("notify handler failed for %s", recipient_id)


class LocalLink:
    """Connects a :class:`~hubbub.client.HubClient` to ``hub`` in the same process."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._session: Session | None = None

    async def connect(self, on_notify: NotifyHandler) -> None:
        await self.hub.start()
        endpoint = _LocalEndpoint(on_notify)
        self._session = endpoint.session = Session(self.hub, endpoint, trusted=True)

    def _live(self) -> Session:
        if self._session is None:
            raise TransportError(
                "this LocalLink is not connected; use it through HubClient, which connects it"
            )
        return self._session

    async def request(self, op: str, params: dict[str, Any]) -> Any:
        return await self._live().call(op, params)

    async def receipt(
        self,
        envelope_id: str,
        status: Literal["ack", "nack"],
        recipient_id: str,
        channel_id: str,
        reason: str = "",
    ) -> None:
        await self._live().receipt(envelope_id, status, recipient_id, channel_id, reason)

    async def aclose(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
