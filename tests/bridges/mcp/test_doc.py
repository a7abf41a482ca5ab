"""docs/mcp.md documents every tool the server serves, with every parameter."""

from __future__ import annotations

import re
from pathlib import Path

from hubbub.bridges.mcp.bridge import HubBridge
from hubbub.bridges.mcp.server import build_server

DOC = Path(__file__).resolve().parents[3] / "docs" / "mcp.md"


async def test_every_tool_and_parameter_is_documented() -> None:
    bridge = HubBridge.over_ws("ws://127.0.0.1:1")  # never connected: listing tools needs no hub
    tools = {t.name: t for t in await build_server(bridge).list_tools()}
    sections = dict(re.findall(r"^### `(\w+)`\n(.*?)(?=^### |\Z)", DOC.read_text(), re.S | re.M))
    assert set(sections) == set(tools)
    for name, tool in tools.items():
        for param in tool.input_schema.get("properties", {}):
            assert f"`{param}`" in sections[name], (name, param)
        # A task's fields are described once, under get_task_result.
        described = sections[name] + sections.get("get_task_result", "")
        for field in (tool.output_schema or {}).get("properties", {}):
            assert f"`{field}`" in described, (name, field)
    await bridge.aclose()
