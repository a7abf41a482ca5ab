"""What every subcommand shares: the :class:`Command` entry, the parser, exit statuses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple, NoReturn, TypeAlias

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Command",
    "Parser",
    "Subparsers",
    "count_arg",
    "fail",
    "one_line",
]

EXIT_OK = 0
EXIT_ERROR = 1
"""The hub refused (unknown channel, access denied, bad key ...) or the command failed."""
EXIT_USAGE = 2
"""Bad arguments (argparse's status)."""
EXIT_UNREACHABLE = 3
"""No hub answered at ``--url`` (not running, wrong address, timed out)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (except under ``--follow``, where Ctrl-C is how one stops, and the status is 0)."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``parser.add_subparsers()`` returns; a command's ``add_parser`` adds itself to it."""


class Command(NamedTuple):
    """One ``hubbub`` subcommand: ``add_parser(subparsers)`` adds ``name`` and its flags,
    ``run(args)`` runs it and returns the exit status."""

    name: str
    add_parser: Callable[[Subparsers], object]
    run: Callable[[argparse.Namespace], int]


def one_line(text: object) -> str:
    """``text`` on one line (an error from the hub may hold newlines)."""
    return " ".join(str(text).split())


def fail(prog: str, message: object, status: int = EXIT_ERROR) -> int:
    """Print ``prog: message`` as one line on stderr; return ``status``."""
    print(f"{prog}: {one_line(message)}", file=sys.stderr)
    return status


def count_arg(text: str) -> int:
    """An argparse type: a whole number from 1 to 10000 (the hub's largest page)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 1 to 10000, got {value}")
    return value
