"""``hubbub wal CHANNEL`` and ``hubbub audit``: what happened, and with ``--follow`` what happens.

Both read through the hub's operator views (``hub_wal``, ``audit_query``) and
follow by polling with a cursor every ``--interval`` seconds: the WAL after the
last envelope id printed, the audit log from the last record's time (skipping
the records already printed at that time). Polling needs no subscription on
the hub and survives nothing being bound to this connection; ``--interval``
trades latency for load.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from datetime import UTC, datetime

from rich.text import Text

from ..errors import UsageError
from ..model._time import to_iso
from ..model.audit import AuditRecord
from ..model.envelope import EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED, Envelope
from ..model.rule import parse_duration
from ._base import EXIT_OK, Subparsers, count_arg
from ._output import (
    ID_COLUMN,
    console,
    envelope_line,
    envelope_summary,
    plural,
    print_json,
    print_json_line,
    print_table,
    short_event,
    table,
    when,
)
from ._remote import CliError, Remote, add_hub_options, remote_command

__all__ = ["COMMANDS"]

_PAGE = 1000


_TERMINAL = (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected 0.05 to 3600 seconds, got {text!r}")
    return value


def _add_follow(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--follow", "-f", action="store_true", help=f"keep printing {what} until Ctrl-C")
    parser.add_argument(
        "--interval", type=_interval, default=0.5, metavar="SECONDS", help="with --follow: poll this often"
    )


# wal


def _add_wal(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "wal", help="a channel's envelopes (its write-ahead log); --follow prints new ones as they come"
    )
    parser.add_argument("channel", metavar="CHANNEL", help="the channel id (see hubbub channels)")
    parser.add_argument("--limit", type=count_arg, default=50, help="the last this many (default 50)")
    parser.add_argument(
        "--all", action="store_true", help="every envelope from the first, not the last --limit"
    )
    _add_follow(parser, "new envelopes (it stops by itself when the channel closes or expires)")
    add_hub_options(parser)


async def _wal(remote: Remote, args: argparse.Namespace) -> int:
    client = remote.client
    if args.all:
        envelopes: list[Envelope] = []
        while True:
            after = envelopes[-1].envelope_id if envelopes else None
            page = await remote.viewing(
                functools.partial(client.hub_wal, args.channel, since=after, limit=_PAGE), "hubbub wal"
            )
            envelopes += page
            if len(page) < _PAGE:
                break
    else:
        envelopes = await remote.viewing(lambda: client.hub_wal(args.channel, tail=args.limit), "hubbub wal")
    names = await remote.names(e.sender_id for e in envelopes)
    if args.follow:
        return await _follow_wal(remote, args, envelopes, names)
    if args.json:
        print_json(envelopes)
        return EXIT_OK
    which = "" if args.all else _latest(len(envelopes), args.limit).replace("latest", "last")
    out = table(
        f"channel {args.channel} ({plural(len(envelopes), 'envelope')}{which})",
        ["time (UTC)", "from", "event", ("says", {"min_width": 12})],
    )
    for envelope in envelopes:
        out.add_row(
            when(envelope.created_at, date=False),
            names.get(envelope.sender_id, envelope.sender_id),
            short_event(envelope.event_type),
            envelope_summary(envelope, names),
        )
    print_table(out)
    return EXIT_OK


async def _follow_wal(
    remote: Remote, args: argparse.Namespace, backlog: list[Envelope], names: dict[str, str]
) -> int:
    con = console()
    batch, cursor = backlog, None
    while True:
        for envelope in batch:
            if envelope.sender_id not in names:
                names.update(await remote.names([envelope.sender_id]))
            if args.json:
                print_json_line(envelope)
            else:
                con.print(envelope_line(envelope, names), soft_wrap=True)
            if envelope.event_type in _TERMINAL:
                return EXIT_OK
        cursor = batch[-1].envelope_id if batch else cursor
        if len(batch) < _PAGE:
            await asyncio.sleep(args.interval)
        batch = await remote.client.hub_wal(args.channel, since=cursor, limit=_PAGE)


# audit


def _add_audit(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "audit", help="the hub's audit log (registrations, channels, denials, failures); --follow to watch"
    )
    parser.add_argument("--kind", help="only records of this kind (agent_registered, send_denied ...)")
    parser.add_argument("--agent", help="only records about or by this agent (name or id)")
    parser.add_argument("--channel", help="only records about this channel id")
    parser.add_argument(
        "--since", help="only records at or after this time: ISO (2026-01-02T03:04:05Z) or ago (10m, 2h, 1d)"
    )
    parser.add_argument("--limit", type=count_arg, default=50, help="the latest this many (default 50)")
    _add_follow(parser, "new records")
    add_hub_options(parser)


def _since(text: str | None) -> str | None:
    """An ISO time as given, or a duration ago (``10m``) as an ISO time."""
    if not text:
        return None
    if text[0].isdigit() and "-" not in text and ":" not in text:
        try:
            return to_iso(time.time() - parse_duration(text))
        except UsageError as exc:
            raise CliError(f"--since: {exc}", 2) from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since must be an ISO time or a duration like 10m, got {text!r}", 2) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_iso(moment.timestamp())


async def _audit(remote: Remote, args: argparse.Namespace) -> int:
    client = remote.client
    since = _since(args.since)
    filters = {"kind": args.kind, "agent": args.agent, "channel_id": args.channel}
    records = await remote.viewing(
        lambda: client.audit_query(**filters, since=since, limit=args.limit, tail=True), "hubbub audit"
    )
    names = await remote.names(x for r in records for x in (r.agent_id, r.actor))
    if args.follow:
        con = console()
        batch = records
        seen: set[str] = set()
        last_at = since
        while True:
            for record in batch:
                if record.id in seen:
                    continue
                if record.at != last_at:
                    seen.clear()
                    last_at = record.at
                seen.add(record.id)
                unknown = [x for x in (record.agent_id, record.actor) if x and x not in names]
                if unknown:
                    names.update(await remote.names(unknown))
                if args.json:
                    print_json_line(record)
                else:
                    con.print(_audit_line(record, names), soft_wrap=True)
            if len(batch) < _PAGE:
                await asyncio.sleep(args.interval)
            batch = await client.audit_query(**filters, since=last_at, limit=_PAGE)
    if args.json:
        print_json(records)
        return EXIT_OK
    if not records:
        console().print(
            f"no audit records{' matching' if any(filters.values()) or since else ''} on {remote.url}"
        )
        return EXIT_OK
    out = table(
        f"audit log ({plural(len(records), 'record')}{_latest(len(records), args.limit)})",
        ["time (UTC)", "kind", "agent", "by", ("channel", ID_COLUMN[1]), ("reason", {"min_width": 10})],
    )
    for record in records:
        out.add_row(
            when(record.at),
            record.kind,
            names.get(record.agent_id or "", record.agent_id or "-"),
            names.get(record.actor or "", record.actor or "-"),
            record.channel_id or "-",
            record.reason or "-",
        )
    print_table(out)
    return EXIT_OK


def _latest(shown: int, limit: int) -> str:
    return f", the latest {limit}" if shown >= limit else ""


def _audit_line(record: AuditRecord, names: dict[str, str]) -> Text:
    line = Text()
    line.append(when(record.at), style="dim")
    line.append(f"  {record.kind}", style="bold")
    for label, value in (("agent", record.agent_id), ("by", record.actor)):
        if value:
            line.append(f"  {label} {names.get(value, value)}")
    if record.channel_id:
        line.append(f"  channel {record.channel_id}", style="cyan")
    if record.reason:
        line.append(f"  {record.reason}")
    return line


COMMANDS = [remote_command("wal", _add_wal, _wal), remote_command("audit", _add_audit, _audit)]
