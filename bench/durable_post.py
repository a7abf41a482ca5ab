"""Durable posts in process: hubbub on SqliteStore (durability "full") vs ag2 1.2.1's hub on its stores.

Run: ``.venv/bin/python bench/durable_post.py [--quick] [--json] [--repeats N] [--profile]``.

Workload (printed with the results):

* one 2-party ``conversation`` channel alice opened with bob, both connected
  through the hub's in-process client (``LocalLink``); bob runs no agent logic,
  it only acks every delivery; no inbox caps;
* the timed window: P concurrent posting tasks (P = 100 and 1000) of alice, each
  awaiting ``hub.post_envelope(<text envelope>)`` one after another, WINDOW
  posts in all; a post returns only once its envelope is durable, and the clock
  stops once every post returned and bob's ack cursor reached the newest id;
* "at length L": the channel holds L envelopes when the window starts. hubbub's
  database is built once per L (posts through the hub at durability "off", 1000
  posters: a bulk fill, untimed), closed, and copied afresh for every run, so each
  run is also a restart: ``SqliteStore.open`` + ``Hub.start()`` on L envelopes,
  timed ("restart"), then alice and bob attach;
* read_wal: ``hub.read_wal(channel, since=<id>, limit=100)`` awaited one at a
  time, 2000 reads after 500 untimed ones, ``since`` uniformly random over the
  L stored envelopes ("stored"), and, after 2000 more durable posts, over the
  newest 1000 ("fresh", what live readers ask for);
* the reference, in the same run: ag2 1.2.1's ``Hub`` (sweepers off) with the same
  agents, channel and window on ``MemoryKnowledgeStore`` (no disk), on
  ``SqliteKnowledgeStore`` (one row per WAL holding the whole log, rewritten in a
  transaction per append: durable, O(n) per append) and on ``DiskKnowledgeStore``
  (a file append per post, never fsynced: not durable). ag2 is run at L = 1k
  only: its window of 2000 posts starts at an empty channel, so the channel's
  mean length in the window is 1k (its memory store copies the whole WAL string
  per append, O(n) per post, so 1M would take hours).

Targets (issue "Durable by default"): hubbub durable >= 10x ag2 memory at 1k (same
P); hubbub at 1M within 1.5x of 1k; read_wal p50 at 1M within 1.5x of 1k; restart
of 1M envelopes < 5 s. Each figure's headline is the best run (noise on a shared
2-core machine only slows runs down); medians are printed too, and the load
average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Series, add_loop_flag, environment, load_average, loop_choice, percentile, verdict

TEXT = "the quick brown fox jumps over the lazy dog; benchmark text x64!"
POSTERS = (100, 1000)
LENGTHS = (1_000, 1_000_000)
WINDOW = 20_000
AG2_WINDOW = {"memory": 2_000, "sqlite": 2_000, "disk": 2_000}
"""ag2's windows start at an empty channel, so its mean length in the window is 1k: each of its stores
is O(n) per append (see the docstring), and this is the length its figures are quoted at."""
FILL_POSTERS = 1000
READS, READ_WARMUP = 2000, 500
RECENT = 2000
"""Durable posts before the "fresh" reads."""
TARGET_VS_AG2 = 10.0
TARGET_LENGTH = 1.5
TARGET_READ = 1.5
TARGET_RESTART_S = 5.0
RUN_TIMEOUT = 300.0


class BudgetExceeded(Exception):
    """A run went past its time budget."""


@dataclass
class Live:
    """One hub with alice and bob connected and their channel."""

    post: Callable[[], Awaitable[str]]
    acked: Callable[[], str | None]
    read_wal: Callable[[str], Awaitable[list[Any]]]
    close: Callable[[], Awaitable[None]]
    channel_id: str


async def window(live: Live, posters: int, total: int) -> float:
    """Posts/s: ``posters`` tasks post ``total`` envelopes; ends when bob acked the newest."""
    share, extra = divmod(total, posters)
    newest = ""

    async def poster(count: int) -> None:
        nonlocal newest
        post = live.post
        for _ in range(count):
            envelope_id = await post()
            if envelope_id > newest:
                newest = envelope_id

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(poster(share + (i < extra)) for i in range(posters)))
    deadline = time.perf_counter() + RUN_TIMEOUT
    while live.acked() != newest:
        if time.perf_counter() > deadline:
            raise BudgetExceeded(f"bob did not ack {newest} within {RUN_TIMEOUT:.0f} s")
        await asyncio.sleep(0.0005)
    return total / (time.perf_counter() - start)


# hubbub


def _no_cap() -> Any:
    from hubbub import InboxBlock, LimitsBlock, Rule

    return Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=10**9)))


async def _connect(hub: Any, channel_id: str | None) -> Live:
    """Register (new database) or attach (restarted one) alice and bob; open the channel if new."""
    from hubbub import Envelope, HubClient, LocalLink

    client = HubClient(LocalLink(hub))
    await client.connect()
    if channel_id is None:
        alice = await client.register(name="alice", rule=_no_cap(), handle_turns=False)
        bob = await client.register(name="bob", rule=_no_cap(), handle_turns=False)
        channel_id = (await alice.open("conversation", "bob")).id
    else:
        alice = await client.attach(None, "alice", since_envelope_id=None, handle_turns=False)
        bob = await client.attach(None, "bob", handle_turns=False)
    alice_id, bob_id, cid = alice.agent_id, bob.agent_id, channel_id

    def post() -> Awaitable[str]:
        return hub.post_envelope(Envelope(channel_id=cid, sender_id=alice_id, event_data={"text": TEXT}))

    async def read_wal(since: str) -> list[Any]:
        return list(await hub.read_wal(cid, since=since, limit=100))

    async def close() -> None:
        await client.aclose()
        await hub.aclose()

    return Live(post, lambda: hub.delivery.cursor(bob_id, cid), read_wal, close, cid)


async def build(path: Path, length: int) -> tuple[str, float]:
    """A database whose channel holds ``length`` envelopes, all acked; its channel id and fill seconds."""
    from hubbub import Hub, SqliteStore

    started = time.perf_counter()
    hub = await Hub(await SqliteStore.open(path, durability="off")).start()
    live = await _connect(hub, None)
    todo = length - await hub.store.wal_length(live.channel_id)
    while todo > 0:
        step = min(todo, 100_000)
        await window(live, min(FILL_POSTERS, step), step)
        todo -= step
    await live.close()
    took = time.perf_counter() - started
    await asyncio.to_thread(_fsync, path)  # untimed: no writeback of the build during the runs
    return live.channel_id, took


def _copy(pristine: Path, work: Path) -> None:
    """A fresh copy, flushed to disk: otherwise the kernel writes the copy back during the window
    and every fsync there waits behind hundreds of MB of it."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    _fsync(work)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


async def hubbub_run(
    pristine: Path, work: Path, channel_id: str, posters: int, total: int, profiler: cProfile.Profile | None
) -> tuple[float, float]:
    """One run on a fresh copy of ``pristine``: (restart seconds, posts/s)."""
    from hubbub import Hub, SqliteStore

    await asyncio.to_thread(_copy, pristine, work)
    gc.collect()
    started = time.perf_counter()
    hub = await Hub(await SqliteStore.open(work, durability="full")).start()
    restart = time.perf_counter() - started
    live = await _connect(hub, channel_id)
    try:
        if profiler is not None:
            profiler.enable()
        rate = await window(live, posters, total)
        if profiler is not None:
            profiler.disable()
    finally:
        await live.close()
    return restart, rate


async def read_latencies(
    pristine: Path, work: Path, channel_id: str, reads: int
) -> dict[str, tuple[float, float]]:
    """read_wal(since, limit=100) p50 and p99 in µs: ``since`` random among the L stored envelopes
    ("stored"), and among the newest 1000 after RECENT durable posts ("fresh")."""
    from hubbub import Hub, SqliteStore

    with sqlite3.connect(pristine) as conn:
        query = "SELECT envelope_id FROM wal WHERE channel_id = ? ORDER BY envelope_id"
        stored = [r[0] for r in conn.execute(query, (channel_id,))]
    await asyncio.to_thread(_copy, pristine, work)
    hub = await Hub(await SqliteStore.open(work, durability="full")).start()
    live = await _connect(hub, channel_id)
    rng = random.Random(1)
    found: dict[str, tuple[float, float]] = {}
    try:
        for kind in ("stored", "fresh"):
            if kind == "fresh":
                newest = [await live.post() for _ in range(RECENT)]
                ids, low = newest, RECENT - 1000
            else:
                ids, low = stored, 0
            high = len(ids) - 100
            sinces = [ids[rng.randrange(low, high)] for _ in range(reads + READ_WARMUP)]
            timings = []
            for n, since in enumerate(sinces):
                t = time.perf_counter()
                got = await live.read_wal(since)
                if n >= READ_WARMUP:
                    timings.append((time.perf_counter() - t) * 1e6)
                if len(got) != 100 or got[0].envelope_id <= since:
                    raise AssertionError(f"read_wal since {since} returned {len(got)} envelopes")
            found[kind] = (percentile(timings, 0.5), percentile(timings, 0.99))
    finally:
        await live.close()
    return found


# ag2 1.2.1


async def ag2_live(kind: str, tmp: Path, length: int) -> Live:
    from ag2.agent import Agent
    from ag2.knowledge import DiskKnowledgeStore, MemoryKnowledgeStore, SqliteKnowledgeStore
    from ag2.network import (
        EV_CHANNEL_INVITE,
        EV_TEXT,
        Envelope,
        Hub,
        HubClient,
        InboxBlock,
        LimitsBlock,
        LocalLink,
        Rule,
    )
    from ag2.network.client.handlers import _auto_ack_invite

    where = Path(tempfile.mkdtemp(dir=tmp, prefix=f"ag2-{kind}-"))
    store: Any = {
        "memory": MemoryKnowledgeStore,
        "sqlite": lambda: SqliteKnowledgeStore(where / "ag2.db"),
        "disk": lambda: DiskKnowledgeStore(where),
    }[kind]()
    hub = await Hub.open(store, ttl_sweep_interval=0, expectation_sweep_interval=0)
    client = HubClient(LocalLink(hub))
    no_cap = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=0)))  # 0: ag2's inbox cap off
    alice = await client.register(Agent("alice"), rule=no_cap, attach_plugin=False)
    bob = await client.register(Agent("bob"), rule=no_cap, attach_plugin=False)

    async def bob_handler(envelope: Envelope) -> None:
        if envelope.event_type == EV_CHANNEL_INVITE:
            await _auto_ack_invite(envelope, bob)

    bob.on_envelope(bob_handler)
    channel_id = (await alice.open(type="conversation", target="bob")).channel_id
    alice_id, bob_id = alice.agent_id, bob.agent_id

    def post() -> Awaitable[str]:
        return hub.post_envelope(
            Envelope(
                channel_id=channel_id,
                sender_id=alice_id,
                audience=None,
                event_type=EV_TEXT,
                event_data={"text": TEXT},
            )
        )

    async def read_wal(since: str) -> list[Any]:
        return list(await hub.read_wal(channel_id))

    async def close() -> None:
        await client.close()
        await hub.close()
        shutil.rmtree(where, ignore_errors=True)

    live = Live(post, lambda: hub.inbox_cursor(bob_id, channel_id) or None, read_wal, close, channel_id)
    todo = length - len(await hub.read_wal(channel_id))
    if todo > 0:
        await window(live, min(100, todo), todo)
    return live


async def ag2_run(kind: str, tmp: Path, posters: int, total: int) -> float:
    live = await ag2_live(kind, tmp, LENGTHS[0] - total // 2)
    try:
        return await window(live, posters, total)
    finally:
        await live.close()


# report


def _top(profiler: cProfile.Profile, posts: int, count: int = 20) -> str:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values()) or 1.0
    lines = [f"{'ncalls':>8} {'own µs/post':>11} {'own %':>6} {'cum µs/post':>11}  function"]
    rows = sorted(table.items(), key=lambda kv: -kv[1][2])[:count]
    for (path, line, name), (_, ncalls, own, cum, _) in rows:
        short = path.split("/src/")[-1].split("site-packages/")[-1]
        where = name if path == "~" else f"{short}:{line}({name})"
        per, share, cum_per = own / posts * 1e6, own / total * 100, cum / posts * 1e6
        lines.append(f"{ncalls:>8} {per:>11.2f} {share:>5.1f}% {cum_per:>11.2f}  {where}")
    return "\n".join(lines)


async def hubbub_memory_run(posters: int, total: int) -> float:
    """The same window on MemoryStore at L=1k: what the post path alone costs (no disk at all)."""
    from hubbub import Hub

    hub = await Hub().start()
    live = await _connect(hub, None)
    try:
        await window(live, min(100, LENGTHS[0]), LENGTHS[0] - 3)
        return await window(live, posters, total)
    finally:
        await live.close()


def _row(name: str, posters: int, length: int, s: Series) -> str:
    runs = ", ".join(f"{v:,.0f}" for v in s.values)
    return f"{name:26} {posters:>5} {length:>9,} {s.best:>9,.0f} {s.median:>9,.0f}   [{runs}]"


AG2_NAMES = {
    "memory": "ag2 Memory (no disk)",
    "sqlite": "ag2 Sqlite (fsync)",
    "disk": "ag2 Disk (no fsync)",
}


async def main(args: argparse.Namespace, loop_name: str) -> dict[str, Any]:
    def log(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    started = time.perf_counter()
    lengths = (LENGTHS[0], 100_000) if args.quick else LENGTHS
    short, long = lengths
    size = WINDOW // 4 if args.quick else WINDOW
    repeats = 1 if args.quick else args.repeats
    env = environment("hubbub", "ag2", "msgspec") | {"loop": loop_name}
    log("durable in-process posts; " + ", ".join(f"{k} {v}" for k, v in env.items()))
    log(
        f"window: {size:,} posts from P concurrent tasks of alice into one conversation with bob\n"
        "(acking); hubbub: SqliteStore durability 'full', a fresh copy of a database of L envelopes\n"
        f"per run (restart timed); ag2 1.2.1: windows of {AG2_WINDOW} posts from an empty channel\n"
        f"(mean length 1k; O(n) per append); {repeats} run(s) per figure, interleaved; headline = best"
    )
    tmp = Path(tempfile.mkdtemp(prefix="hubbub-durable-"))
    work = tmp / "run.db"
    posts = {(p, n): Series(f"P{p}_L{n}") for p in POSTERS for n in lengths}
    memory = {p: Series(f"P{p}") for p in POSTERS}
    restarts = {n: Series(f"L{n}", higher_is_better=False) for n in lengths}
    ag2 = {(k, p): Series(f"{k}_P{p}") for k in AG2_WINDOW for p in POSTERS}
    profile = None
    try:
        pristine: dict[int, tuple[Path, str]] = {}
        for length in lengths:
            path = tmp / f"built-{length}.db"
            channel_id, took = await build(path, length)
            pristine[length] = (path, channel_id)
            mb = path.stat().st_size / 1e6
            log(
                f"built L={length:,} in {took:.1f} s "
                f"({length / took:,.0f} posts/s, durability off; {mb:,.0f} MB)"
            )
        # Warm-up, discarded.
        await hubbub_run(*pristine[short][:1], work, pristine[short][1], POSTERS[-1], size, None)
        await ag2_run("memory", tmp, POSTERS[-1], AG2_WINDOW["memory"] // 4)
        for round_ in range(repeats):
            for (p, n), series in posts.items():
                path, channel_id = pristine[n]
                restart, rate = await hubbub_run(path, work, channel_id, p, size, None)
                series.values.append(rate)
                restarts[n].values.append(restart)
            for p, series in memory.items():
                series.values.append(await hubbub_memory_run(p, size))
            for (kind, p), series in ag2.items():
                series.values.append(await ag2_run(kind, tmp, p, AG2_WINDOW[kind]))
            log(f"  round {round_ + 1}/{repeats} done, load average {load_average()}")
        reads = {n: await read_latencies(*pristine[n][:1], work, pristine[n][1], READS) for n in lengths}
        if args.profile:
            profiler = cProfile.Profile()
            path, channel_id = pristine[short]
            await hubbub_run(path, work, channel_id, POSTERS[-1], size, profiler)
            profile = _top(profiler, size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    log()
    log(f"{'posts/s':26} {'P':>5} {'L':>9} {'best':>9} {'median':>9}   runs")
    for (p, n), s in posts.items():
        log(_row("hubbub Sqlite full", p, n, s))
    for p, s in memory.items():
        log(_row("hubbub Memory (no disk)", p, short, s))
    for (kind, p), s in ag2.items():
        log(_row(AG2_NAMES[kind], p, short, s))
    log()
    for n, s in restarts.items():
        log(
            f"restart (SqliteStore.open + Hub.start) at L={n:>9,}: "
            f"best {s.best:.3f} s, median {s.median:.3f} s"
        )
    for n, found in reads.items():
        text = "; ".join(f"{k}: p50 {a:,.0f} µs, p99 {b:,.0f} µs" for k, (a, b) in found.items())
        log(f"read_wal(since, limit=100) at L={n:>9,}: {text}")
    log()
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, value: float, target: str, passed: bool, text: str) -> None:
        checks[name] = {"value": round(value, 3), "target": target, "pass": passed}
        log(f"[{verdict(passed)}] {text}")

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("inf")

    for p in POSTERS:
        hb, ref = posts[(p, short)], ag2[("memory", p)]
        vs = ratio(hb.best, ref.best)
        others = ", ".join(f"vs ag2 {k} {ratio(hb.best, ag2[(k, p)].best):.1f}x" for k in ("sqlite", "disk"))
        check(
            f"P{p}_durable_vs_ag2_memory_1k",
            vs,
            f">= {TARGET_VS_AG2:g}",
            vs >= TARGET_VS_AG2,
            f"P={p}: hubbub durable / ag2 memory at 1k = {hb.best:,.0f} / {ref.best:,.0f} = {vs:.1f}x "
            f"(medians {ratio(hb.median, ref.median):.1f}x; target >= {TARGET_VS_AG2:g}x); {others}",
        )
        slow = ratio(hb.best, posts[(p, long)].best)
        check(
            f"P{p}_rate_1k_over_{long}",
            slow,
            f"<= {TARGET_LENGTH:g}",
            slow <= TARGET_LENGTH,
            f"P={p}: hubbub at 1k / at {long:,} = {hb.best:,.0f} / {posts[(p, long)].best:,.0f} = {slow:.2f} "
            f"(medians {ratio(hb.median, posts[(p, long)].median):.2f}; target <= {TARGET_LENGTH:g})",
        )
    for kind in ("stored", "fresh"):
        (a50, a99), (b50, b99) = reads[long][kind], reads[short][kind]
        check(
            f"read_wal_{kind}_p50_{long}_over_1k",
            ratio(a50, b50),
            f"<= {TARGET_READ:g}",
            ratio(a50, b50) <= TARGET_READ,
            f"read_wal p50 ({kind}) at {long:,} / at 1k = {a50:,.0f} / {b50:,.0f} µs = {ratio(a50, b50):.2f} "
            f"(p99 {ratio(a99, b99):.2f}; target <= {TARGET_READ:g})",
        )
    best = restarts[long].best
    check(
        f"restart_{long}_s",
        best,
        f"< {TARGET_RESTART_S:g}",
        best < TARGET_RESTART_S,
        f"restart at {long:,}: best {best:.2f} s, median {restarts[long].median:.2f} s "
        f"(target < {TARGET_RESTART_S:g} s)",
    )
    total = time.perf_counter() - started
    log(f"total {total:.0f} s; load average now {load_average()}")
    if profile is not None:
        log()
        log(f"cProfile of one hubbub run at L={short:,}, P={POSTERS[-1]}, top 20 by own time:")
        log(profile)
    return {
        "bench": "durable_post",
        "quick": args.quick,
        "window": size,
        "ag2_window": AG2_WINDOW,
        "env": env,
        "load_after": load_average(),
        "posts": {s.name: s.as_dict() for s in posts.values()},
        "memory_store_1k": {s.name: s.as_dict() for s in memory.values()},
        "ag2_1k": {s.name: s.as_dict() for s in ag2.values()},
        "restart_s": {s.name: s.as_dict(3) for s in restarts.values()},
        "read_wal_us": {
            f"L{n}": {k: {"p50": round(a), "p99": round(b)} for k, (a, b) in found.items()}
            for n, found in reads.items()
        },
        "checks": checks,
        "seconds": round(total),
    }


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run, L = 1k and 100k (not 1M), window / 4")
    parser.add_argument("--json", action="store_true", help="print one JSON line on stdout (report: stderr)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one hubbub run at 1k")
    add_loop_flag(parser)
    args = parser.parse_args()
    factory, name = loop_choice(args.loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(main(args, name))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
