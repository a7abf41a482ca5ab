"""Requests sent again while the link reconnects, for those a repeat cannot apply twice.

A turn's reply (``post_reply``, idempotent per cause) and a post with an ``idempotency_key``
must not be lost to an outage: a reply given up on would leave the turn unanswered for good,
since its question counts as processed. :func:`retrying` sends it until the hub takes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import HubbubError, TransportError

if TYPE_CHECKING:
    from .hub_client import HubClient

__all__ = ["PATIENCE", "retrying"]

PATIENCE = 300.0
"""Seconds a request is sent again while the link reconnects (a link that does not reconnect:
once)."""

log = logging.getLogger("hubbub.client")


async def retrying(
    hub_client: HubClient,
    op: str,
    params: dict[str, Any],
    *,
    who: str,
    where: str,
    closed: Callable[[], bool],
) -> Any:
    """``op`` again and again while the link is down or slow: its result once taken; None
    (logged) once refused, when ``closed()``, or when the link will not come back."""
    loop = asyncio.get_running_loop()
    give_up, delay = loop.time() + PATIENCE, 0.1
    link = hub_client.link
    while True:
        try:
            return await hub_client.request(op, params)
        except TransportError as exc:
            gone = closed() or getattr(link, "closed", True) or not getattr(link, "reconnect", False)
            if gone or loop.time() > give_up:
                log.error("%s's %s in %s is lost (%s)", who, op, where, exc)
                return None
            log.info("%s's %s in %s waits for the hub: %s", who, op, where, exc)
        except HubbubError as exc:
            log.warning("%s's %s in %s was refused: %s", who, op, where, exc)
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
