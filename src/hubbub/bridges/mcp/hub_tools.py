"""The tools that look: hub status, agents, discovery, channel reads (see :mod:`._tooling`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from ...model.channel import ChannelMetadata
from ...model.envelope import Envelope
from ...model.identity import Passport
from ._tooling import READ_ONLY, Limit, hub_tool
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

__all__ = ["add_hub_tools"]


def add_hub_tools(server: MCPServer, bridge: HubBridge) -> None:
    """Add hub_status, list_agents, discover_agents and read_channel."""

    async def agents_of(passports: list[Passport]) -> list[AgentInfo]:
        resumes = await asyncio.gather(*(bridge.resume(p.agent_id or p.name) for p in passports))
        return [agent_info(p, r) for p, r in zip(passports, resumes, strict=True)]

    async def hub_status() -> HubStatus:
        """The hub's counters: agents, channels by state, channel types; and who this server acts as."""
        status = dict(await bridge.request("hub_status", {}))
        return HubStatus.model_validate({**status, "hub_url": bridge.where, "acting_as": bridge.name})

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
