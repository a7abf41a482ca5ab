"""An MCP server for a hub (``hubbub mcp``): see docs/mcp.md.

It connects to a hub with the public client API (``HubClient(WsLink(url))``),
acts as one operator identity (``--name``, default ``mcp``), and serves tools
over stdio or streamable HTTP. The modules:

* :mod:`.bridge` — the hub connection and the operator identity (no MCP import).
* :mod:`.results` — the typed tool results (pydantic models, so the SDK
  publishes output schemas and structured content).
* :mod:`._tooling` — how a tool is registered: typed results, hub errors as tool errors.
* :mod:`.hub_tools` / :mod:`.task_tools` — the tools that look, and those that act.
* :mod:`.server` — the MCP server with every tool.
* :mod:`.serve` — stdio and streamable HTTP runners.
* :mod:`.cli` — the ``hubbub mcp`` subcommand (imports the SDK only when run,
  so ``hubbub`` works without the ``mcp`` extra).
"""
