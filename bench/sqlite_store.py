"""``SqliteStore`` figures: group-committed appends and indexed WAL reads. Measures, asserts nothing.

Run: ``.venv/bin/python bench/sqlite_store.py [--quick]``.

* appends/s: 100 concurrent posters, each awaiting its own appends one after
  another (``await store.append(envelope)``, 200-byte text envelopes, 10 channels),
  at durability full / normal / off, and MemoryStore for reference; the clock
  stops when the last append is durable. Also through the hub: 100 concurrent
  ``hub.post_envelope`` calls from alice into one conversation with bob (bob
  connected in process, acking), the clock stopping when every post returned.
* read_wal(since, limit=100): one channel of length L (1k, 100k), written
  interleaved with a second channel of the same length; 2000 reads at random
  ``since`` positions, after one untimed pass; latency per awaited call
  (includes the hop to the reader thread and decoding 100 envelopes).
* opening and hub start-up at 100k: ``SqliteStore(path)`` (quick_check, migrations)
  and ``Hub.start()`` (loads and refolds the WAL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hubbub import (
    Envelope,
    Hub,
    HubClient,
    InboxBlock,
    LimitsBlock,
    LocalLink,
    MemoryStore,
    Rule,
    SqliteStore,
)
from hubbub.model.ids import MonotonicIds
from hubbub.storage import Store
from hubbub.storage.sqlite import Durability

TEXT = "x" * 200
POSTERS = 100


def envelope(channel_id: str, sender_id: str, envelope_id: str) -> Envelope:
    return Envelope(
        channel_id=channel_id, sender_id=sender_id, envelope_id=envelope_id, event_data={"text": TEXT}
    )


async def appends_per_second(store: Store, per_poster: int) -> tuple[float, int]:
    ids = MonotonicIds()

    async def poster(p: int) -> None:
        channel_id = f"c{p % 10}"
        for _ in range(per_poster):
            e = Envelope(
                channel_id=channel_id, sender_id=f"a{p}", envelope_id=ids(), event_data={"text": TEXT}
            )
            durable = store.append(e)
            if durable is not None:
                await durable

    before = getattr(store, "commits", 0)
    start = time.perf_counter()
    await asyncio.gather(*(poster(p) for p in range(POSTERS)))
    elapsed = time.perf_counter() - start
    return POSTERS * per_poster / elapsed, getattr(store, "commits", 0) - before


async def hub_posts_per_second(store: Store, per_poster: int) -> float:
    async with Hub(store) as hub, HubClient(LocalLink(hub)) as client:
        no_cap = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=10**9)))
        alice = await client.register(name="alice", rule=no_cap)
        await client.register(name="bob", rule=no_cap, handle_turns=False)
        channel = await alice.open("conversation", "bob")

        async def poster() -> None:
            for _ in range(per_poster):
                await hub.post_envelope(
                    Envelope(channel_id=channel.id, sender_id=alice.agent_id, event_data={"text": TEXT})
                )

        start = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(POSTERS)))
        return POSTERS * per_poster / (time.perf_counter() - start)


async def fill(path: Path, length: int) -> list[str]:
    store = SqliteStore(path, durability="off")
    ids = MonotonicIds()
    written: list[str] = []
    for start in range(0, length, 5000):
        futures = []
        for _ in range(min(5000, length - start)):
            for channel_id in ("target", "other"):
                e = Envelope(
                    channel_id=channel_id, sender_id="a", envelope_id=ids(), event_data={"text": TEXT}
                )
                futures.append(store.append(e))
                if channel_id == "target":
                    written.append(e.envelope_id)
        await asyncio.gather(*futures)
    await store.aclose()
    return written


async def read_latency(path: Path, written: list[str], reads: int) -> tuple[float, float]:
    store = SqliteStore(path)
    rng = random.Random(1)
    sinces = [written[rng.randrange(0, len(written) - 100)] for _ in range(reads)]
    for since in sinces:  # warm the page cache
        await store.read_wal("target", since=since, limit=100)
    timings = []
    for since in sinces:
        t = time.perf_counter()
        got = await store.read_wal("target", since=since, limit=100)
        timings.append(time.perf_counter() - t)
        assert len(got) == 100
    await store.aclose()
    timings.sort()
    return statistics.median(timings) * 1e6, timings[int(len(timings) * 0.99)] * 1e6


async def start_up(path: Path) -> tuple[float, float]:
    t = time.perf_counter()
    store = SqliteStore(path)
    opened = time.perf_counter() - t
    await store.aclose()
    # A hub needs a channel record to refold: time loading the stored WAL the way Hub.start() pages it.
    store = SqliteStore(path)
    t = time.perf_counter()
    since = None
    while batch := await store.read_wal("target", since=since, limit=1000):
        since = batch[-1].envelope_id
    paged = time.perf_counter() - t
    await store.aclose()
    return opened, paged


async def main(quick: bool) -> None:
    per_poster = 50 if quick else 200
    tmp = Path(tempfile.mkdtemp(prefix="hubbub-bench-"))
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus")
    print(f"\nappends/s, {POSTERS} concurrent posters x {per_poster} awaited appends, 10 channels")
    durabilities: list[Durability] = ["full", "normal", "off"]
    for name in [*durabilities, None]:
        store: Store = MemoryStore() if name is None else SqliteStore(tmp / f"a-{name}.db", durability=name)
        rate, commits = await appends_per_second(store, per_poster)
        total = POSTERS * per_poster
        extra = f"  {commits} commits, {total / commits:.0f} rows/commit" if commits else ""
        print(f"  {name or 'memory':7s} {rate:>10,.0f}/s{extra}")
        await store.aclose()
    print(f"\nhub.post_envelope/s, {POSTERS} concurrent posters x {per_poster // 2} posts, one conversation")
    for name in [*durabilities[:2], None]:
        store = MemoryStore() if name is None else SqliteStore(tmp / f"h-{name}.db", durability=name)
        print(f"  {name or 'memory':7s} {await hub_posts_per_second(store, per_poster // 2):>10,.0f}/s")
    print("\nread_wal(since, limit=100) latency, awaited from the loop (reader-thread hop + decode)")
    for length in (1_000, 100_000):
        path = tmp / f"r-{length}.db"
        written = await fill(path, length)
        p50, p99 = await read_latency(path, written, 500 if quick else 2000)
        size = path.stat().st_size / 1e6
        print(
            f"  length {length:>7,}: p50 {p50:7.0f} us  p99 {p99:7.0f} us   (file {size:.0f} MB, 2 channels)"
        )
        if length == 100_000:
            opened, paged = await start_up(path)
            print(
                f"  open at 100k (quick_check + migrate): {opened * 1e3:.0f} ms; "
                f"paging the channel's whole WAL in 1000s: {paged * 1e3:.0f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
