"""How commands print: rich tables and lines for people, JSON for scripts (``--json``).

Tables go to stdout through a rich :class:`Console` made per command, so the
width comes from the terminal, or from ``COLUMNS`` when stdout is not one (a
pipe gets 160 columns unless told). ``--json`` prints plain JSON instead: one
array or object for a listing, one object per line (JSON Lines) under
``--follow``. Spinners and progress go to stderr, and only on a terminal.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..model.envelope import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_REJECT,
    EV_CHANNEL_OPENED,
    EV_PACKET,
    EV_TEXT,
    Envelope,
)

__all__ = [
    "ID_COLUMN",
    "ago",
    "console",
    "envelope_line",
    "envelope_summary",
    "err_console",
    "plural",
    "print_json",
    "print_json_line",
    "print_table",
    "short_event",
    "table",
    "when",
]

_PIPE_WIDTH = 160

ID_COLUMN: tuple[str, dict[str, Any]] = ("id", {"overflow": "fold", "min_width": 16})
"""A column of 32-hex ids: whole when there is room, folded onto two lines in a narrow terminal."""


def console() -> Console:
    """A console on the current stdout (tests swap it); no colour unless it is a terminal."""
    width = None if sys.stdout.isatty() else _env_width()
    return Console(file=sys.stdout, width=width, soft_wrap=False, highlight=False)


def err_console() -> Console:
    """A console on stderr, for spinners (shown only on a terminal)."""
    return Console(file=sys.stderr, highlight=False)


def _env_width() -> int:
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return _PIPE_WIDTH


def table(title: str | None, columns: Iterable[str | tuple[str, dict[str, Any]]]) -> Table:
    """A plain table; a column is a header (its cells never wrap), or ``(header, rich column
    options)``: give ``{}`` to a column whose long cells may wrap."""
    result = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for column in columns:
        if isinstance(column, tuple):
            result.add_column(column[0], **column[1])
        else:
            result.add_column(column, no_wrap=True)
    return result


def print_table(out: Table) -> None:
    """``out`` on stdout, its title on a line of its own (a table's title would wrap to its width)."""
    con = console()
    if out.title:
        con.print(Text(str(out.title), style="bold"), soft_wrap=True)
        out.title = None
    con.print(out)


def _builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def print_json(value: Any) -> None:
    """``value`` (records, lists, dicts) as indented JSON on stdout."""
    sys.stdout.write(json.dumps(_builtins(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    """``value`` as one JSON line on stdout, flushed (for ``--follow``)."""
    sys.stdout.write(json.dumps(_builtins(value), ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def plural(n: int, noun: str) -> str:
    """``1 record``, ``2 records``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def when(iso: str | None, *, date: bool = True) -> str:
    """A wire time (``2026-01-02T03:04:05.678901Z``) for a table: ``2026-01-02 03:04:05`` (UTC), or
    ``03:04:05.678`` without the date."""
    if not iso:
        return "-"
    day, _, clock = iso.rstrip("Z").partition("T")
    if date:
        return f"{day} {clock[:8]}"
    return clock[:12]


def ago(iso: str | None, now: float | None = None) -> str:
    """How long ago a wire time was: ``42s``, ``5m``, ``3h``, ``2d`` (``-`` if unknown)."""
    if not iso:
        return "-"
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "-"
    seconds = max(0, int((time.time() if now is None else now) - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def short_event(event_type: str) -> str:
    """``ag2.msg.text`` → ``msg.text``: the prefix every standard event shares."""
    return event_type.removeprefix("ag2.")


def envelope_summary(envelope: Envelope, names: dict[str, str]) -> str:
    """What an envelope says, in a few words."""
    data = envelope.event_data
    if envelope.event_type in (EV_TEXT, EV_PACKET):
        return envelope.text
    if envelope.event_type in (EV_CHANNEL_CLOSED, EV_CHANNEL_EXPIRED):
        return str(data.get("reason", ""))
    members = data.get("participants")
    if envelope.event_type in (EV_CHANNEL_INVITE, EV_CHANNEL_OPENED) and isinstance(members, list):
        who = ", ".join(names.get(str(x), str(x)) for x in members)
        return f"{data.get('channel_type', 'channel')} with {who}" if "channel_type" in data else who
    if envelope.event_type == EV_CHANNEL_INVITE_REJECT:
        return str(data.get("reason", ""))
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) if data else ""


def envelope_line(envelope: Envelope, names: dict[str, str]) -> Text:
    """One envelope as one line: time, sender, event, what it says."""
    line = Text()
    line.append(when(envelope.created_at, date=False), style="dim")
    line.append("  ")
    line.append(names.get(envelope.sender_id, envelope.sender_id), style="bold")
    line.append(f"  {short_event(envelope.event_type)}", style="cyan")
    summary = envelope_summary(envelope, names)
    if summary:
        line.append(f"  {summary}")
    return line
