"""Consulting round trips per second over WebSocket: hubbub's client + hub vs ag2 1.2.1's.

Run: ``.venv/bin/python bench/consult_rtt.py [--quick] [--json] [--profile] [--no-pin]``.

Workload (printed with the results):

* one round trip = open a ``consulting`` channel (the hub posts the invite, the respondent
  acks it, the hub opens the channel), send one question, the respondent's agent answers,
  the channel closes itself on the reply, and the asker is told it closed; round trips run
  one after another, for SECONDS each system after a warm-up of 20 round trips;
* hubbub: ``hubbub serve --port 0 --db tmp`` (SQLite, durability "full") in a subprocess
  pinned to CPU 1; in this process (CPU 0) one ``HubClient(WsLink(url))`` hosts both the
  asker (``register(name=..., handle_turns=False)``) and the respondent, a ``FunctionAgent``
  that returns a fixed answer; the asker does ``open("consulting", "oracle", first=question)``
  (the hub posts the question once the channel is active, before answering) and
  ``channel.wait_closed()``; "hubbub" without ``first=`` does ``open("consulting", "oracle")``,
  ``channel.send(question)``, ``channel.wait_closed()`` (one client round trip more);
* ag2 1.2.1: ``ag2.network.Hub`` on its ``MemoryKnowledgeStore`` (in memory: no disk at all;
  sweepers off) behind ``ag2.network.serve_ws`` in a subprocess pinned to CPU 1; two ag2
  ``HubClient(WsLink(url))`` in this process (ag2's hub deadlocks when both ends of a channel
  share one connection): the asker and the respondent, both ``ag2.Agent`` with a scripted model
  (``ag2.testing.TestConfig``) answering a fixed text; the asker does
  ``open(type="consulting", target="oracle")``, ``channel.send(question)`` and waits for the
  ``channel.closed`` event;
* the figures run REPEATS times alternating systems, a fresh server per run; headline = median.

Target: hubbub >= 5x ag2 round trips per second (hubbub as its API asks a question: with ``first=``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ws_common import (
    CpuMeter,
    Server,
    bench_server,
    percentile,
    pin_self,
    start_server,
    top_by_tottime,
    versions,
)

TARGET = 5.0
WARMUP_ROUNDS = 20
QUESTION = "what is the meaning of life?"
ANSWER = "42"
TIMEOUT = 30.0


@dataclass
class Setup:
    round_trip: Callable[[], Awaitable[bool]]
    """One consultation; True if the asker saw the answer and the close."""
    close: Callable[[], Awaitable[None]]


async def hubbub_setup(url: str, *, first: bool = False) -> Setup:
    from hubbub import EV_TEXT, FunctionAgent, HubClient, WsLink

    client = await HubClient(WsLink(url)).connect()
    asker = await client.register(name="asker", handle_turns=False)
    await client.register(FunctionAgent(lambda turn: ANSWER, name="oracle"))
    answers: dict[str, str] = {}

    def on_envelope(envelope: Any) -> None:
        if envelope.event_type == EV_TEXT and envelope.sender_id != asker.agent_id:
            answers[envelope.channel_id] = envelope.event_data.get("text", "")

    asker.on_envelope(on_envelope)

    async def round_trip() -> bool:
        if first:
            channel = await asker.open("consulting", "oracle", first=QUESTION)
        else:
            channel = await asker.open("consulting", "oracle")
            await channel.send(QUESTION)
        final = await channel.wait_closed(timeout=TIMEOUT)
        return final.close_reason == "consulting_complete" and answers.pop(channel.id, None) == ANSWER

    return Setup(round_trip, client.aclose)


async def ag2_setup(url: str) -> Setup:
    import ag2.network as ag2net
    from ag2 import Agent
    from ag2.testing import TestConfig

    asker_hc = ag2net.HubClient(ag2net.WsLink(url), rpc_timeout=TIMEOUT)
    oracle_hc = ag2net.HubClient(ag2net.WsLink(url), rpc_timeout=TIMEOUT)
    asker = await asker_hc.register(Agent("asker", config=TestConfig("unused")), attach_plugin=False)
    await oracle_hc.register(Agent("oracle", config=TestConfig(ANSWER)), attach_plugin=False)
    answers: dict[str, str] = {}

    async def on_envelope(envelope: Any) -> None:
        if envelope.event_type == ag2net.EV_TEXT and envelope.sender_id != asker.agent_id:
            answers[envelope.channel_id] = envelope.event_data.get("text", "")

    asker.on_envelope(on_envelope)

    async def round_trip() -> bool:
        channel = await asker.open(type="consulting", target="oracle")
        asker.ensure_channel_inbox(channel.channel_id)
        await channel.send(QUESTION)
        await asker.wait_for_channel_event(
            channel_id=channel.channel_id,
            predicate=lambda e: e.event_type == ag2net.EV_CHANNEL_CLOSED,
            timeout=TIMEOUT,
        )
        return answers.pop(channel.channel_id, None) == ANSWER

    async def close() -> None:
        await asker_hc.close()
        await oracle_hc.close()

    return Setup(round_trip, close)


async def hubbub_first_setup(url: str) -> Setup:
    return await hubbub_setup(url, first=True)


HUBBUB_FIRST = "hubbub first="
SETUPS = {"hubbub": hubbub_setup, HUBBUB_FIRST: hubbub_first_setup, "ag2": ag2_setup}


def server_for(system: str, args: argparse.Namespace, tmp: str, n: int, profile: str | None) -> Server:
    slug = "".join(c if c.isalnum() else "-" for c in system)
    db = f"{tmp}/consult-{slug}-{n}.db"  # a fresh database per system and run
    if system == "ag2":
        return bench_server("ag2", args.pin, profile=profile)
    if profile:  # the same Hub(SqliteStore) + serve_ws that `hubbub serve` runs, under cProfile
        return bench_server("hubbub", args.pin, db=db, profile=profile)
    hubbub = Path(sys.executable).parent / "hubbub"
    return start_server([str(hubbub), "serve", "--port", "0", "--db", db], "hubbub", args.pin)


@dataclass
class Run:
    system: str
    rounds: int = 0
    failed: int = 0
    seconds: float = 0.0
    rate: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    server_busy: float = 0.0
    client_busy: float = 0.0


async def one_run(system: str, args: argparse.Namespace, tmp: str, n: int) -> Run:
    profile = f"{tmp}/consult-{system.replace(' ', '-')}.prof" if n < 0 else None
    server = server_for(system, args, tmp, n, profile)
    run = Run(system)
    try:
        setup = await SETUPS[system](server.url)
        try:
            for _ in range(WARMUP_ROUNDS):
                await setup.round_trip()
            meter = CpuMeter(server)
            times: list[float] = []
            start = time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                t0 = time.perf_counter()
                ok = await setup.round_trip()
                times.append(time.perf_counter() - t0)
                run.failed += not ok
            run.seconds = time.perf_counter() - start
            cpu = meter.stop()
        finally:
            await setup.close()
    finally:
        server.stop()
    times.sort()
    run.rounds, run.rate = len(times), len(times) / run.seconds
    run.p50_ms, run.p99_ms = percentile(times, 50) * 1e3, percentile(times, 99) * 1e3
    run.server_busy, run.client_busy = cpu["server_busy"], cpu["client_busy"]
    if profile:
        profiles[system] = (profile, run.rounds + WARMUP_ROUNDS)
    return run


profiles: dict[str, tuple[str, int]] = {}


@dataclass
class Figure:
    system: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    def log(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    started = time.perf_counter()
    pinning = pin_self(args.pin)
    env = versions()
    log("Consulting round trips over WebSocket; " + ", ".join(f"{k} {v}" for k, v in env.items()))
    log(
        "Workload: sequential consultations (open consulting -> invite -> ack -> opened -> question ->\n"
        "answer -> auto-close -> asker sees closed), after 20 warm-up ones; server in its own process\n"
        f"({pinning}).\n"
        "hubbub: `hubbub serve --port 0 --db tmp` (SQLite, durability full); one HubClient(WsLink) hosts\n"
        "the asker (handle_turns=False) and a FunctionAgent respondent.\n"
        "ag2 1.2.1: ag2.network.Hub(MemoryKnowledgeStore, in memory) + ag2.network.serve_ws; two ag2\n"
        "HubClient(WsLink) (ag2's hub deadlocks on one), scripted ag2.Agents (TestConfig).\n"
        f"{args.seconds:g} s per run, {args.repeats} run(s) per system alternating, fresh server per run; "
        "headline = median run."
    )
    log()
    figures = {s: Figure(s) for s in SETUPS}
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-") as tmp:
        for n in range(args.repeats):
            for system, figure in figures.items():
                run = await one_run(system, args, tmp, n)
                figure.runs.append(run)
                log(
                    f"  run {n + 1}: {system:13} {run.rounds:,} round trips in {run.seconds:.1f} s = "
                    f"{run.rate:,.1f}/s (p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms; failed "
                    f"{run.failed}; hub busy {run.server_busy:.0%}, client {run.client_busy:.0%})"
                )
        if args.profile:  # extra, uncounted runs under cProfile (it slows the servers down)
            for system in ("hubbub", "ag2"):
                await one_run(system, args, tmp, -1)
        tops = {s: top_by_tottime(path, 20, max(1, count)) for s, (path, count) in profiles.items()}

    hb, plain, ag = figures[HUBBUB_FIRST], figures["hubbub"], figures["ag2"]
    ratio = hb.median("rate") / ag.median("rate") if ag.median("rate") else float("inf")
    ratio_plain = plain.median("rate") / ag.median("rate") if ag.median("rate") else float("inf")
    failed = sum(r.failed for f in figures.values() for r in f.runs)
    log()
    log(
        f"{'system':13} {'round trips/s':>13} {'ms/round trip':>13} {'p99 ms':>7} {'hub busy':>8} "
        f"{'client busy':>11}  runs"
    )
    for f in figures.values():
        runs = ", ".join(f"{r.rate:,.1f}" for r in f.runs)
        log(
            f"{f.system:13} {f.median('rate'):>13,.1f} {f.median('p50_ms'):>13.2f} "
            f"{f.median('p99_ms'):>7.2f} {f.median('server_busy'):>8.0%} "
            f"{f.median('client_busy'):>11.0%}  [{runs}]"
        )
    log()
    verdict = {True: "PASS", False: "FAIL"}
    passed = ratio >= TARGET and failed == 0
    log(
        f"[{verdict[passed]}] hubbub (open with first=) / ag2 round trips/s: {hb.median('rate'):,.1f} / "
        f"{ag.median('rate'):,.1f} = {ratio:.1f}x   (target >= {TARGET:g}x; failed round trips: {failed}); "
        f"open, then send: {ratio_plain:.1f}x"
    )
    total = time.perf_counter() - started
    log(f"total {total:.1f} s")
    for system, text in tops.items():
        log()
        log(
            f"cProfile of the {system} server process, an extra uncounted run (event-loop thread; "
            "whole serving time),"
        )
        log("top 20 by own time, µs per round trip:")
        log(text)
    return {
        "bench": "consult_rtt",
        "quick": args.quick,
        "env": env | {"pinning": pinning},
        "seconds": args.seconds,
        "repeats": args.repeats,
        "statistic": "median",
        "figures": [
            {
                "system": f.system,
                "round_trips_per_s_median": round(f.median("rate"), 1),
                "p50_ms_median": round(f.median("p50_ms"), 3),
                "p99_ms_median": round(f.median("p99_ms"), 3),
                "runs": [r.__dict__ for r in f.runs],
            }
            for f in figures.values()
        ],
        "checks": {
            "hubbub_vs_ag2": {
                "value": round(ratio, 2),
                "target": f">= {TARGET:g}",
                "pass": passed,
                "open_then_send": round(ratio_plain, 2),
            },
        },
        "total_seconds": round(total, 1),
    }


def cli() -> int:
    parser = argparse.ArgumentParser(
        description="Consulting round trips/s over WebSocket: hubbub vs ag2 1.2.1."
    )
    parser.add_argument("--quick", action="store_true", help="one 1.5 s run per system")
    parser.add_argument("--json", action="store_true", help="print one JSON line on stdout (report: stderr)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="add an uncounted run per system with the server under cProfile",
    )
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin client and server to CPUs"
    )
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 5)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per system (default 3)")
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 1.5 if args.quick else 5.0
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    result = asyncio.run(main(args))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
