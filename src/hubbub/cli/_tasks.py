"""``hubbub tasks``, ``task ID``, ``delegate CAPABILITY INPUT``, ``broadcast TEXT``: delegated work.

``delegate`` and ``broadcast`` act as the ``--as`` agent (see ``_remote``);
``task ID --cancel`` too (only a task's requester may cancel it). Waiting
(``--wait``) asks the hub in one-second slices so the spinner can show the
task's state as it moves (PENDING → ASSIGNED → IN_PROGRESS → ...). A task
that ends COMPLETED exits 0 and prints its result; FAILED, CANCELLED or
TIMEOUT, or a wait that runs out first, exits 1 with one line saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..errors import NotFoundError
from ..model.delegation import DelegatedTask
from ._base import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Subparsers, count_arg, one_line
from ._output import ID_COLUMN, ago, console, plural, print_json, print_table, table, when
from ._remote import CliError, Remote, add_hub_options, remote_command, spinner

__all__ = ["COMMANDS"]

_STATES = ["PENDING", "ASSIGNED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]
_SLICE = 1.0
_HUB_WAIT = 10.0
"""How long one wait request may hold on the hub (the client asks in slices of at most this)."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _add_wait(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"wait for {what}, with a progress spinner")
    parser.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="with --wait: give up waiting after this (default 120; the task goes on)",
    )


# tasks


def _add_tasks(commands: Subparsers) -> None:
    parser = commands.add_parser("tasks", help="delegated tasks, newest first")
    parser.add_argument("--state", type=str.upper, choices=_STATES, help="only tasks in this state")
    parser.add_argument("--requester", help="only tasks this agent (name or id) delegated")
    parser.add_argument("--worker", help="only tasks this agent (name or id) worked on")
    parser.add_argument("--limit", type=count_arg, default=50, help="at most this many (default 50)")
    add_hub_options(parser)


async def _tasks(remote: Remote, args: argparse.Namespace) -> int:
    client = remote.client
    requester = await client.agent_id_of(args.requester) if args.requester else None
    worker = await client.agent_id_of(args.worker) if args.worker else None
    tasks = await client.list_tasks(
        state=args.state, requester_id=requester, worker_id=worker, limit=args.limit
    )
    if args.json:
        print_json(tasks)
        return EXIT_OK
    if not tasks:
        console().print(f"no tasks{f' in state {args.state}' if args.state else ''} on {remote.url}")
        return EXIT_OK
    names = await remote.names(x for t in tasks for x in (t.requester_id, t.worker_id))
    out = table(
        f"tasks ({len(tasks)})",
        [
            ID_COLUMN,
            "capability",
            "state",
            "requester",
            "worker",
            "tries",
            "created",
            ("result or error", {"min_width": 12}),
        ],
    )
    for task in tasks:
        out.add_row(
            task.task_id,
            task.capability,
            task.state,
            names.get(task.requester_id, task.requester_id),
            names.get(task.worker_id, task.worker_id) if task.worker_id else "-",
            str(task.attempts),
            ago(task.created_at),
            _outcome(task, 60),
        )
    print_table(out)
    return EXIT_OK


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _outcome(task: DelegatedTask, width: int) -> str:
    if task.state == "COMPLETED":
        text = one_line(_text(task.result))
    elif task.error:
        text = one_line(task.error)
    else:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"


# task ID


def _add_task(commands: Subparsers) -> None:
    parser = commands.add_parser("task", help="one delegated task: state, worker, input, result")
    parser.add_argument("task_id", metavar="ID", help="the task id (see hubbub tasks)")
    _add_wait(parser, "the task to finish")
    parser.add_argument("--cancel", action="store_true", help="cancel it (as its requester, --as)")
    add_hub_options(parser)


async def _task(remote: Remote, args: argparse.Namespace) -> int:
    if args.cancel and args.wait:
        raise CliError("--cancel and --wait exclude each other", EXIT_USAGE)
    try:
        if args.cancel:
            task = await (await remote.me()).cancel_task(args.task_id)
        else:
            task = await remote.client.get_task(args.task_id)
    except NotFoundError as exc:
        if exc.reason != "unknown_task":
            raise
        raise CliError(
            f"no task {args.task_id!r} on the hub at {remote.url}; `hubbub tasks` lists them"
        ) from None
    if args.wait and not task.finished:
        task = await _wait(remote, task, args.wait_timeout)
    if args.json:
        print_json(task)
    else:
        await _show(remote, task)
    return _status(task, args.wait, "hubbub task")


async def _show(remote: Remote, task: DelegatedTask) -> None:
    names = await remote.names([task.requester_id, task.worker_id])
    rows = [
        ("task", task.task_id),
        ("capability", task.capability),
        ("state", task.state),
        ("requester", names.get(task.requester_id, task.requester_id)),
        ("worker", names.get(task.worker_id, task.worker_id) if task.worker_id else "-"),
        ("attempts", f"{task.attempts} (retries allowed: {task.max_retries})"),
        ("priority", str(task.priority)),
        ("created", f"{when(task.created_at)} UTC"),
        ("updated", f"{when(task.updated_at)} UTC"),
        ("deadline", f"{when(task.deadline_at)} UTC (ttl {task.ttl:g}s)"),
        ("channel", task.channel_id or "-"),
        ("input", _text(task.input)),
    ]
    if task.state == "COMPLETED":
        rows.append(("result", _text(task.result)))
    if task.error:
        rows.append(("error", task.error))
    out = table(None, ["", ("", {})])
    out.show_header = False
    for key, value in rows:
        out.add_row(key, value)
    print_table(out)


def _status(task: DelegatedTask, waited: bool, prog: str) -> int:
    """0 for a task looked at, or waited for and COMPLETED; else one line on stderr and 1."""
    if not waited or task.state == "COMPLETED":
        return EXIT_OK
    print(_unfinished(task, prog), file=sys.stderr)
    return EXIT_ERROR


async def _wait(remote: Remote, task: DelegatedTask, timeout: float) -> DelegatedTask:
    """Wait for ``task`` to finish, the spinner saying where it is; a clear line on Ctrl-C."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    names = await remote.names([task.worker_id])
    try:
        with spinner(_progress(task, names)) as say:
            while not task.finished and (left := deadline - loop.time()) > 0:
                task = await remote.client.wait_task(task.task_id, timeout=min(_SLICE, left))
                if task.worker_id and task.worker_id not in names:
                    names.update(await remote.names([task.worker_id]))
                say(_progress(task, names))
    except asyncio.CancelledError:
        print(f"task {task.task_id} goes on; see it with: hubbub task {task.task_id} --wait", file=sys.stderr)
        raise
    return task


def _progress(task: DelegatedTask, names: dict[str, str]) -> str:
    worker = f" by {names.get(task.worker_id, task.worker_id)}" if task.worker_id else ""
    attempt = f", attempt {task.attempts}" if task.attempts > 1 else ""
    return f"{task.capability} (task {task.task_id}): {task.state}{worker}{attempt}"


# delegate


def _add_delegate(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "delegate", help="have an agent with CAPABILITY do INPUT; --wait prints the result"
    )
    parser.add_argument(
        "capability", metavar="CAPABILITY", help="what the worker must claim (e.g. summarize)"
    )
    parser.add_argument("input", metavar="INPUT", help="the work, as text ('-' reads stdin)")
    parser.add_argument(
        "--input-json", action="store_true", help="INPUT is JSON (an object, list, number ...), not text"
    )
    parser.add_argument("--to", metavar="AGENT", help="this worker (name or id) rather than the hub's pick")
    parser.add_argument("--ttl", type=_seconds, default=60.0, help="seconds the task may take (default 60)")
    parser.add_argument("--priority", type=int, default=0, help="higher goes first (default 0)")
    parser.add_argument(
        "--retries", type=int, default=2, help="other workers to try if one goes away (default 2)"
    )
    parser.add_argument("--idempotency-key", help="a retried delegate with this key returns the first task")
    _add_wait(parser, "the result")
    add_hub_options(parser)


async def _delegate(remote: Remote, args: argparse.Namespace) -> int:
    text = await asyncio.to_thread(sys.stdin.read) if args.input == "-" else args.input
    value: Any = text
    if args.input_json:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"--input-json: INPUT is not valid JSON: {exc}", EXIT_USAGE) from None
    me = await remote.me()
    task = await me.delegate(
        args.capability,
        value,
        target=args.to,
        ttl=args.ttl,
        priority=args.priority,
        idempotency_key=args.idempotency_key,
        max_retries=args.retries,
    )
    if args.wait:
        task = await _wait(remote, task, args.wait_timeout)
    if args.json:
        print_json(task)
    elif not args.wait:
        console().print(
            f"task {task.task_id} ({task.capability}) is {task.state}; "
            f"see it with: hubbub task {task.task_id} --wait",
            soft_wrap=True,
        )
    elif task.state == "COMPLETED":
        sys.stdout.write(_text(task.result) + "\n")
    return _status(task, args.wait, "hubbub delegate")


def _unfinished(task: DelegatedTask, prog: str) -> str:
    if task.finished:
        return one_line(f"{prog}: task {task.task_id} {task.state}: {task.error or 'no reason given'}")
    return (
        f"{prog}: task {task.task_id} is still {task.state} after the wait; "
        f"see it with: hubbub task {task.task_id} --wait"
    )


# broadcast


def _add_broadcast(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "broadcast", help="send TEXT to every connected agent (or those with --capability)"
    )
    parser.add_argument("text", metavar="TEXT", help="what to say ('-' reads stdin)")
    parser.add_argument("--capability", "-c", help="only agents claiming this capability")
    add_hub_options(parser)


async def _broadcast(remote: Remote, args: argparse.Namespace) -> int:
    text = await asyncio.to_thread(sys.stdin.read) if args.text == "-" else args.text
    if not text.strip():
        raise CliError("hubbub broadcast needs a non-empty TEXT", EXIT_USAGE)
    recipients = await (await remote.me()).broadcast(text, capability=args.capability)
    if args.json:
        print_json({"recipients": recipients})
    else:
        who = f"connected agents claiming {args.capability!r}" if args.capability else "connected agents"
        console().print(
            f"sent to {plural(recipients, 'agent')} ({who})" if recipients else f"no {who}: sent to nobody"
        )
    return EXIT_OK


COMMANDS = [
    remote_command("tasks", _add_tasks, _tasks),
    remote_command("task", _add_task, _task, wait=lambda args: _HUB_WAIT),
    remote_command("delegate", _add_delegate, _delegate, wait=lambda args: _HUB_WAIT),
    remote_command("broadcast", _add_broadcast, _broadcast),
]
