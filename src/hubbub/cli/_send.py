"""``hubbub send``: say something as the ``--as`` agent, and optionally wait for the answer.

Two forms:

* ``hubbub send CHANNEL TEXT`` posts TEXT into a channel the ``--as`` agent
  takes part in.
* ``hubbub send --to AGENT TEXT`` opens a channel to AGENT (``consulting`` by
  default: one question, one reply, then it closes; ``--type conversation``
  stays open for more ``hubbub send CHANNEL TEXT``) and posts TEXT as its first
  message.

With ``--wait`` the command then waits (up to ``--wait-timeout``) for the next
text someone else posts in the channel and prints it: the reply. TEXT ``-``
reads the text from stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ..client.agent_client import AgentClient
from ..client.channel import Channel
from ..model.envelope import EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED, EV_PACKET, EV_TEXT, Envelope
from ._base import EXIT_OK, EXIT_USAGE, Subparsers
from ._output import console, print_json
from ._remote import CliError, Remote, add_hub_options, remote_command, spinner

__all__ = ["COMMANDS", "wait_for_reply"]

_SAYS = (EV_TEXT, EV_PACKET)
_TERMINAL = (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _add_send(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "send",
        help="post TEXT into CHANNEL, or open a channel --to AGENT with TEXT; --wait prints the reply",
        description="hubbub send CHANNEL TEXT | hubbub send --to AGENT TEXT. TEXT '-' reads stdin.",
    )
    parser.add_argument(
        "words", nargs="+", metavar="[CHANNEL] TEXT", help="the channel id (without --to), then the text"
    )
    parser.add_argument("--to", metavar="AGENT", help="open a new channel to this agent (name or id)")
    parser.add_argument(
        "--type",
        default="consulting",
        choices=["consulting", "conversation"],
        help="with --to: consulting (one question, one reply, then closed; default) or conversation",
    )
    parser.add_argument("--wait", action="store_true", help="wait for the reply and print it")
    parser.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="with --wait: give up after this",
    )
    add_hub_options(parser)


async def _text(word: str) -> str:
    text = await asyncio.to_thread(sys.stdin.read) if word == "-" else word
    if not text.strip():
        raise CliError("hubbub send needs a non-empty TEXT", EXIT_USAGE)
    return text.rstrip("\n") if word == "-" else text


async def _send(remote: Remote, args: argparse.Namespace) -> int:
    words: list[str] = args.words
    if len(words) != (1 if args.to else 2):
        form = "hubbub send --to AGENT TEXT" if args.to else "hubbub send CHANNEL TEXT (or --to AGENT TEXT)"
        raise CliError(
            f"expected {form}, got {' '.join(map(repr, words))}; quote a TEXT that has spaces",
            EXIT_USAGE,
        )
    text = await _text(words[-1])
    me = await remote.me()
    if args.to:
        channel = await me.open(args.type, args.to)
    else:
        channel = me.channel(await remote.client.get_channel(words[0]))
    sent = await channel.send(text)
    reply = None
    if args.wait:
        with spinner(f"waiting for a reply in {channel.id}"):
            reply = await wait_for_reply(me, channel, sent, args.wait_timeout)
    names = await remote.names([*channel.metadata.participant_ids(), reply.sender_id if reply else None])
    if args.json:
        print_json({"channel_id": channel.id, "type": channel.type, "envelope_id": sent, "reply": reply})
        return EXIT_OK
    con = console()
    others = [names.get(a, a) for a in channel.metadata.participant_ids() if a != me.agent_id]
    if reply is None:
        con.print(f"sent {sent} as {me.name} to {channel.type} {channel.id} with {', '.join(others)}")
        return EXIT_OK
    con.print(f"{names.get(reply.sender_id, reply.sender_id)}: {reply.text}", soft_wrap=True)
    if channel.type != "consulting":
        con.print(f"channel {channel.id} stays open: hubbub send {channel.id} TEXT --wait", style="dim")
    return EXIT_OK


async def wait_for_reply(me: AgentClient, channel: Channel, after: str, timeout: float) -> Envelope:
    """The first text another participant posts in ``channel`` after envelope ``after``.

    Reads the channel's WAL by cursor, waking on deliveries (or every half
    second, so a delivery that went to another connection acting as the same
    agent is not missed). :class:`CliError` if the channel closes first or
    ``timeout`` passes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    cursor = after
    while True:
        for envelope in await me.hub_client.read_wal(channel.id, since=cursor):
            cursor = envelope.envelope_id
            if envelope.event_type in _SAYS and envelope.sender_id != me.agent_id:
                return envelope
            if envelope.event_type in _TERMINAL:
                reason = envelope.event_data.get("reason") or envelope.event_type
                raise CliError(f"channel {channel.id} ended ({reason}) before anyone replied")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise CliError(
                f"no reply in channel {channel.id} within {timeout:g}s; it may still come: "
                f"hubbub wal {channel.id} --follow",
            )
        with contextlib.suppress(TimeoutError):
            await me.wait_for_channel_event(channel.id, _news, timeout=min(0.5, remaining), seen_ok=False)


def _news(envelope: Envelope) -> bool:
    return envelope.event_type in _SAYS or envelope.event_type in _TERMINAL


INVITE_WAIT = 30.0
"""Opening a channel waits for the invitee's ack, up to the hub's ``invite_ack_timeout`` (30 s by
default): that long on top of ``--timeout``."""

COMMANDS = [remote_command("send", _add_send, _send, wait=lambda args: INVITE_WAIT)]
