"""``hubbub demo``: one process, one hub, four channel types, a readable transcript.

Every agent here is a deterministic function agent, so the demo needs no LLM
and prints the same conversation every time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from .adapters.base import AgentReply, Finish, Handoff
from .adapters.transitions import AgentTarget, FromSpeaker, Transition, TransitionGraph
from .agents.base import Turn
from .agents.function import FunctionAgent
from .client.agent_client import AgentClient
from .client.channel import Channel
from .client.hub_client import HubClient
from .errors import AccessDeniedError
from .hub.core import Hub
from .model.envelope import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_OPENED,
    EV_EXPECTATION_VIOLATED,
    EV_PACKET,
    EV_TEXT,
    Envelope,
)
from .model.rule import AccessBlock, Rule
from .storage.sqlite import SqliteStore
from .transport.local import LocalLink

__all__ = ["run_demo"]

_COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta"]


def _oracle(turn: Turn) -> str:
    numbers = [int(tok) for tok in turn.prompt.replace("?", " ").split() if tok.isdigit()]
    return f"The sum of {' + '.join(map(str, numbers))} is {sum(numbers)}."


def _ping(turn: Turn) -> str:
    return f"ping #{sum(1 for line in turn.transcript if line.is_self) + 1}"


def _pong(turn: Turn) -> str:
    return f"pong (you said {turn.prompt!r})"


def _panelist(stance: str) -> FunctionAgent:
    def speak(turn: Turn) -> str:
        return f"{stance} (after {turn.sender_name}, turn {len(turn.transcript)})"

    return FunctionAgent(speak, name=stance.split(":")[0].lower())


def _triage(turn: Turn) -> AgentReply:
    target = "billing" if "charge" in turn.prompt else "support"
    return AgentReply(
        text=f"Routing to {target}: customer reports {turn.prompt!r}",
        handoff=Handoff(target=turn.agent_named(target), tool="route_ticket", reason=target),
        context_set={"category": target},
    )


def _billing(turn: Turn) -> str:
    return f"Refund of the duplicate charge issued (category={turn.context.get('category')})."


def _reviewer(turn: Turn) -> AgentReply:
    return AgentReply(text=f"Checked: {turn.prompt} Approved.", finish=Finish(reason="resolved"))


class _Printer:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.colours: dict[str, str] = {}

    def colour(self, name: str) -> str:
        return self.colours.setdefault(name, _COLOURS[len(self.colours) % len(_COLOURS)])

    def envelope(self, env: Envelope, names: dict[str, str]) -> None:
        who = names.get(env.sender_id, env.sender_id)
        if env.event_type in (EV_TEXT, EV_PACKET):
            line = Text.assemble((f"  {who:>10} ", f"bold {self.colour(who)}"), ("│ ", "dim"), env.text)
            routing = env.event_data.get("routing", {}) if env.event_type == EV_PACKET else {}
            if routing.get("kind") == "handoff":
                line.append(f"  → hands off to {names.get(routing.get('target', ''), '?')}", "italic yellow")
            elif routing.get("kind") == "finish":
                line.append(f"  ■ finishes ({routing.get('reason')})", "italic yellow")
        else:
            label = {
                EV_CHANNEL_INVITE: f"invites {', '.join(names.get(a, a) for a in env.audience or [])}",
                EV_CHANNEL_INVITE_ACK: "accepts the invite",
                EV_CHANNEL_OPENED: "channel is active",
                EV_CHANNEL_CLOSED: f"channel closed: {env.event_data.get('reason')}",
                EV_CHANNEL_EXPIRED: f"channel expired: {env.event_data.get('reason')}",
            }.get(env.event_type, env.event_type)
            line = Text.assemble((f"  {who:>10} ", "dim"), ("┊ ", "dim"), (label, "dim italic"))
            if env.event_type == EV_EXPECTATION_VIOLATED:
                data = env.event_data
                late = ", ".join(names.get(v, v) for v in data.get("violators", []))
                line = Text.assemble(
                    (f"  {who:>10} ", "dim"),
                    ("┊ ", "dim"),
                    (
                        f"⚠ expectation {data.get('name')} ({data.get('seconds')}s) violated by {late}",
                        "bold red",
                    ),
                )
        self.console.print(line)

    async def channel(self, title: str, channel: Channel, names: dict[str, str]) -> list[Envelope]:
        wal = await channel.read()
        self.console.print(Panel.fit(Text(title, style="bold")))
        for env in wal:
            self.envelope(env, names)
        self.console.print()
        return wal


async def _governance_scene(
    client: HubClient, printer: _Printer, alice: AgentClient, names: dict[str, str]
) -> str:
    """A send the rules deny, and an expectation that fires on a silent agent."""
    intern = await client.register(
        name="intern", rule=Rule(access=AccessBlock(outbound_to=["oracle"])), handle_turns=False
    )
    sleepy = await client.register(FunctionAgent(lambda turn: None, name="sleepy"))
    names.update({intern.agent_id: "intern", sleepy.agent_id: "sleepy"})
    printer.console.print(
        Panel.fit(Text("5. governance · a rule says no, an expectation fires", style="bold"))
    )
    outcome = []
    try:
        await intern.open("consulting", "billing")
    except AccessDeniedError as exc:
        printer.console.print(Text.assemble(("      intern ", "bold"), ("✗ ", "bold red"), (str(exc), "red")))
        outcome.append("denied")
    watch = await alice.open(
        "conversation",
        "sleepy",
        knobs={
            "expectations": [
                {"name": "reply_within", "on_violation": "notify_channel", "params": {"seconds": 0.2}}
            ]
        },
    )
    await watch.send("Are you awake?")
    await alice.wait_for_channel_event(
        watch.id, lambda e: e.event_type == EV_EXPECTATION_VIOLATED, timeout=10
    )
    await watch.close("demo over")
    for env in await watch.read():
        printer.envelope(env, names)
    printer.console.print()
    outcome.append("violated")
    return "+".join(outcome)


async def run_demo(console: Console | None = None, *, db: str | None = None) -> int:
    """Run the scenarios on a hub backed by SQLite (a temporary file unless ``db`` names a new one).

    Returns 0 when every channel ended as designed.
    """
    if db is not None and await asyncio.to_thread(os.path.exists, db):
        print(
            f"hubbub demo: {db} already exists; name a new file (the demo registers its own agents)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="hubbub-demo-") as tmp:
        path = db or os.path.join(tmp, "demo.db")
        return await _run(console or Console(), path)


async def _run(console: Console, path: str) -> int:
    printer = _Printer(console)
    started = time.perf_counter()
    store = await SqliteStore.open(path, durability="full")
    async with Hub(store) as hub, HubClient(LocalLink(hub)) as client:
        names = {}
        agents = {}
        for agent in [
            FunctionAgent(_oracle, name="oracle", capabilities=["arithmetic"]),
            FunctionAgent(_ping, name="ping"),
            FunctionAgent(_pong, name="pong"),
            _panelist("Optimist: it will ship on time"),
            _panelist("Skeptic: the tests are thin"),
            FunctionAgent(_triage, name="triage", capabilities=["triage"]),
            FunctionAgent(_billing, name="billing", capabilities=["refunds"]),
            FunctionAgent(_reviewer, name="reviewer", capabilities=["review"]),
        ]:
            agents[agent.name] = await client.register(agent)
        agents["alice"] = await client.register(name="alice")
        agents["host"] = await client.register(_panelist("Host: let us hear everyone"))
        names = {a.agent_id: a.name for a in agents.values()}
        found = [p.name for p in await client.discover("arithmetic")]
        console.print(
            f"[bold]hubbub demo[/] · {len(agents)} agents registered · discover('arithmetic') → {found}\n"
        )

        outcomes: list[tuple[str, str]] = []
        alice = agents["alice"]

        consult = await alice.open("consulting", "oracle", intent="ask a quick question")
        await consult.send("What is 17 plus 25 plus 8?")
        outcomes.append(("consulting", (await consult.wait_closed(10)).close_reason))
        await printer.channel("1. consulting · alice asks oracle one question", consult, names)

        chat = await agents["ping"].open("conversation", "pong", knobs={"max_turns": 4})
        await chat.send("hello pong")
        outcomes.append(("conversation", (await chat.wait_closed(10)).close_reason))
        await printer.channel("2. conversation · ping and pong talk freely (max_turns=4)", chat, names)

        panel = await agents["host"].open("discussion", ["optimist", "skeptic"], knobs={"max_turns": 6})
        await panel.send("Will release 1.0 ship this week?")
        outcomes.append(("discussion", (await panel.wait_closed(10)).close_reason))
        await printer.channel("3. discussion · three agents, round robin (max_turns=6)", panel, names)

        ids = {n: a.agent_id for n, a in agents.items()}
        graph = TransitionGraph(
            initial_speaker=ids["alice"],
            transitions=[
                Transition(when=FromSpeaker(ids["alice"]), then=AgentTarget(ids["triage"])),
                Transition(when=FromSpeaker(ids["billing"]), then=AgentTarget(ids["reviewer"])),
            ],
            max_turns=10,
        )
        flow = await alice.open(
            "workflow",
            ["triage", "billing", "reviewer"],
            knobs={"graph": graph.to_dict()},
            intent="support ticket",
        )
        await flow.send("I was charged twice for my subscription.")
        outcomes.append(("workflow", (await flow.wait_closed(10)).close_reason))
        await printer.channel(
            "4. workflow · triage → billing → reviewer, with a handoff and a finish", flow, names
        )

        governed = await _governance_scene(client, printer, agents["alice"], names)
        outcomes.append(("governance", governed))

        status = hub.status()
        envelopes = sum([len(await c.read()) for c in (consult, chat, panel, flow)])
    elapsed = time.perf_counter() - started
    expected = {
        "governance": "denied+violated",
        "consulting": "consulting_complete",
        "conversation": "max_turns",
        "discussion": "max_turns",
        "workflow": "resolved",
    }
    ok = all(expected[kind] == reason for kind, reason in outcomes)
    summary = ", ".join(f"{kind}: {reason}" for kind, reason in outcomes)
    style = "bold green" if ok else "bold red"
    console.print(
        Text(
            f"{'OK' if ok else 'FAILED'} · {status['channels']} channels, {envelopes} envelopes, "
            f"{status['agents']} agents in {elapsed * 1000:.0f} ms · {summary}",
            style=style,
        )
    )
    return 0 if ok else 1
