"""Registering hubbub tools on an MCP server: typed results, hub errors as tool errors.

Every tool returns a pydantic model (structured content plus an output
schema). A :class:`~hubbub.errors.HubbubError` from the hub, a timeout or an
unreachable hub becomes a tool error (``isError``) whose text is the error's
own message, so the assistant reads exactly what the hub said.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ...errors import HubbubError

__all__ = ["READ_ONLY", "Limit", "hub_tool"]

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
