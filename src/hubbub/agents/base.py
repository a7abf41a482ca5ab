"""What hubbub needs from an agent: a name and an async ``ask`` for its turn."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec

from ..adapters.base import AgentReply
from ..model.envelope import Envelope
from ..model.turn import TranscriptLine

__all__ = ["Agent", "Turn", "as_reply"]


class Turn(msgspec.Struct, kw_only=True, frozen=True):
    """One turn as the agent sees it.

    ``prompt`` is the text that put the turn on the agent; ``transcript`` is
    the channel so far through the agent's view policy (ending with the
    prompt); ``context`` holds workflow context variables; ``names`` maps the
    participants' ids to names.
    """

    agent_id: str
    agent_name: str
    channel_id: str
    channel_type: str
    prompt: str
    transcript: list[TranscriptLine]
    names: dict[str, str]
    context: dict[str, Any]
    envelope: Envelope
    knobs: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def sender_name(self) -> str:
        """The name of whoever sent the prompt."""
        return self.names.get(self.envelope.sender_id, self.envelope.sender_id)

    def agent_named(self, name: str) -> str:
        """The agent id of participant ``name`` (for workflow handoffs)."""
        for agent_id, agent_name in self.names.items():
            if agent_name == name:
                return agent_id
        known = sorted(self.names.values())
        raise KeyError(f"no participant named {name!r} in channel {self.channel_id}; participants: {known}")


@runtime_checkable
class Agent(Protocol):
    """Anything with a ``name`` and ``async ask(turn)`` can take part in channels.

    ``ask`` returns the reply: a string, an :class:`AgentReply` (for workflow
    handoffs, finishes and context updates), or None to stay silent.
    """

    name: str

    async def ask(self, turn: Turn) -> AgentReply | str | None:
        """Produce this agent's reply for ``turn``."""
        ...


def as_reply(value: AgentReply | str | None) -> AgentReply:
    """Normalise what ``ask`` returned into an :class:`AgentReply`."""
    if value is None:
        return AgentReply()
    if isinstance(value, str):
        return AgentReply(text=value)
    if isinstance(value, AgentReply):
        return value
    raise TypeError(f"an agent's ask() must return str, AgentReply or None, got {type(value).__name__}")
