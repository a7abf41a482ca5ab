"""The ``hubbub`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from . import __version__
from .bridges.mcp.cli import add_parser as add_mcp_parser

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubbub", description="A hub for networks of AI agents.")
    parser.add_argument("--version", action="version", version=f"hubbub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run four channel types and a governance scene between function agents on SQLite, "
        "and print the transcript",
    )
    demo.add_argument("--db", help="SQLite file to keep (must not exist yet); default: a temporary file")
    serve = commands.add_parser("serve", help="run a hub on SQLite behind a WebSocket until SIGINT/SIGTERM")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind, 0 for any free one (default 8765)")
    serve.add_argument("--db", help="SQLite file (default ./hubbub.db)")
    serve.add_argument(
        "--durability",
        choices=["full", "normal", "off"],
        help="full: an acked post survives power loss (default); normal: survives a crash of hubbub, "
        "may lose the last commits on power loss; off: may lose or corrupt recent commits on power loss",
    )
    serve.add_argument("--tls-cert", help="PEM certificate chain to serve wss://")
    serve.add_argument("--tls-key", help="PEM private key for --tls-cert")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="allow binding a non-loopback address without authentication",
    )
    serve.add_argument(
        "--auth-keys", help="file of 'name: key' lines: agents must present {'api_key': key} (scheme api_key)"
    )
    serve.add_argument(
        "--max-frame-bytes", type=int, help="largest WebSocket frame accepted (default 16 MiB)"
    )
    serve.add_argument("--config", help="TOML file with the same settings (flags and HUBBUB_* override it)")
    add_mcp_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hubbub`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return asyncio.run(run_demo(db=args.db))
    if args.command == "serve":
        from .server import main as serve_main

        flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
        return serve_main(flags, args.config)
    if args.command == "mcp":
        from .bridges.mcp.cli import run as run_mcp

        return run_mcp(args)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
