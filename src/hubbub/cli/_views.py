"""``hubbub status``, ``hubbub agents``, ``hubbub channels``: what is on the hub now."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from ..model.channel import ChannelState
from ..model.identity import AgentInfo
from ._base import EXIT_OK, Subparsers, count_arg
from ._output import ID_COLUMN, ago, console, print_json, print_table, table, when
from ._remote import Remote, add_hub_options, remote_command

__all__ = ["COMMANDS"]


# status


def _add_status(commands: Subparsers) -> None:
    parser = commands.add_parser("status", help="the hub's counters: agents, channels by state, uptime")
    add_hub_options(parser)


async def _status(remote: Remote, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    status = await remote.client.hub_status()
    round_trip_ms = (time.perf_counter() - started) * 1000
    if args.json:
        print_json({"url": remote.url, **status})
        return EXIT_OK
    by_state = status.get("channels_by_state") or {}
    states = ", ".join(f"{count} {state}" for state, count in sorted(by_state.items()))
    tasks = ", ".join(f"{n} {state}" for state, n in sorted((status.get("tasks_by_state") or {}).items()))
    rows = [
        ("hub", remote.url),
        ("hub id", str(status.get("hub_id", "-"))),
        ("up since", f"{when(status.get('started_at'))} UTC{_uptime(status.get('started_at'))}"),
        ("agents", f"{status.get('agents', 0)} ({status.get('connected', 0)} connected)"),
        ("channels", f"{status.get('channels', 0)}" + (f" ({states})" if states else "")),
        ("tasks", f"{status.get('tasks', 0)}" + (f" ({tasks})" if tasks else "")),
        ("channel types", ", ".join(status.get("adapters") or [])),
        ("round trip", f"{round_trip_ms:.1f} ms"),
    ]
    out = table(None, ["", ("", {})])
    out.show_header = False
    for key, value in rows:
        out.add_row(key, value)
    print_table(out)
    return EXIT_OK


def _uptime(started_at: object) -> str:
    if not isinstance(started_at, str) or not started_at:
        return ""
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(0, int((datetime.now(UTC) - start).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if days or hours else []
    parts += [f"{minutes}m", f"{seconds}s"]
    return f", up {' '.join(parts)}"


# agents


def _add_agents(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "agents", help="registered agents: capabilities, track record, online or not; --capability to find"
    )
    parser.add_argument("--capability", "-c", help="only agents claiming this capability keyword, best first")
    parser.add_argument("--kind", choices=["agent", "human", "remote_agent"], help="only agents of this kind")
    parser.add_argument("--limit", type=count_arg, default=100, help="at most this many (default 100)")
    add_hub_options(parser)


async def _agents(remote: Remote, args: argparse.Namespace) -> int:
    infos = await remote.client.hub_agents(capability=args.capability, kind=args.kind, limit=args.limit)
    if args.json:
        print_json(infos)
        return EXIT_OK
    title = f"agents claiming {args.capability!r}" if args.capability else "agents"
    out = table(
        f"{title} ({len(infos)})",
        ["name", "kind", "online", ("capabilities", {}), ("track record", {}), "channels"],
    )
    for info in infos:
        out.add_row(
            info.passport.name,
            info.passport.effective_kind,
            "yes" if info.connected else "no",
            ", ".join(info.resume.claimed_capabilities) or "-",
            _track_record(info),
            str(info.open_channels),
        )
    con = console()
    if infos:
        print_table(out)
    else:
        con.print(f"no {title} on {remote.url}" if args.capability else f"no agents on {remote.url}")
    return EXIT_OK


def _track_record(info: AgentInfo) -> str:
    """``summarize 9/10 ok, p50 120 ms`` per observed capability."""
    parts = []
    for capability, stat in sorted(info.resume.observed.items()):
        if not stat.n:
            continue
        text = f"{capability} {stat.completed}/{stat.n} ok"
        if stat.p50_latency_ms is not None:
            text += f", p50 {stat.p50_latency_ms} ms"
        parts.append(text)
    return "; ".join(parts) or "-"


# channels


def _add_channels(commands: Subparsers) -> None:
    parser = commands.add_parser("channels", help="channels on the whole hub, newest first")
    parser.add_argument(
        "--state", choices=[s.value for s in ChannelState], help="only channels in this state"
    )
    parser.add_argument("--type", help="only channels of this type (consulting, conversation ...)")
    parser.add_argument("--agent", help="only channels this agent (name or id) takes part in")
    parser.add_argument("--limit", type=count_arg, default=50, help="at most this many (default 50)")
    parser.add_argument("--before", metavar="ID", help="only channels older than this one (the next page)")
    add_hub_options(parser)


async def _channels(remote: Remote, args: argparse.Namespace) -> int:
    metas, more = await remote.viewing(
        lambda: remote.client.hub_channels_page(
            state=args.state, type=args.type, agent=args.agent, limit=args.limit, before=args.before
        ),
        "hubbub channels",
    )
    if args.json:
        print_json(metas)
        return EXIT_OK
    names = await remote.names(a for m in metas for a in m.participant_ids())
    out = table(
        f"channels ({len(metas)})",
        [
            ID_COLUMN,
            "type",
            "state",
            ("participants", {"min_width": 12}),
            "created",
            ("closed because", {"min_width": 10}),
        ],
    )
    for meta in metas:
        out.add_row(
            meta.channel_id,
            meta.manifest.type,
            meta.state.value,
            ", ".join(names.get(a, a) for a in meta.participant_ids()),
            ago(meta.created_at),
            meta.close_reason or "-",
        )
    con = console()
    if metas:
        print_table(out)
    else:
        con.print(f"no channels{f' in state {args.state}' if args.state else ''} on {remote.url}")
    if more is not None:
        con.print(f"older ones: the same command with --before {more}")
    return EXIT_OK


COMMANDS = [
    remote_command("status", _add_status, _status),
    remote_command("agents", _add_agents, _agents),
    remote_command("channels", _add_channels, _channels),
]
