"""``hubbub mcp``: serve a hub to MCP clients over stdio (default) or streamable HTTP (``--http``).

This module imports neither the MCP SDK nor uvicorn until the command runs,
so the ``hubbub`` command works without the ``mcp`` extra and says how to get
it when ``hubbub mcp`` is asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from ...errors import UsageError
from .bridge import DEFAULT_NAME, DEFAULT_URL

__all__ = ["add_parser", "run"]

_SDK_MODULES = {"mcp", "mcp_types", "uvicorn", "starlette", "pydantic", "anyio", "httpx2"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``mcp`` subcommand to the ``hubbub`` parser."""
    mcp = commands.add_parser(
        "mcp",
        help="serve a hub's agents to MCP clients (AI assistants): stdio, or streamable HTTP with --http",
        description="An MCP server for a hub: see docs/mcp.md. Over stdio by default (for an MCP client "
        "that launches it); --http serves streamable HTTP at http://HOST:PORT/mcp.",
    )
    mcp.add_argument(
        "--url",
        default=os.environ.get("HUBBUB_URL", DEFAULT_URL),
        help=f"the hub to connect to (default $HUBBUB_URL or {DEFAULT_URL})",
    )
    mcp.add_argument(
        "--key",
        default=os.environ.get("HUBBUB_KEY"),
        help="API key for --name when the hub runs with --auth-keys (default $HUBBUB_KEY; prefer the "
        "variable, a flag shows in the process list)",
    )
    mcp.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help=f"agent name the server acts as on the hub (default {DEFAULT_NAME!r}; registered on first "
        "use, attached to afterwards)",
    )
    mcp.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds a tool waits for the hub before it fails (default 15; get_task_result's wait is "
        "added on top)",
    )
    mcp.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="with --http: address to bind (default 127.0.0.1)")
    mcp.add_argument(
        "--port", type=int, default=8766, help="with --http: port to bind, 0 for any free one (default 8766)"
    )
    mcp.add_argument(
        "--allow-remote",
        action="store_true",
        help="with --http: allow a non-loopback --host (the server has no login of its own)",
    )
    mcp.add_argument("-v", "--verbose", action="store_true", help="log what the server does to stderr")


def run(args: argparse.Namespace) -> int:
    """Run ``hubbub mcp`` with parsed ``args``; returns the exit status."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="hubbub mcp: %(message)s",
    )
    try:
        from .bridge import HubBridge
        from .serve import check_http_host, run_http, run_stdio
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in _SDK_MODULES:
            raise
        print(
            f"hubbub mcp needs the MCP SDK ({missing} is missing): pip install 'hubbub[mcp]'",
            file=sys.stderr,
        )
        return 2

    async def serve() -> None:
        bridge = HubBridge.over_ws(args.url, name=args.name, key=args.key, timeout=args.timeout)
        if args.http:
            await run_http(bridge, host=args.host, port=args.port, announce=announce)
        else:
            await run_stdio(bridge)

    def announce(url: str) -> None:
        print(f"hubbub mcp serving on {url} (hub {args.url}, acting as {args.name})", flush=True)

    try:
        if args.http:
            check_http_host(args.host, allow_remote=args.allow_remote)
        asyncio.run(serve())
    except UsageError as exc:
        print(f"hubbub mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
