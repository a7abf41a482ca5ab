"""Bridges from other protocols to a hub, through the public client API only.

``hubbub.bridges.mcp`` serves the hub to MCP clients (``hubbub mcp``).
"""
