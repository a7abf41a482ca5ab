"""The ``hubbub`` command line.

``hubbub demo`` and ``hubbub serve`` run a hub in this process; the other
commands reach a hub over its WebSocket (``--url``, default
``ws://127.0.0.1:8765``) through the public client API. See docs/cli.md.

Adding a subcommand: write ``add_parser(subparsers)`` (adds ``NAME`` and its
flags) and ``run(args) -> exit status``, and append ``Command(NAME,
add_parser, run)`` to :data:`COMMANDS`. A command that talks to a hub can use
``_remote.remote_command``, which adds the connection flags' handling and
turns every failure into one line on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import cast

from .. import __version__
from ..bridges.mcp import cli as _mcp
from . import _local, _logs, _send, _tasks, _views
from ._base import EXIT_USAGE, Command, Parser, Subparsers

__all__ = ["COMMANDS", "Command", "main"]

COMMANDS: list[Command] = [
    *_local.COMMANDS,  # demo, serve
    *_views.COMMANDS,  # status, agents, channels
    *_logs.COMMANDS,  # wal, audit
    *_send.COMMANDS,  # send
    *_tasks.COMMANDS,  # tasks, task, delegate, broadcast
    Command("mcp", _mcp.add_parser, _mcp.run),
]
"""Every subcommand, in the order ``hubbub --help`` lists them."""


def _parser() -> Parser:
    parser = Parser(prog="hubbub", description="A hub for networks of AI agents. See docs/cli.md.")
    parser.add_argument("--version", action="version", version=f"hubbub {__version__}")
    # Subcommands are Parsers too (one-line errors); commands see them as plain ArgumentParsers.
    subparsers = cast(
        Subparsers, parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    )
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hubbub`` console script; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (one line already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    for command in COMMANDS:
        if command.name == args.command:
            return command.run(args)
    parser.print_help(sys.stderr)
    return EXIT_USAGE
