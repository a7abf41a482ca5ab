"""Function agents: a plain function is an agent, so no LLM is needed to use or test hubbub."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, overload

from ..adapters.base import AgentReply
from ..model.envelope import Envelope
from .base import Turn

__all__ = ["FunctionAgent", "InvitePolicy", "function_agent"]

Reply = AgentReply | str | None
AgentFn = Callable[[Turn], Reply] | Callable[[Turn], Awaitable[Reply]]
InvitePolicy = Callable[[Envelope], bool]
"""Given an invite envelope, True to accept it."""


class FunctionAgent:
    """An agent whose turn is a function of the :class:`Turn` (sync or async).

    ``capabilities`` and ``summary`` become its resume when registered;
    ``accept_invite`` decides invites (default: accept all).
    """

    def __init__(
        self,
        fn: AgentFn,
        *,
        name: str | None = None,
        capabilities: Sequence[str] = (),
        summary: str = "",
        accept_invite: InvitePolicy | None = None,
    ) -> None:
        self._fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "agent"))
        self.capabilities = list(capabilities)
        self.summary = summary or (inspect.getdoc(fn) or "").split("\n")[0]
        self.accept_invite = accept_invite

    async def ask(self, turn: Turn) -> Reply:
        result: Any = self._fn(turn)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"FunctionAgent({self.name!r})"


@overload
def function_agent(fn: AgentFn, /) -> FunctionAgent: ...
@overload
def function_agent(
    *, name: str | None = None, capabilities: Sequence[str] = (), summary: str = ""
) -> Callable[[AgentFn], FunctionAgent]: ...


def function_agent(
    fn: AgentFn | None = None,
    /,
    *,
    name: str | None = None,
    capabilities: Sequence[str] = (),
    summary: str = "",
) -> FunctionAgent | Callable[[AgentFn], FunctionAgent]:
    """Decorator: ``@function_agent`` or ``@function_agent(name=..., capabilities=[...])``."""
    if fn is not None:
        return FunctionAgent(fn)

    def wrap(f: AgentFn) -> FunctionAgent:
        return FunctionAgent(f, name=name, capabilities=capabilities, summary=summary)

    return wrap
