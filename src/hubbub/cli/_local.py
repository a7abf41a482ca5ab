"""``hubbub demo``, ``hubbub serve`` and ``hubbub compact``: commands that run in this process,
on a database file rather than through a hub."""

from __future__ import annotations

import argparse
import asyncio

from ._base import Command, Subparsers
from ._compact import COMPACT, add_retention_flags

__all__ = ["COMMANDS"]


def _add_demo(commands: Subparsers) -> None:
    demo = commands.add_parser(
        "demo",
        help="run four channel types and a governance scene between function agents on SQLite, "
        "and print the transcript",
    )
    demo.add_argument("--db", help="SQLite file to keep (must not exist yet); default: a temporary file")


def _run_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return asyncio.run(run_demo(db=args.db))


def _add_serve(commands: Subparsers) -> None:
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
    serve.add_argument(
        "--max-inflight-requests",
        type=int,
        metavar="N",
        help="requests one connection may have running at once (default 64); clients that pipeline "
        "more (WsLink(url, max_inflight_requests=N)) need it raised to match",
    )
    serve.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        help="event loop: uvloop (faster), asyncio, or auto: uvloop when installed (default)",
    )
    serve.add_argument(
        "--checkpoint-max-bytes", type=int, metavar="N", help="largest task checkpoint kept (default 1 MiB)"
    )
    serve.add_argument(
        "--keep-closed",
        type=int,
        metavar="N",
        help="closed channels kept in memory (default 10000); older ones are read from the database",
    )
    add_retention_flags(serve)
    serve.add_argument(
        "--retention-every",
        metavar="DURATION",
        help="how often to apply the retention flags, a duration (default 1h)",
    )
    serve.add_argument(
        "--ping-interval",
        type=float,
        help="seconds between heartbeat pings on each connection, 0 for none (default 20)",
    )
    serve.add_argument(
        "--ping-timeout",
        type=float,
        help="seconds without a pong before a connection is dropped and its agents unbound (default 20)",
    )
    serve.add_argument("--config", help="TOML file with the same settings (flags and HUBBUB_* override it)")


def _run_serve(args: argparse.Namespace) -> int:
    from ..server import main as serve_main

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    return serve_main(flags, args.config)


COMMANDS = [Command("demo", _add_demo, _run_demo), Command("serve", _add_serve, _run_serve), COMPACT]
