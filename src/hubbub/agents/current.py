"""Which agent client runs the current turn, so code inside ``ask`` can reach the hub.

The client sets it around each call of an agent's ``ask``; tasks the agent
starts inside ``ask`` inherit it (asyncio copies the context into them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..client.agent_client import AgentClient

__all__ = ["current_agent", "running_as"]

_CURRENT: ContextVar[AgentClient | None] = ContextVar("hubbub_current_agent", default=None)


def current_agent() -> AgentClient:
    """The :class:`~hubbub.client.AgentClient` whose turn is running.

    Use it inside an agent's ``ask`` (a function agent's function) to mirror
    sub-tasks (``current_agent().tasks.track(...)``), open channels or
    discover peers. Raises :class:`UsageError` outside a turn.
    """
    client = _CURRENT.get()
    if client is None:
        raise UsageError(
            "current_agent() was called outside an agent's turn; it is set only while an "
            "AgentClient runs the agent's ask()"
        )
    return client


@contextlib.contextmanager
def running_as(client: AgentClient) -> Iterator[None]:
    """Make ``client`` the current agent for the duration of the block (used by ``take_turn``)."""
    token = _CURRENT.set(client)
    try:
        yield
    finally:
        _CURRENT.reset(token)
