"""Agent A -> hub -> agent B over WebSocket: hubbub (SQLite WAL on) vs a bare ``websockets`` relay.

Run: ``.venv/bin/python bench/ws_relay.py [--quick] [--json] [--profile] [--no-pin]
[--durability full|normal|off]`` (the hub's durability; "full", the default of ``hubbub serve``,
unless told otherwise).

Workload (printed with the results):

* the server is its own process (``bench/_ws_servers.py``), pinned to CPU 1; A and B are
  two WebSocket connections in this process, pinned to CPU 0 (so client and hub never
  share a core; ``--no-pin`` turns pinning off);
* hubbub: ``Hub(SqliteStore(tmp))`` (WAL mode, durability "full": every envelope is
  committed before it is delivered) behind ``serve_ws``; A and B are agents on two
  ``HubClient(WsLink(url))`` (B with ``handle_turns=False``, counting deliveries through
  ``on_envelope`` and acking as the client does: cumulatively, in batches); one 2-party
  ``conversation`` channel A opened with B; A posts with ``channel.send(text)``, each send
  a task of its own (it resolves once the envelope is durable), so sends pipeline;
* bare relay: a ``websockets`` server (``compression=None``, no hub logic) forwarding every
  text frame from A's connection to B's; A and B are raw ``websockets`` clients
  (``compression=None``); A sends a ~200-byte JSON envelope with ``await ws.send``, B
  ``json.loads`` each one;
* every message carries its send time (``perf_counter_ns`` in A, read in B: one process, one
  clock), so latency is one-way A's send call -> B's callback;
* fixed offered load: A sends RATE msg/s for SECONDS (paced on 1 ms ticks, so in bursts of
  RATE/1000), after 0.5 s of warm-up at the same rate; latency over the measured messages;
* saturation: A keeps W messages in flight (sent, not yet seen by B) for SECONDS after a
  warm-up; throughput = deliveries to B in the window / window length; W sweeps WINDOWS
  (50, 500, 2000, 4000) and each system's saturation throughput is its best W (at W = 50 neither
  hubbub process is busy: each message waits out a commit, so the window, not a CPU, is the
  limit; hubbub's hub core is saturated from W = 2000 on, the bare relay's client core at every
  W). For hubbub, A's ``WsLink`` and the server allow W requests in flight per connection
  (``max_inflight_requests``, ``hubbub serve --max-inflight-requests``; default 64);
* each figure runs REPEATS times, alternating servers (a fresh server process, and a fresh
  database for hubbub, per run); the headline is the median run; server and client CPU
  (all threads, from /proc) are shown as "busy" fractions of one core.

Targets: hubbub >= 50% of the bare relay's throughput at saturation; hubbub's p99 <= 2x the
bare relay's p99 at the same offered load.
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
    top_by_tottime,
    versions,
)

RATE = 2_000
WINDOWS = (50, 500, 2000, 4000)
WARMUP = 0.5
DRAIN_TIMEOUT = 10.0
TARGET_THROUGHPUT = 0.5
TARGET_P99 = 2.0
PAD = "x" * 40


@dataclass
class Pair:
    """A connected sender and receiver."""

    fire: Callable[[int], Awaitable[None]]
    """Send message number ``seq`` (carrying the send time) from A."""
    close: Callable[[], Awaitable[None]]


class Sink:
    """What B saw: per-message latencies and the delivery count."""

    def __init__(self) -> None:
        self.delivered = 0
        self.latencies_ns: list[int] = []
        self.measure_from = -1
        self.event = asyncio.Event()

    def seen(self, seq: int, sent_ns: int) -> None:
        self.delivered += 1
        if seq >= self.measure_from >= 0:
            self.latencies_ns.append(time.perf_counter_ns() - sent_ns)
        self.event.set()


# the two systems


def _inflight(window: int) -> int:
    """Requests in flight A's link and the hub allow: the window (64, the default, if smaller)."""
    return max(64, window)


async def bare_pair(url: str, sink: Sink, window: int) -> Pair:
    import websockets

    a = await websockets.connect(url, compression=None, max_size=2**24)
    b = await websockets.connect(url, compression=None, max_size=2**24)
    await b.send("B")
    await asyncio.sleep(0.05)
    await a.send("A")
    seen = sink.seen

    async def receive() -> None:
        async for message in b:
            body = json.loads(message)
            seen(body["seq"], body["ts"])

    reader = asyncio.create_task(receive())

    async def fire(seq: int) -> None:
        await a.send(
            json.dumps(
                {
                    "v": 1,
                    "id": f"msg-{seq:012d}",
                    "type": "agent.message",
                    "from": "agent-a",
                    "to": "agent-b",
                    "seq": seq,
                    "ts": time.perf_counter_ns(),
                    "payload": {"text": PAD},
                },
                separators=(",", ":"),
            )
        )

    async def close() -> None:
        await a.close()
        await b.close()
        reader.cancel()

    return Pair(fire, close)


async def hubbub_pair(url: str, sink: Sink, window: int) -> Pair:
    from hubbub import EV_TEXT, HubClient, InboxBlock, LimitsBlock, Rule, WsLink

    no_cap = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=10**9)))
    client_a = await HubClient(WsLink(url, max_inflight_requests=_inflight(window))).connect()
    client_b = await HubClient(WsLink(url)).connect()
    a = await client_a.register(name="agent-a", rule=no_cap, handle_turns=False)
    b = await client_b.register(name="agent-b", rule=no_cap, handle_turns=False)
    seen = sink.seen

    def on_envelope(envelope: Any) -> None:
        if envelope.event_type == EV_TEXT:
            seq, sent_ns, _ = envelope.event_data["text"].split(" ", 2)
            seen(int(seq), int(sent_ns))

    b.on_envelope(on_envelope)
    channel = await a.open("conversation", "agent-b")
    pending: set[asyncio.Task[str]] = set()
    errors: list[BaseException] = []

    def done(task: asyncio.Task[str]) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            errors.append(task.exception())  # type: ignore[arg-type]

    async def fire(seq: int) -> None:
        task = asyncio.create_task(channel.send(f"{seq} {time.perf_counter_ns()} {PAD}"))
        pending.add(task)
        task.add_done_callback(done)

    async def close() -> None:
        if pending:
            await asyncio.wait(pending, timeout=DRAIN_TIMEOUT)
        if errors:
            print(f"  hubbub: {len(errors)} sends failed, first: {errors[0]!r}", file=sys.stderr)
        await client_a.aclose()
        await client_b.aclose()

    return Pair(fire, close)


PAIRS = {"hubbub": hubbub_pair, "bare": bare_pair}


# workloads


@dataclass
class Run:
    system: str
    mode: str
    sent: int = 0
    delivered: int = 0
    seconds: float = 0.0
    throughput: float = 0.0
    p50_us: float = float("nan")
    p99_us: float = float("nan")
    server_busy: float = 0.0
    client_busy: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


async def wait_delivered(sink: Sink, count: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while sink.delivered < count and time.perf_counter() < deadline:
        sink.event.clear()
        try:
            await asyncio.wait_for(sink.event.wait(), timeout=max(0.0, deadline - time.perf_counter()))
        except TimeoutError:
            break


async def fixed_rate(pair: Pair, sink: Sink, server: Server, rate: int, seconds: float) -> Run:
    run = Run("", f"fixed {rate:,}/s")
    seq = 0
    for phase, length in (("warmup", WARMUP), ("measure", seconds)):
        if phase == "measure":
            sink.measure_from = seq
            meter = CpuMeter(server)
            first = seq
        start = time.perf_counter()
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= length:
                break
            target = int(rate * elapsed) + 1
            while seq - (first if phase == "measure" else 0) < target:
                await pair.fire(seq)
                seq += 1
            await asyncio.sleep(0.001)
    await wait_delivered(sink, seq, DRAIN_TIMEOUT)
    elapsed = time.perf_counter() - start
    cpu = meter.stop()
    run.sent, run.delivered = seq - first, len(sink.latencies_ns)
    run.seconds = elapsed
    run.throughput = run.delivered / elapsed
    lat = sorted(sink.latencies_ns)
    run.p50_us, run.p99_us = percentile(lat, 50) / 1e3, percentile(lat, 99) / 1e3
    run.server_busy, run.client_busy = cpu["server_busy"], cpu["client_busy"]
    return run


async def saturation(pair: Pair, sink: Sink, server: Server, window: int, seconds: float) -> Run:
    run = Run("", f"saturation W={window}")
    seq = 0
    for phase, length in (("warmup", WARMUP), ("measure", seconds)):
        if phase == "measure":
            sink.measure_from = seq
            meter = CpuMeter(server)
            delivered0 = sink.delivered
        start = time.perf_counter()
        while time.perf_counter() - start < length:
            while seq - sink.delivered < window:
                await pair.fire(seq)
                seq += 1
            sink.event.clear()
            try:
                await asyncio.wait_for(sink.event.wait(), timeout=DRAIN_TIMEOUT)
            except TimeoutError:
                print(f"  {seq - sink.delivered} messages stuck in flight", file=sys.stderr)
                break
    elapsed = time.perf_counter() - start
    delivered = sink.delivered - delivered0
    cpu = meter.stop()
    await wait_delivered(sink, seq, DRAIN_TIMEOUT)
    run.sent, run.delivered, run.seconds = seq, delivered, elapsed
    run.throughput = delivered / elapsed
    lat = sorted(sink.latencies_ns)
    run.p50_us, run.p99_us = percentile(lat, 50) / 1e3, percentile(lat, 99) / 1e3
    run.server_busy, run.client_busy = cpu["server_busy"], cpu["client_busy"]
    return run


async def one_run(system: str, mode: str, args: argparse.Namespace, tmp: str, n: int, window: int = 0) -> Run:
    profile = f"{tmp}/hub-{mode}.prof" if n < 0 else None
    inflight = _inflight(window) if system == "hubbub" else None
    db = f"{tmp}/hub-{mode}-{window}-{n}.db"
    durability = args.durability if system == "hubbub" else None
    server = bench_server(
        system, args.pin, db=db, profile=profile, max_inflight=inflight, durability=durability
    )
    try:
        sink = Sink()
        pair = await PAIRS[system](server.url, sink, window)
        try:
            if mode == "fixed":
                run = await fixed_rate(pair, sink, server, args.rate, args.seconds)
            else:
                run = await saturation(pair, sink, server, window, args.seconds)
        finally:
            await pair.close()
    finally:
        server.stop()
    run.system = system
    if profile:
        run_profiles[mode] = (profile, run.delivered)
    return run


run_profiles: dict[str, tuple[str, int]] = {}


@dataclass
class Figure:
    system: str
    mode: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs) if self.runs else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "mode": self.runs[0].mode if self.runs else self.mode,
            "throughput_median": round(self.median("throughput"), 1),
            "p50_us_median": round(self.median("p50_us"), 1),
            "p99_us_median": round(self.median("p99_us"), 1),
            "runs": [r.as_dict() for r in self.runs],
        }


def table(figures: list[Figure]) -> str:
    rows = [
        f"{'system':7} {'workload':17} {'msgs/s to B':>11} {'p50 µs':>8} {'p99 µs':>8} "
        f"{'hub busy':>8} {'client busy':>11}  runs (msgs/s; p99 µs)"
    ]
    for f in figures:
        runs = ", ".join(f"{r.throughput:,.0f}; {r.p99_us:,.0f}" for r in f.runs)
        rows.append(
            f"{f.system:7} {f.runs[0].mode:17} {f.median('throughput'):>11,.0f} {f.median('p50_us'):>8,.0f} "
            f"{f.median('p99_us'):>8,.0f} {f.median('server_busy'):>8.0%} {f.median('client_busy'):>11.0%}  "
            f"[{runs}]"
        )
    return "\n".join(rows)


def workload_text(args: argparse.Namespace, pinning: str) -> str:
    return (
        "Workload: agent A -> server -> agent B, two WebSocket connections in this process; server in\n"
        f"its own process ({pinning}).\n"
        "hubbub: Hub(SqliteStore(tmp)) (WAL, durability full) + serve_ws; A, B = agents on two\n"
        "HubClient(WsLink); one conversation channel; A: channel.send(text) as a task per message;\n"
        "B: handle_turns=False, on_envelope counts, client acks in batches.\n"
        "bare: websockets server, compression=None, forwards each text frame A -> B; A: await ws.send\n"
        "(~200-byte JSON), B: json.loads. Send time (perf_counter_ns) in the body; one-way latency.\n"
        f"fixed: {args.rate:,} msg/s on 1 ms ticks for {args.seconds:g} s after {WARMUP:g} s warm-up; "
        f"saturation: W in flight for {args.seconds:g} s, W = {', '.join(map(str, args.windows))}.\n"
        f"{args.repeats} run(s) per figure, alternating systems, fresh server (and db) per run; "
        "headline = median run."
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    def log(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    started = time.perf_counter()
    pinning = pin_self(args.pin)
    env = versions()
    log("WebSocket relay A -> hub -> B; " + ", ".join(f"{k} {v}" for k, v in env.items()))
    log(workload_text(args, pinning))
    log()
    modes = [("fixed", 0)] + [("saturation", w) for w in args.windows]
    figures = {(s, m, w): Figure(s, m) for m, w in modes for s in ("bare", "hubbub")}
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-") as tmp:
        for n in range(args.repeats):
            for (system, mode, window), figure in figures.items():
                run = await one_run(system, mode, args, tmp, n, window)
                figure.runs.append(run)
                log(
                    f"  run {n + 1}: {system:6} {run.mode:17} sent {run.sent:,} delivered {run.delivered:,} "
                    f"{run.throughput:,.0f} msgs/s p50 {run.p50_us:,.0f} µs p99 {run.p99_us:,.0f} µs "
                    f"(hub busy {run.server_busy:.0%}, client {run.client_busy:.0%})"
                )
        if args.profile:  # an extra, uncounted run under cProfile (it slows the hub down a lot)
            await one_run("hubbub", "saturation", args, tmp, -1, max(args.windows))
        profiles = {
            mode: top_by_tottime(path, 20, max(1, count)) for mode, (path, count) in run_profiles.items()
        }

    def peak(system: str) -> Figure:
        sweep = [f for (s, m, _), f in figures.items() if s == system and m == "saturation"]
        return max(sweep, key=lambda f: f.median("throughput"))

    bare_sat, hub_sat = peak("bare"), peak("hubbub")
    bare_fix, hub_fix = figures["bare", "fixed", 0], figures["hubbub", "fixed", 0]
    ratio = hub_sat.median("throughput") / bare_sat.median("throughput")
    first = min(args.windows)
    ratio_first = figures["hubbub", "saturation", first].median("throughput") / figures[
        "bare", "saturation", first
    ].median("throughput")
    p99_ratio = hub_fix.median("p99_us") / bare_fix.median("p99_us")
    checks = {
        "throughput_vs_bare_at_saturation": {
            "value": round(ratio, 3),
            "target": f">= {TARGET_THROUGHPUT:g}",
            "pass": ratio >= TARGET_THROUGHPUT,
            "hubbub_best": hub_sat.runs[0].mode,
            "bare_best": bare_sat.runs[0].mode,
            f"at_w{first}": round(ratio_first, 3),
        },
        "p99_vs_bare_at_fixed_rate": {
            "value": round(p99_ratio, 3),
            "target": f"<= {TARGET_P99:g}",
            "pass": p99_ratio <= TARGET_P99,
        },
    }
    log()
    log(table(list(figures.values())))
    log()
    verdict = {True: "PASS", False: "FAIL"}
    log(
        f"[{verdict[ratio >= TARGET_THROUGHPUT]}] saturation throughput hubbub / bare, each at its best W: "
        f"{hub_sat.median('throughput'):,.0f} ({hub_sat.runs[0].mode}) / "
        f"{bare_sat.median('throughput'):,.0f} ({bare_sat.runs[0].mode}) = {ratio:.2f}   "
        f"(target >= {TARGET_THROUGHPUT:g}; at W={first} both: "
        f"{ratio_first:.2f})"
    )
    log(
        f"[{verdict[p99_ratio <= TARGET_P99]}] p99 at {args.rate:,} msg/s hubbub / bare: "
        f"{hub_fix.median('p99_us'):,.0f} / {bare_fix.median('p99_us'):,.0f} µs = {p99_ratio:.2f}   "
        f"(target <= {TARGET_P99:g})"
    )
    total = time.perf_counter() - started
    log(f"total {total:.1f} s")
    for mode, text in profiles.items():
        log()
        log(f"cProfile of the hubbub server process, extra '{mode}' run, not counted (event-loop thread;")
        log("serving time incl. setup), top 20 by own time, µs per message delivered in the window:")
        log(text)
    return {
        "bench": "ws_relay",
        "quick": args.quick,
        "env": env | {"pinning": pinning},
        "rate": args.rate,
        "windows": list(args.windows),
        "seconds": args.seconds,
        "repeats": args.repeats,
        "statistic": "median",
        "figures": [f.as_dict() for f in figures.values()],
        "checks": checks,
        "total_seconds": round(total, 1),
    }


def cli() -> int:
    parser = argparse.ArgumentParser(
        description="A -> hub -> B over WebSocket: hubbub vs a bare websockets relay."
    )
    parser.add_argument("--quick", action="store_true", help="one 2 s run per figure")
    parser.add_argument("--json", action="store_true", help="print one JSON line on stdout (report: stderr)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="add an uncounted saturation run with the hubbub server under cProfile",
    )
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin client and server to CPUs"
    )
    parser.add_argument(
        "--durability",
        choices=["full", "normal", "off"],
        default="full",
        help="the hubbub server's durability (default full)",
    )
    parser.add_argument("--rate", type=int, default=RATE, help=f"offered load, msg/s (default {RATE})")
    parser.add_argument(
        "--windows",
        type=lambda text: tuple(int(w) for w in text.split(",")),
        default=WINDOWS,
        help=f"messages in flight at saturation, comma-separated (default {','.join(map(str, WINDOWS))})",
    )
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 5)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (default 3)")
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    result = asyncio.run(main(args))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
