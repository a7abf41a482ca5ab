"""``hubbub compact``: apply a retention policy to a hub's database file while no hub uses it.

A running hub holds the file's lock, so this refuses (exit 1) rather than
writing under it; ``hubbub serve --retain-closed ...`` compacts a live hub
instead. The retention flags are shared with ``hubbub serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict

from ..errors import HubbubError, StorageError, UsageError
from ..hub.retention import compact
from ..storage.retention import CompactionReport, RetentionPolicy
from ..storage.sqlite import SqliteStore
from ._base import EXIT_OK, EXIT_USAGE, Command, Subparsers, fail, one_line

__all__ = ["COMPACT", "add_retention_flags"]

_PROG = "hubbub compact"


def add_retention_flags(parser: argparse.ArgumentParser) -> None:
    """``--retain-closed``, ``--closed-max-envelopes``, ``--retain-audit`` and ``--audit-max-rows``."""
    parser.add_argument(
        "--retain-closed",
        metavar="DURATION",
        help="keep a closed channel's envelopes this long after it closed, e.g. 30d (its metadata stays)",
    )
    parser.add_argument(
        "--closed-max-envelopes",
        type=_count,
        metavar="N",
        help="keep at most N envelopes of closed channels in all: beyond that, empty the WALs of "
        "the channels that closed first",
    )
    parser.add_argument("--retain-audit", metavar="DURATION", help="keep audit records this long, e.g. 90d")
    parser.add_argument(
        "--audit-max-rows", type=_count, metavar="N", help="keep at most the N latest audit records"
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return value


def _add(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "compact", help="drop closed channels' old envelopes and old audit records from a hub's database file"
    )
    parser.add_argument("--db", required=True, help="the hub's SQLite file (no hub may be using it)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be dropped, change nothing")
    add_retention_flags(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _policy(args: argparse.Namespace) -> RetentionPolicy:
    return RetentionPolicy.from_settings(
        retain_closed=args.retain_closed,
        retain_audit=args.retain_audit,
        audit_max_rows=args.audit_max_rows,
        closed_max_envelopes=args.closed_max_envelopes,
    )


async def _compact(db: str, policy: RetentionPolicy, dry_run: bool) -> CompactionReport:
    store = await SqliteStore.open(db)
    try:
        return await compact(store, policy, dry_run=dry_run)
    finally:
        await store.aclose()


def _run(args: argparse.Namespace) -> int:
    try:
        policy = _policy(args)
    except UsageError as exc:
        return fail(_PROG, exc, EXIT_USAGE)
    if policy.empty:
        wanted = (
            "nothing to do: pass --retain-closed, --closed-max-envelopes, --retain-audit or --audit-max-rows"
        )
        return fail(_PROG, wanted, EXIT_USAGE)
    if os.path.isdir(args.db):
        return fail(_PROG, f"{args.db} is a directory, not a hub's database file")
    if not os.path.isfile(args.db):
        return fail(_PROG, f"no database file {args.db}")
    try:
        report = asyncio.run(_compact(args.db, policy, args.dry_run))
    except StorageError as exc:
        if exc.reason == "locked":
            return fail(
                _PROG,
                f"{args.db} is in use by a running hub: stop it first, or let it compact itself "
                "(hubbub serve --retain-closed / --closed-max-envelopes / --retain-audit / --audit-max-rows)",
            )
        return fail(_PROG, exc)
    except HubbubError as exc:
        return fail(_PROG, exc)
    if args.json:
        print(json.dumps({**asdict(report), "channel_ids": list(report.channel_ids)}))
    else:
        print(one_line(f"{args.db}: {report}"))
    sys.stdout.flush()
    return EXIT_OK


COMPACT = Command("compact", _add, _run)
