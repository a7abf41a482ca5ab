"""Delegated tasks end to end over WebSocket, with a consulting round trip as the same-run reference.

Run: ``.venv/bin/python bench/delegate.py [--quick] [--json] [--no-pin] [--seconds S] [--repeats N]``.

Workload (printed with the results):

* the hub: ``Hub(SqliteStore(tmp))`` (durability "full") behind ``serve_ws`` on 127.0.0.1 port 0,
  in its own process pinned to CPU 1 (``bench/_ws_servers.py hubbub``); a fresh hub per
  configuration;
* N workers (1, 10, 100), each on its own ``HubClient(WsLink)``: a ``Worker`` from the SDK
  (``@worker.on_task("echo")``, returns the input upper-cased) and, on the same connection, a
  ``FunctionAgent`` doing the same for the reference;
* requesters: C concurrent loops (C = 1 for the latency row, 16 for the others) spread over 4
  ``HubClient(WsLink)`` connections, one agent per loop;
* one **delegation** = ``agent.delegate("echo", "ping")`` (the hub picks a worker, opens a
  consulting channel, the worker acks, the hub posts the question, the worker's handler runs
  and replies, the task completes and is written to SQLite) then ``client.wait_task(...)``
  until COMPLETED; timed from the delegate call to the completed record;
* one **consultation** (the reference, same hub, same connections) = ``open("consulting",
  respondent)`` (round robin over the N respondents), ``send("ping")``, ``wait_closed()``: the
  same channel traffic without the task machinery (picking, task records, task_wait);
* per configuration, REPEATS runs of SECONDS each, alternating delegation and consultation,
  after a warm-up; headline = median run. Both workloads run on the same hub in the same run,
  so compare the ratio: absolute rates swing with the machine's load.
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

from _ws_common import CpuMeter, bench_server, percentile, pin_self, versions

CONFIGS = ((1, 1), (1, 16), (10, 16), (100, 16))
"""(workers, concurrent requesters)."""
REQUESTER_CONNECTIONS = 4
WARMUP = 20
TIMEOUT = 30.0


@dataclass
class Run:
    workload: str
    ops: int = 0
    failed: int = 0
    seconds: float = 0.0
    rate: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    server_busy: float = 0.0
    client_busy: float = 0.0


@dataclass
class Figure:
    workers: int
    concurrency: int
    workload: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


class Setup:
    """The connected workers and requesters of one configuration."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.requesters: list[tuple[Any, Any]] = []  # (agent client, its hub client)
        self.respondents: list[str] = []

    @classmethod
    async def connect(cls, url: str, workers: int, concurrency: int) -> Setup:
        from hubbub import FunctionAgent, HubClient, TaskInput, Worker, WsLink

        setup = cls()
        for i in range(workers):
            client = await HubClient(WsLink(url, request_timeout=TIMEOUT)).connect()
            setup.closers.append(client.aclose)
            worker = Worker(f"worker-{i}")

            @worker.on_task("echo")
            async def echo(task: TaskInput) -> str:
                return task.text.upper()

            await worker.start(client)
            setup.closers.append(worker.stop)
            await client.register(FunctionAgent(lambda turn: turn.prompt.upper(), name=f"respondent-{i}"))
            setup.respondents.append(f"respondent-{i}")
        clients = []
        for _ in range(min(REQUESTER_CONNECTIONS, concurrency)):
            client = await HubClient(WsLink(url, request_timeout=TIMEOUT)).connect()
            setup.closers.append(client.aclose)
            clients.append(client)
        for i in range(concurrency):
            client = clients[i % len(clients)]
            agent = await client.register(name=f"requester-{i}", handle_turns=False)
            setup.requesters.append((agent, client))
        return setup

    async def delegation(self, loop: int, n: int) -> bool:
        agent, client = self.requesters[loop]
        task = await agent.delegate("echo", "ping", ttl=TIMEOUT)
        done = await client.wait_task(task.task_id, TIMEOUT)
        return bool(done.state == "COMPLETED" and done.result == "PING")

    async def consultation(self, loop: int, n: int) -> bool:
        agent, _ = self.requesters[loop]
        respondent = self.respondents[(loop + n) % len(self.respondents)]
        channel = await agent.open("consulting", respondent)
        await channel.send("ping")
        final = await channel.wait_closed(timeout=TIMEOUT)
        return bool(final.close_reason == "consulting_complete")

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()


async def measure(
    setup: Setup, workload: str, seconds: float, server: Any, one: Callable[[int, int], Awaitable[bool]]
) -> Run:
    run = Run(workload)
    times: list[float] = []
    loops = len(setup.requesters)

    async def warm(loop: int) -> None:
        for n in range(max(1, WARMUP // loops)):
            await one(loop, n)

    await asyncio.gather(*(warm(i) for i in range(loops)))
    meter = CpuMeter(server)
    start = time.perf_counter()

    async def drive(loop: int) -> None:
        n = 0
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            ok = await one(loop, n)
            times.append(time.perf_counter() - t0)
            run.failed += not ok
            n += 1

    await asyncio.gather(*(drive(i) for i in range(loops)))
    run.seconds = time.perf_counter() - start
    cpu = meter.stop()
    run.server_busy, run.client_busy = cpu["server_busy"], cpu["client_busy"]
    times.sort()
    run.ops, run.rate = len(times), len(times) / run.seconds
    run.p50_ms, run.p99_ms = percentile(times, 50) * 1e3, percentile(times, 99) * 1e3
    return run


async def main(args: argparse.Namespace) -> dict[str, Any]:
    def log(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    started = time.perf_counter()
    pinning = pin_self(args.pin)
    env = versions()
    log(
        "Delegations over WebSocket, consulting round trips as the reference; "
        + ", ".join(f"{k} {v}" for k, v in env.items())
    )
    log("Workload:\n" + __doc__.split("Workload (printed with the results):")[1].strip("\n"))
    log(f"({pinning}; {args.seconds:g} s per run, {args.repeats} run(s) per workload)")
    log()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-") as tmp:
        for index, (workers, concurrency) in enumerate(CONFIGS):
            server = bench_server("hubbub", args.pin, db=f"{tmp}/delegate-{index}.db")
            pair = [Figure(workers, concurrency, "delegate"), Figure(workers, concurrency, "consult")]
            try:
                setup = await Setup.connect(server.url, workers, concurrency)
                try:
                    for n in range(args.repeats):
                        for figure in pair:
                            one = setup.delegation if figure.workload == "delegate" else setup.consultation
                            run = await measure(setup, figure.workload, args.seconds, server, one)
                            figure.runs.append(run)
                            log(
                                f"  {workers:>3} workers, {concurrency:>2} concurrent, run {n + 1}: "
                                f"{figure.workload:8} {run.ops:,} in {run.seconds:.1f} s = {run.rate:,.1f}/s "
                                f"(p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms; failed {run.failed}; "
                                f"hub busy {run.server_busy:.0%}, client {run.client_busy:.0%})"
                            )
                finally:
                    await setup.close()
            finally:
                server.stop()
            figures += pair

    log()
    log(
        f"{'workers':>7} {'conc':>4} {'workload':8} {'ops/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'hub busy':>8} "
        f"{'client':>6}  runs"
    )
    for f in figures:
        runs = ", ".join(f"{r.rate:,.1f}" for r in f.runs)
        log(
            f"{f.workers:>7} {f.concurrency:>4} {f.workload:8} {f.median('rate'):>8,.1f} "
            f"{f.median('p50_ms'):>7.2f} {f.median('p99_ms'):>7.2f} {f.median('server_busy'):>8.0%} "
            f"{f.median('client_busy'):>6.0%}  [{runs}]"
        )
    log()
    ratios = []
    for delegate, consult in zip(figures[::2], figures[1::2], strict=True):
        ratio = delegate.median("rate") / consult.median("rate") if consult.median("rate") else float("nan")
        ratios.append(
            {
                "workers": delegate.workers,
                "concurrency": delegate.concurrency,
                "delegate_vs_consult": round(ratio, 3),
            }
        )
        log(
            f"{delegate.workers:>3} workers, {delegate.concurrency:>2} concurrent: delegations/s over "
            f"consultations/s = {ratio:.2f}"
        )
    failed = sum(r.failed for f in figures for r in f.runs)
    total = time.perf_counter() - started
    log(f"failed operations: {failed}; total {total:.1f} s")
    return {
        "bench": "delegate",
        "quick": args.quick,
        "env": env | {"pinning": pinning},
        "seconds": args.seconds,
        "repeats": args.repeats,
        "statistic": "median",
        "figures": [
            {
                "workers": f.workers,
                "concurrency": f.concurrency,
                "workload": f.workload,
                "ops_per_s_median": round(f.median("rate"), 1),
                "p50_ms_median": round(f.median("p50_ms"), 3),
                "p99_ms_median": round(f.median("p99_ms"), 3),
                "runs": [r.__dict__ for r in f.runs],
            }
            for f in figures
        ],
        "ratios": ratios,
        "failed": failed,
        "total_seconds": round(total, 1),
    }


def cli() -> int:
    parser = argparse.ArgumentParser(description="Delegations/s over WebSocket vs consulting round trips.")
    parser.add_argument("--quick", action="store_true", help="one 1.5 s run per workload")
    parser.add_argument("--json", action="store_true", help="print one JSON line on stdout (report: stderr)")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin client and server to CPUs"
    )
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 5)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per workload (default 3)")
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
