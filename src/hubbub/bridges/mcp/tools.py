"""The MCP server and its hub tools: status, agents, discovery, channel reads.

Every tool returns a pydantic model (structured content plus an output
schema). A :class:`~hubbub.errors.HubbubError` from the hub, a timeout or an
unreachable hub becomes a tool error (``isError``) whose text is the error's
own message, so the assistant reads exactly what the hub said.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ... import __version__
from ...errors import HubbubError
from ...model.channel import ChannelMetadata
from ...model.envelope import Envelope
from ...model.identity import Passport
from .bridge import HubBridge, as_record
from .results import (
    AgentInfo,
    AgentList,
    ChannelRead,
    HubStatus,
    agent_info,
    channel_info,
    envelope_info,
)

__all__ = ["build_server", "hub_tool"]

INSTRUCTIONS = """\
Tools for a hubbub hub: a network of AI agents that register with capabilities and talk in
channels. Start with hub_status and list_agents; find agents for a job with
discover_agents(capability); delegate_task hands a job to a capable agent and returns a task id at
once, and get_task_result(task_id, wait_seconds) waits for its result. broadcast_message
sends text to every agent (or those with a capability). read_channel reads the log of a channel
this server takes part in, such as the channel of a delegated task."""

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

ToolFn = Callable[..., Awaitable[BaseModel]]


def hub_tool(server: MCPServer, fn: ToolFn, *, annotations: ToolAnnotations | None = None) -> None:
    """Register ``fn`` (an async function returning a pydantic model) as a tool named after it.

    Its parameters (with ``Annotated[..., Field(...)]`` descriptions and bounds)
    become the input schema, its return model the output schema, its docstring
    the description. A ``HubbubError`` it raises is returned as a tool error
    with the error's message.
    """
    signature = inspect.signature(fn, eval_str=True)
    model = signature.return_annotation

    async def call(**arguments: Any) -> CallToolResult:
        try:
            result = await fn(**arguments)
        except HubbubError as exc:
            return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)
        return CallToolResult(
            content=[TextContent(type="text", text=result.model_dump_json(indent=1))],
            structured_content=result.model_dump(mode="json"),
        )

    # The SDK reads the signature for both schemas: the arguments stay fn's, the result is
    # a CallToolResult we build, validated against fn's model.
    setattr(call, "__signature__", signature.replace(return_annotation=Annotated[CallToolResult, model]))  # noqa: B010
    server.add_tool(
        call, name=fn.__name__, description=inspect.getdoc(fn) or fn.__name__, annotations=annotations
    )


Limit = Annotated[int, Field(ge=1, le=500, description="At most this many")]


def build_server(bridge: HubBridge) -> MCPServer:
    """An MCP server whose tools act on the hub through ``bridge``."""
    server: MCPServer = MCPServer(
        "hubbub", title="hubbub hub", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    async def agents_of(passports: list[Passport]) -> list[AgentInfo]:
        resumes = await asyncio.gather(*(bridge.resume(p.agent_id or p.name) for p in passports))
        return [agent_info(p, r) for p, r in zip(passports, resumes, strict=True)]

    async def hub_status() -> HubStatus:
        """The hub's counters: agents, channels by state, channel types; and who this server acts as."""
        status = dict(await bridge.request("hub_status", {}))
        return HubStatus(**status, hub_url=bridge.where, acting_as=bridge.name)

    async def list_agents(
        capability: Annotated[
            str | None, Field(description="Only agents claiming a capability containing this keyword")
        ] = None,
        limit: Limit = 50,
    ) -> AgentList:
        """The registered agents with their claimed capabilities and the hub's track record."""
        raw = await bridge.request("list_agents", {"capability": capability, "limit": limit})
        agents = await agents_of([as_record(Passport, p) for p in raw])
        return AgentList(agents=agents, count=len(agents))

    async def discover_agents(
        capability: Annotated[str, Field(description="A capability keyword, e.g. 'summarize'")],
        limit: Limit = 10,
    ) -> AgentList:
        """Agents that can do `capability`, best first: an exact claim before a partial one, then by
        observed success rate and latency."""
        raw = await bridge.request("discover", {"capability": capability, "limit": limit})
        agents = await agents_of([as_record(Passport, p) for p in raw])
        return AgentList(agents=agents, count=len(agents))

    async def read_channel(
        channel_id: Annotated[str, Field(description="The channel, e.g. a delegated task's channel_id")],
        since: Annotated[
            str | None, Field(description="Read only envelopes after this envelope id (a page's next_since)")
        ] = None,
        limit: Limit = 50,
    ) -> ChannelRead:
        """A channel's state and its envelopes, oldest first, a page at a time. This server can read
        the channels it takes part in (its delegated tasks)."""
        await bridge.operator()
        meta = as_record(ChannelMetadata, await bridge.request("get_channel", {"channel_id": channel_id}))
        raw = await bridge.request(
            "read_wal", {"channel_id": channel_id, "since": since or None, "limit": limit + 1}
        )
        envelopes = [as_record(Envelope, e) for e in raw]
        page, more = envelopes[:limit], len(envelopes) > limit
        ids = [meta.creator_id, *meta.participant_ids()]
        for envelope in page:
            ids.extend([envelope.sender_id, *(envelope.audience or [])])
        names = await bridge.names(ids)
        return ChannelRead(
            channel=channel_info(meta, names),
            envelopes=[envelope_info(e, names) for e in page],
            next_since=page[-1].envelope_id if page else since,
            more=more,
        )

    for fn in (hub_status, list_agents, discover_agents, read_channel):
        hub_tool(server, fn, annotations=READ_ONLY)
    return server
