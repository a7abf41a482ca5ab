"""Servers for the WebSocket benchmarks, each run as its own process.

Run: ``python bench/_ws_servers.py {hubbub,bare,ag2,idle} [--db PATH] [--durability D]
[--profile FILE] [--ping-interval S]``.
The first stdout line is the ``ws://`` URL; the server runs until SIGTERM/SIGINT.
With ``--profile FILE`` the whole serving time is under cProfile, dumped to FILE on exit.

* ``hubbub``: ``Hub(SqliteStore(db, durability=D))`` (default "full", as ``hubbub serve``)
  behind ``serve_ws`` on 127.0.0.1, port 0, on uvloop when it is installed and with the
  collector's thresholds raised (``tune_gc``), as ``hubbub serve``.
* ``bare``: a ``websockets`` server with no hub logic (``compression=None``, on hubbub's
  loop and collector thresholds): a connection's first text frame names it ("A" or "B");
  every later text frame from A is forwarded as is to B.
* ``idle``: a ``websockets`` server (``compression=None``, on hubbub's loop, pings every
  ``--ping-interval`` seconds) whose handler only waits for the connection to close: the
  reference for holding many idle connections (``bench/idle_agents.py``).
* ``ag2``: ag2 1.2.1's ``Hub`` on its ``MemoryKnowledgeStore`` (timer sweepers off) behind
  ag2's own ``serve_ws``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal
import sys
from typing import Any

from hubbub.server import event_loop, tune_gc


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_hubbub(db: str, max_inflight: int, durability: str) -> None:
    from hubbub import Hub, SqliteStore, serve_ws

    hub = Hub(SqliteStore(db, durability=durability))
    try:
        async with serve_ws(hub, "127.0.0.1", 0, max_inflight_requests=max_inflight) as server:
            print(server.url, flush=True)
            await _until_stopped()
    finally:
        await hub.aclose()


async def serve_bare() -> None:
    import websockets

    peers: dict[str, Any] = {}
    b_ready = asyncio.Event()

    async def handler(ws: Any) -> None:
        role = await ws.recv()
        peers[role] = ws
        if role == "B":
            b_ready.set()
            await ws.wait_closed()
            return
        await b_ready.wait()
        b = peers["B"]
        async for message in ws:
            await b.send(message)

    async with websockets.serve(handler, "127.0.0.1", 0, compression=None, max_size=2**24) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"ws://127.0.0.1:{port}", flush=True)
        await _until_stopped()


async def serve_idle(ping_interval: float) -> None:
    import websockets

    async def handler(ws: Any) -> None:
        await ws.wait_closed()

    async with websockets.serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        ping_interval=ping_interval,
        ping_timeout=ping_interval,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"ws://127.0.0.1:{port}", flush=True)
        await _until_stopped()


async def serve_ag2() -> None:
    from ag2.knowledge import MemoryKnowledgeStore
    from ag2.network import Hub, serve_ws

    hub = await Hub.open(MemoryKnowledgeStore(), ttl_sweep_interval=0, expectation_sweep_interval=0)
    try:
        async with serve_ws(hub, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"ws://127.0.0.1:{port}", flush=True)
            await _until_stopped()
    finally:
        await hub.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["hubbub", "bare", "ag2", "idle"])
    parser.add_argument("--db", default="bench-hubbub.db", help="SQLite file for the hubbub server")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the server, dump stats to FILE on exit")
    parser.add_argument("--ping-interval", type=float, default=20.0, help="heartbeat of the idle server, s")
    parser.add_argument(
        "--max-inflight", type=int, default=64, help="requests per connection the hubbub server runs at once"
    )
    parser.add_argument(
        "--durability",
        choices=["full", "normal", "off"],
        default="full",
        help="the hubbub server's durability",
    )
    args = parser.parse_args()
    coro = {
        "hubbub": lambda: serve_hubbub(args.db, args.max_inflight, args.durability),
        "bare": serve_bare,
        "ag2": serve_ag2,
        "idle": lambda: serve_idle(args.ping_interval),
    }[args.kind]()
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    # hubbub serves on the loop `hubbub serve` picks (uvloop when installed); the bare and idle
    # references run on the same loop, so their ratios measure the hub, not the loop. ag2's hub
    # runs on asyncio's loop, as its own serve_ws does.
    # They also tune the collector as `hubbub serve` does (ag2's serve_ws does not).
    factory = event_loop("auto")[0] if args.kind != "ag2" else None
    if args.kind != "ag2":
        tune_gc()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(coro)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
