"""The MCP server's hold on a hub: one :class:`HubClient`, acting as one operator identity.

Nothing here imports the MCP SDK: this is plain hubbub client code that the
tools call. The operator identity is who the hub sees behind every tool that
acts (delegations are requested by it, broadcasts sent by it, channels read
as it). It is registered on first use, or attached to when a previous run
(or another ``hubbub mcp`` process) registered the name already; the hub
then delivers to whichever connection attached last, which the tools do not
rely on, so two servers under one name both keep working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec

from ...client.agent_client import AgentClient
from ...client.hub_client import HubClient
from ...errors import HubTimeoutError, TransportError, UsageError
from ...model.identity import AuthBlock, Passport, Resume
from ...transport.link import Link
from ...transport.ws_client import WsLink

__all__ = ["DEFAULT_NAME", "DEFAULT_URL", "MAX_WAIT_SECONDS", "HubBridge"]

log = logging.getLogger("hubbub.mcp")

DEFAULT_URL = "ws://127.0.0.1:8765"
DEFAULT_NAME = "mcp"
MAX_WAIT_SECONDS = 600.0
"""The longest a tool may wait for a task (``get_task_result``'s ``wait_seconds``)."""

_SUMMARY = "MCP bridge (hubbub mcp): acts for an MCP client such as an AI assistant"

T = TypeVar("T")


class HubBridge:
    """A hub connection for the MCP tools.

    ``timeout`` bounds every hub call a tool makes (a long wait gets its wait
    on top), so a hub that is down or stuck turns into a tool error naming it
    instead of a hung tool. Over :class:`WsLink` the link reconnects by
    itself and re-attaches the operator.
    """

    def __init__(
        self,
        link: Link,
        *,
        name: str = DEFAULT_NAME,
        key: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        if not name:
            raise UsageError("the MCP server needs a name to act as (--name)")
        if timeout <= 0:
            raise UsageError(f"timeout must be positive, got {timeout}")
        self.client = HubClient(link)
        self.name = name
        self.timeout = timeout
        self.where = str(getattr(link, "url", "the hub"))
        """Where the hub is, for messages (its URL over a WebSocket)."""
        self._auth = AuthBlock(scheme="api_key", claim={"api_key": key}) if key else None
        self._operator: AgentClient | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def over_ws(
        cls,
        url: str = DEFAULT_URL,
        *,
        name: str = DEFAULT_NAME,
        key: str | None = None,
        timeout: float = 15.0,
    ) -> HubBridge:
        """A bridge to the hub served at ``url`` (``ws://`` or ``wss://``)."""
        # The link's own limit must outlast the longest task wait; the bridge bounds each call.
        return cls(
            WsLink(url, request_timeout=MAX_WAIT_SECONDS + timeout), name=name, key=key, timeout=timeout
        )

    async def call(self, awaitable: Awaitable[T], *, wait: float = 0.0) -> T:
        """Await a hub call; :class:`HubTimeoutError` after ``timeout + wait`` seconds."""
        limit = self.timeout + wait
        try:
            async with asyncio.timeout(limit):
                return await awaitable
        except TimeoutError:
            raise HubTimeoutError(
                f"no answer from the hub at {self.where} within {limit:g}s; is it running "
                "(`hubbub serve`) and reachable?"
            ) from None

    async def request(self, op: str, params: dict[str, Any], *, wait: float = 0.0) -> Any:
        """Run a hub op (see docs/protocol.md), bounded like :meth:`call`."""
        await self.connect()
        return await self.call(self.client.request(op, params), wait=wait)

    async def connect(self) -> None:
        """Open the link if it is not open yet; a clear :class:`TransportError` if the hub is unreachable."""
        try:
            await self.call(self.client.connect())
        except TransportError as exc:
            if isinstance(exc, HubTimeoutError):
                raise
            raise TransportError(
                f"{exc}; start a hub with `hubbub serve`, or point `hubbub mcp --url` at yours"
            ) from exc

    async def hub(self) -> HubClient:
        """The client, connected (for the calls that need no identity)."""
        await self.connect()
        return self.client

    async def operator(self) -> AgentClient:
        """The identity the tools act as: registered, or attached to, on first use."""
        if self._operator is None:
            async with self._lock:
                if self._operator is None:
                    await self.connect()
                    self._operator = await self.call(self._identify())
                    log.info("acting on the hub at %s as %s", self.where, self.name)
        return self._operator

    async def _identify(self) -> AgentClient:
        passport = Passport(name=self.name, auth=self._auth or AuthBlock())
        try:
            return await self.client.register(
                passport=passport, resume=Resume(summary=_SUMMARY), handle_turns=False
            )
        except UsageError as exc:
            if exc.reason != "name_taken":
                raise
        # Registered before (an earlier run, or another server under this name): act as it again.
        return await self.client.attach(None, self.name, auth=self._auth, handle_turns=False)

    async def names(self, agent_ids: list[str]) -> dict[str, str]:
        """Agent names for ids (an unknown id maps to itself)."""
        wanted = sorted({a for a in agent_ids if a})
        if not wanted:
            return {}
        raw = await self.request("names_for", {"agent_ids": wanted})
        return {str(k): str(v) for k, v in dict(raw).items()}

    async def resume(self, agent_id: str) -> Resume:
        """What ``agent_id`` claims and what the hub observed."""
        return as_record(Resume, await self.request("get_resume", {"agent_id": agent_id}))

    async def aclose(self) -> None:
        """Close the link (the operator stays registered on the hub for the next run)."""
        self._operator = None
        await self.client.aclose()


R = TypeVar("R")


def as_record(tp: type[R], value: Any) -> R:
    """An op result as ``tp``: as is in process, converted from JSON over the wire."""
    return value if isinstance(value, tp) else msgspec.convert(value, tp)
