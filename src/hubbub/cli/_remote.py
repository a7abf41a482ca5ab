"""Reaching a hub from the command line: ``--url``, ``--key``, ``--as``, ``--timeout``, ``--json``.

Every remote command opens one ``HubClient(WsLink(url))`` (no reconnecting:
a command that cannot reach its hub says so at once), does its work through
the public client API, and closes it. :func:`run_remote` turns what can go
wrong into one line on stderr and an exit status (see ``_base``).

Identity: commands that act (``send``, ``delegate``, ``broadcast``) act as the
agent named by ``--as`` (default ``cli``, or ``$HUBBUB_AS``): registered on
first use, attached to afterwards, so every later run, from any terminal, is
the same agent. With ``--key`` (or ``$HUBBUB_KEY``) it presents
``{"api_key": KEY}`` under scheme ``api_key``, as a hub started with
``hubbub serve --auth-keys`` requires. Views of the whole hub (channels, any
WAL, the audit log) need no identity on an open hub; on a hub with keys the
command attaches ``--as`` with its key first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from ..client.agent_client import AgentClient
from ..client.hub_client import HubClient
from ..errors import AuthError, HubbubError, HubTimeoutError, NotFoundError, TransportError, UsageError
from ..model.identity import AuthBlock, Passport, Resume
from ..model.rule import InboxBlock, LimitsBlock, Rule
from ..transport.ws_client import WsLink
from ._base import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    Command,
    Subparsers,
    fail,
)
from ._output import err_console

__all__ = [
    "DEFAULT_IDENTITY",
    "DEFAULT_URL",
    "CliError",
    "Remote",
    "add_hub_options",
    "remote_command",
    "run_remote",
    "spinner",
]

DEFAULT_URL = "ws://127.0.0.1:8765"
DEFAULT_IDENTITY = "cli"
_SUMMARY = "the hubbub command line: acts for a person at a terminal"

T = TypeVar("T")


class CliError(Exception):
    """A command's own failure: printed as one line, exit ``status``."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


def add_hub_options(parser: argparse.ArgumentParser) -> None:
    """The flags every remote command takes."""
    hub = parser.add_argument_group("reaching the hub")
    hub.add_argument(
        "--url",
        default=os.environ.get("HUBBUB_URL", DEFAULT_URL),
        help=f"the hub (default $HUBBUB_URL or {DEFAULT_URL})",
    )
    hub.add_argument(
        "--key",
        default=os.environ.get("HUBBUB_KEY") or None,
        help="API key of the --as agent, for a hub served with --auth-keys (default $HUBBUB_KEY; "
        "prefer the variable: a flag shows in the process list)",
    )
    hub.add_argument(
        "--as",
        dest="identity",
        metavar="NAME",
        default=os.environ.get("HUBBUB_AS") or DEFAULT_IDENTITY,
        help=f"agent to act as; registered on first use (default $HUBBUB_AS or {DEFAULT_IDENTITY!r})",
    )
    hub.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the hub to connect and answer each call (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


class Remote:
    """One command's connection to the hub at ``args.url``.

    ``wait`` is how long one call may legitimately block on the hub (a task
    wait), added to ``--timeout`` for every request.
    """

    def __init__(self, args: argparse.Namespace, *, wait: float = 0.0) -> None:
        self.url: str = args.url
        self.key: str | None = args.key
        self.name: str = args.identity
        self.timeout: float = args.timeout
        self.client = HubClient(
            WsLink(self.url, open_timeout=self.timeout, request_timeout=self.timeout + wait, reconnect=False)
        )
        self._me: AgentClient | None = None

    async def __aenter__(self) -> Remote:
        await self.client.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.client.aclose()

    @property
    def auth(self) -> AuthBlock | None:
        return AuthBlock(scheme="api_key", claim={"api_key": self.key}) if self.key else None

    async def me(self) -> AgentClient:
        """The ``--as`` agent: attached if registered, else registered (summary: the command line).

        A new identity gets an inbox that drops its oldest unread deliveries
        rather than refusing senders: the command line reads channels by their
        WAL, and it is not running most of the time.
        """
        if self._me is None:
            self._me = await self._identify()
        return self._me

    async def _identify(self) -> AgentClient:
        client, auth = self.client, self.auth
        if await client.request("find_agent_id", {"name": self.name}) is None:
            rule = Rule(limits=LimitsBlock(inbox=InboxBlock(overflow="drop_oldest")))
            passport = Passport(name=self.name, auth=auth or AuthBlock())
            try:
                return await client.register(
                    passport=passport, resume=Resume(summary=_SUMMARY), rule=rule, handle_turns=False
                )
            except UsageError as exc:
                if exc.reason != "name_taken":  # else another run registered it just now
                    raise
        return await client.attach(None, self.name, auth=auth, since_envelope_id=None, handle_turns=False)

    async def names(self, agent_ids: Iterable[str | None]) -> dict[str, str]:
        """``{agent_id: name}`` for the ids given (an id the hub does not know maps to itself)."""
        wanted = sorted({a for a in agent_ids if a})
        if not wanted:
            return {}
        return dict(await self.client.request("names_for", {"agent_ids": wanted}))

    async def viewing(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Run a whole-hub view; on a hub with keys, attach ``--as`` with ``--key`` first if need be."""
        try:
            return await call()
        except AuthError as exc:
            if exc.reason != "not_authenticated":
                raise
            if not self.key:
                raise CliError(
                    f"the hub at {self.url} checks credentials, and {what} shows the whole hub: pass "
                    "--as NAME --key KEY (or set HUBBUB_AS and HUBBUB_KEY) for an agent in its key file"
                ) from None
        await self.me()
        return await call()


@contextlib.contextmanager
def spinner(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while the block runs, when stderr is a terminal; the block gets a
    function that changes its message."""
    console = err_console()
    if not console.is_terminal:
        yield lambda text: None
        return
    with console.status(message) as status:
        yield lambda text: status.update(text)


Body = Callable[[Remote, argparse.Namespace], Awaitable[int]]
"""A remote command's work: ``await body(remote, args)`` returns the exit status."""


def remote_command(
    name: str,
    add_parser: Callable[[Subparsers], object],
    body: Body,
    *,
    wait: Callable[[argparse.Namespace], float] | None = None,
) -> Command:
    """A :class:`Command` that runs ``body`` against the hub (see :func:`run_remote`)."""
    return Command(name, add_parser, lambda args: run_remote(args, body, wait=wait(args) if wait else 0.0))


def run_remote(args: argparse.Namespace, body: Body, *, wait: float = 0.0) -> int:
    """Run ``body`` with a connected :class:`Remote`; every failure becomes one line and a status."""
    prog = f"hubbub {args.command}"

    async def go() -> int:
        async with Remote(args, wait=wait) as remote:
            return await body(remote, args)

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        return EXIT_OK if getattr(args, "follow", False) else EXIT_INTERRUPTED
    except CliError as exc:
        return fail(prog, exc, exc.status)
    except HubTimeoutError as exc:
        if exc.reason:  # the hub answered: what it waited for (an invitee's ack) did not come
            return fail(prog, exc)
        return fail(prog, _unreachable(args.url, exc), EXIT_UNREACHABLE)
    except TransportError as exc:
        return fail(prog, _unreachable(args.url, exc), EXIT_UNREACHABLE)
    except AuthError as exc:
        hint = "" if args.key else "; pass --key KEY (or set HUBBUB_KEY) if the hub checks credentials"
        return fail(prog, f"{exc}{hint}")
    except NotFoundError as exc:
        return fail(prog, _not_found(args.url, exc))
    except HubbubError as exc:
        return fail(prog, exc)


def _not_found(url: str, exc: NotFoundError) -> str:
    """The hub's not-found messages point at the Python API; point at the command that lists instead."""
    if exc.reason == "unknown_channel" and exc.channel_id:
        return f"no channel {exc.channel_id!r} on the hub at {url}; `hubbub channels` lists them"
    if exc.reason == "unknown_agent" and exc.agent_id:
        return f"no agent named or with id {exc.agent_id!r} on the hub at {url}; `hubbub agents` lists them"
    return str(exc)


def _unreachable(url: str, exc: TransportError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"{text}; the hub's TLS certificate is not trusted here: if it is self-signed, point "
            "SSL_CERT_FILE at it (or at the CA that signed it)"
        )
    if url.startswith("ws://") and "did not receive a valid HTTP response" in text:
        return f"{text}; if the hub serves TLS (hubbub serve --tls-cert), use a wss:// URL"
    if text.startswith("could not connect"):
        return f"{text}; is a hub running there? Start one with `hubbub serve`, or pass --url"
    return text
