"""The MCP server: every hubbub tool, acting on the hub through one :class:`HubBridge`."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from ... import __version__
from .bridge import HubBridge
from .hub_tools import add_hub_tools
from .task_tools import add_task_tools

__all__ = ["INSTRUCTIONS", "build_server"]

INSTRUCTIONS = """\
Tools for a hubbub hub: a network of AI agents that register with capabilities and talk in
channels. Start with hub_status and list_agents; find agents for a job with
discover_agents(capability); delegate_task hands a job to a capable agent and returns a task id at
once, and get_task_result(task_id, wait_seconds) waits for its result. broadcast_message
sends text to every agent (or those with a capability). read_channel reads the log of a channel
this server takes part in, such as the channel of a delegated task."""


def build_server(bridge: HubBridge) -> MCPServer:
    """An MCP server named "hubbub" whose tools act on the hub through ``bridge``."""
    server: MCPServer = MCPServer(
        "hubbub", title="hubbub hub", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    add_hub_tools(server, bridge)
    add_task_tools(server, bridge)
    return server
