"""10,000 idle agents connected to one ``hubbub serve``: hub memory, registration rate, heartbeats.

Run: ``.venv/bin/python bench/idle_agents.py [--quick] [--json] [--agents N] [--procs P]
[--per-connection K] [--ping-interval S] [--intervals I] [--no-reference]``.

Workload (printed with the results):

* the hub is ``hubbub serve --port 0 --db tmp`` (SQLite, durability "full") in its own process,
  with ``--ping-interval S --ping-timeout S`` (default 5 s, a quarter of the default), so
  heartbeats run often;
* P client processes (default 4) each connect N/P agents: K agents per ``HubClient(WsLink)``
  connection (default 1, i.e. 10,000 WebSocket connections), each agent registered with
  ``client.register(name=..., handle_turns=False)``, at most 32 connections being set up at once
  per process; the links keep ``WsLink``'s own heartbeat (20 s), so the hub's pings are the
  ones that run every S seconds;
* once every agent is registered the agents stay idle for I heartbeat intervals (default 4);
  then the hub is asked (op ``hub_agents``, from one more connection) how many agents it sees
  connected, and every process reports the drops its links saw (``on_backoff`` calls: a link
  that lost its connection tries to reopen it);
* hub memory is VmRSS from ``/proc/PID/status`` (peak: VmHWM), read before any agent connects
  (the idle hub) and after the hold; "per agent" is the growth divided by N;
* the reference, in the same run: a bare ``websockets`` server (``compression=None``, same ping
  interval, no hub logic, each handler waiting for its connection to close) holding the same
  number of connections from the same P processes; its RSS growth per connection.

Target: hub RSS <= 1 GiB with 10,000 agents registered and connected through the heartbeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ws_common import SERVERS, Server, start_server, versions

AGENTS = 10_000
PROCS = 4
PING = 5.0
INTERVALS = 4
SETUP_CONCURRENCY = 32
TARGET_RSS = 1 << 30
MIB = 1 << 20


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


# the client processes


async def hubbub_worker(url: str, first: int, count: int, per_connection: int) -> None:
    from hubbub import HubClient, WsLink

    drops = 0

    def on_backoff(attempt: int, delay: float) -> None:
        nonlocal drops
        if attempt == 1:
            drops += 1

    clients: list[HubClient] = []
    links: list[WsLink] = []
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def connection(start: int, stop: int) -> None:
        async with gate:
            link = WsLink(url, request_timeout=300, on_backoff=on_backoff)
            links.append(link)
            client = await HubClient(link).connect()
            clients.append(client)
            for n in range(start, stop):
                await client.register(name=f"idle-{n:05d}", handle_turns=False)

    started = time.perf_counter()
    bounds = range(first, first + count, per_connection)
    await asyncio.gather(*(connection(n, min(n + per_connection, first + count)) for n in bounds))
    report(
        {
            "event": "ready",
            "agents": count,
            "connections": len(clients),
            "seconds": time.perf_counter() - started,
        }
    )
    await next_command()
    report({"event": "checked", "drops": drops, "reconnects": sum(link.reconnects for link in links)})
    await next_command()
    await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


async def bare_worker(url: str, connections: int) -> None:
    import websockets

    sockets: list[Any] = []
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def connection() -> None:
        async with gate:
            sockets.append(
                await websockets.connect(url, compression=None, ping_interval=20.0, ping_timeout=20.0)
            )

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    report(
        {"event": "ready", "agents": 0, "connections": len(sockets), "seconds": time.perf_counter() - started}
    )
    await next_command()
    report(
        {"event": "checked", "drops": sum(1 for s in sockets if s.close_code is not None), "reconnects": 0}
    )
    await next_command()
    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)


def report(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


async def next_command() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


# the coordinator


class Workers:
    """P client processes driven over their stdin/stdout, one JSON line per event."""

    def __init__(self, argvs: list[list[str]]) -> None:
        self.procs = [
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for argv in argvs
        ]

    async def events(self) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()

        def read(proc: subprocess.Popen[str]) -> dict[str, Any]:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"client process {proc.pid} exited (status {proc.wait()})")
            event: dict[str, Any] = json.loads(line)
            return event

        return list(await asyncio.gather(*(loop.run_in_executor(None, read, p) for p in self.procs)))

    def command(self, word: str) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(word + "\n")
            proc.stdin.flush()

    def finish(self) -> None:
        self.command("stop")
        for proc in self.procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def worker_argv(*args: object) -> list[str]:
    return [sys.executable, __file__, "--worker", *(str(a) for a in args)]


async def wait_settled(server: Server, seconds: float = 1.0) -> int:
    await asyncio.sleep(seconds)
    return memory(server.proc.pid)["VmRSS"]


async def hold(server: Server, seconds: float) -> dict[str, float]:
    """Sleep ``seconds`` while the heartbeats run; the hub's CPU over that window."""
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    return {"server_busy": (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0)}


async def run_hubbub(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "hubbub.cli", "serve", "--port", "0", "--db", f"{tmp}/idle.db"]
    argv += ["--ping-interval", str(args.ping_interval), "--ping-timeout", str(args.ping_interval)]
    server = start_server(argv, "idle-hubbub", pin=False)
    try:
        from hubbub import HubClient, WsLink

        idle_rss = await wait_settled(server)
        share = math.ceil(args.agents / args.procs)
        starts = range(0, args.agents, share)
        argvs = [
            worker_argv("hubbub", server.url, s, min(share, args.agents - s), args.per_connection)
            for s in starts
        ]
        started = time.perf_counter()
        workers = Workers(argvs)
        try:
            ready = await workers.events()
            setup = time.perf_counter() - started
            held = await hold(server, args.ping_interval * args.intervals)
            rss = memory(server.proc.pid)
            async with HubClient(WsLink(server.url, request_timeout=120)) as observer:
                infos = await observer.request("hub_agents", {"limit": 10_000})
            connected = sum(1 for info in infos if info.get("connected"))
            workers.command("check")
            checked = await workers.events()
        finally:
            workers.finish()
    finally:
        server.stop()
    agents = sum(e["agents"] for e in ready)
    return {
        "agents": agents,
        "connections": sum(e["connections"] for e in ready),
        "setup_seconds": setup,
        "agents_per_second": agents / setup,
        "connected_at_hub": connected,
        "drops": sum(e["drops"] for e in checked),
        "reconnects": sum(e["reconnects"] for e in checked),
        "idle_rss": idle_rss,
        "rss": rss["VmRSS"],
        "peak_rss": rss["VmHWM"],
        "per_agent": (rss["VmRSS"] - idle_rss) / max(1, agents),
        "hold_busy": held["server_busy"],
    }


async def run_bare(args: argparse.Namespace, connections: int) -> dict[str, Any]:
    argv = [sys.executable, str(SERVERS), "idle", "--ping-interval", str(args.ping_interval)]
    server = start_server(argv, "idle-bare", pin=False)
    try:
        idle_rss = await wait_settled(server)
        share = math.ceil(connections / args.procs)
        counts = [min(share, connections - s) for s in range(0, connections, share)]
        started = time.perf_counter()
        workers = Workers([worker_argv("bare", server.url, c) for c in counts])
        try:
            ready = await workers.events()
            setup = time.perf_counter() - started
            held = await hold(server, args.ping_interval * args.intervals)
            rss = memory(server.proc.pid)
            workers.command("check")
            checked = await workers.events()
        finally:
            workers.finish()
    finally:
        server.stop()
    opened = sum(e["connections"] for e in ready)
    return {
        "connections": opened,
        "setup_seconds": setup,
        "connections_per_second": opened / setup,
        "drops": sum(e["drops"] for e in checked),
        "idle_rss": idle_rss,
        "rss": rss["VmRSS"],
        "peak_rss": rss["VmHWM"],
        "per_connection": (rss["VmRSS"] - idle_rss) / max(1, opened),
        "hold_busy": held["server_busy"],
    }


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> dict[str, Any]:
    def log(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    env = versions()
    log("Idle agents on one hubbub serve; " + ", ".join(f"{k} {v}" for k, v in env.items()))
    connections = math.ceil(args.agents / args.per_connection)
    log(
        f"Workload: {args.agents:,} agents from {args.procs} client processes, {args.per_connection} per "
        f"connection ({connections:,} connections), registered with register(name=...); hub: hubbub serve on "
        f"SQLite (durability full), --ping-interval/--ping-timeout {args.ping_interval:g} s; hold "
        f"{args.intervals} heartbeat intervals; reference: bare websockets server, same connections. "
        f"Load average at start: {load()}."
    )
    with tempfile.TemporaryDirectory(prefix="hubbub-idle-") as tmp:
        hub = await run_hubbub(args, tmp)
        log(f"load average after the hubbub run: {load()}")
        bare = None if not args.reference else await run_bare(args, connections)
    ok_connected = hub["connected_at_hub"] == args.agents and hub["drops"] == 0
    ok_rss = hub["rss"] <= TARGET_RSS and hub["peak_rss"] <= TARGET_RSS
    log()
    log(
        f"hubbub: {hub['agents']:,} agents on {hub['connections']:,} connections registered in "
        f"{hub['setup_seconds']:.1f} s ({hub['agents_per_second']:,.0f} agents/s incl. connecting); "
        f"after {args.intervals} x {args.ping_interval:g} s of heartbeats the hub sees "
        f"{hub['connected_at_hub']:,} connected; drops seen by clients {hub['drops']}, reconnects "
        f"{hub['reconnects']}; hub CPU while idle {hub['hold_busy']:.0%} of a core"
    )
    log(
        f"hubbub RSS: idle hub {hub['idle_rss'] / MIB:,.1f} MiB -> {hub['rss'] / MIB:,.1f} MiB "
        f"with the agents (peak {hub['peak_rss'] / MIB:,.1f} MiB); "
        f"{hub['per_agent'] / 1024:,.1f} KiB per agent"
    )
    if bare is not None:
        log(
            f"bare websockets: {bare['connections']:,} connections opened in {bare['setup_seconds']:.1f} s "
            f"({bare['connections_per_second']:,.0f}/s), drops {bare['drops']}; RSS idle "
            f"{bare['idle_rss'] / MIB:,.1f} MiB -> {bare['rss'] / MIB:,.1f} MiB; "
            f"{bare['per_connection'] / 1024:,.1f} KiB per connection; CPU while idle {bare['hold_busy']:.0%}"
        )
        per_conn_hub = (hub["rss"] - hub["idle_rss"]) / max(1, hub["connections"])
        log(
            f"hubbub / bare, RSS growth per connection: {per_conn_hub / 1024:,.1f} / "
            f"{bare['per_connection'] / 1024:,.1f} KiB = "
            f"{per_conn_hub / max(1.0, bare['per_connection']):.2f}"
        )
    verdict = {True: "PASS", False: "FAIL"}
    log(
        f"[{verdict[ok_rss]}] hub RSS with {hub['agents']:,} agents: {hub['rss'] / MIB:,.0f} MiB "
        f"(peak {hub['peak_rss'] / MIB:,.0f}) (target <= {TARGET_RSS // MIB:,} MiB)"
    )
    log(
        f"[{verdict[ok_connected]}] all {args.agents:,} agents registered and still connected after the "
        "heartbeats"
    )
    log(f"load average at the end: {load()}")
    return {
        "bench": "idle_agents",
        "env": env,
        "agents": args.agents,
        "procs": args.procs,
        "per_connection": args.per_connection,
        "ping_interval": args.ping_interval,
        "intervals": args.intervals,
        "hubbub": hub,
        "bare": bare,
        "checks": {
            "rss_within_1_gib": {"value": hub["rss"], "pass": ok_rss},
            "all_connected": {"value": hub["connected_at_hub"], "pass": ok_connected},
        },
    }


def worker_main(argv: list[str]) -> int:
    kind, url = argv[0], argv[1]
    if kind == "hubbub":
        asyncio.run(hubbub_worker(url, int(argv[2]), int(argv[3]), int(argv[4])))
    else:
        asyncio.run(bare_worker(url, int(argv[2])))
    return 0


def cli() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2:])
    parser = argparse.ArgumentParser(
        description="10,000 idle agents on one hubbub serve: memory and heartbeats."
    )
    parser.add_argument("--quick", action="store_true", help="1,000 agents, 2 intervals")
    parser.add_argument("--json", action="store_true", help="print one JSON line on stdout (report: stderr)")
    parser.add_argument("--agents", type=int, default=None, help=f"agents in all (default {AGENTS:,})")
    parser.add_argument("--procs", type=int, default=PROCS, help=f"client processes (default {PROCS})")
    parser.add_argument("--per-connection", type=int, default=1, help="agents per connection (default 1)")
    parser.add_argument(
        "--ping-interval", type=float, default=PING, help=f"heartbeat interval, s (default {PING:g})"
    )
    parser.add_argument(
        "--intervals", type=int, default=None, help=f"intervals to hold (default {INTERVALS})"
    )
    parser.add_argument("--no-reference", dest="reference", action="store_false", help="skip the bare server")
    args = parser.parse_args()
    if args.agents is None:
        args.agents = 1_000 if args.quick else AGENTS
    if args.intervals is None:
        args.intervals = 2 if args.quick else INTERVALS
    result = asyncio.run(main(args))
    if args.json:
        print(json.dumps(result))
    return 0 if all(c["pass"] for c in result["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(cli())
