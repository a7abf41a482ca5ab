"""Restart time of a hub on SQLite holding one long channel. Measures, asserts nothing.

Run: ``.venv/bin/python bench/restart.py [--envelopes N] [--db PATH]``.

Builds (or reuses, with ``--db`` pointing at an earlier build) a database with one
conversation of N envelopes (default 1,000,000): alice posts from 100 concurrent
tasks through ``Hub.post_envelope`` while bob, connected in process, acks, so the
WAL, cursors and snapshots are what a live hub leaves. Built at durability "off"
for speed; durability does not change what a restart reads.

Then, each on a fresh process-level cold start of the objects (the OS page cache
stays warm, as after a crash-restart):

* ``open``: ``SqliteStore.open(path)`` (header and ``PRAGMA quick_check``, migrations);
* ``start``: ``Hub.start()`` (agents, cursors, keyed state, channel restore from
  the last snapshot, inbox counts);
* the same ``start`` with the snapshot deleted: the full refold of N envelopes
  a hub without snapshots does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hubbub import Envelope, Hub, HubClient, InboxBlock, LimitsBlock, LocalLink, Rule, SqliteStore
from hubbub.hub.snapshots import SNAPSHOT_PREFIX

POSTERS = 100


async def build(path: Path, envelopes: int) -> str:
    store = await SqliteStore.open(path, durability="off")
    async with Hub(store) as hub, HubClient(LocalLink(hub)) as client:
        alice = await client.register(name="alice")
        # bob acks in batches; a deep inbox keeps the posters from waiting on him
        await client.register(
            name="bob", rule=Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=envelopes)))
        )
        channel = await alice.open("conversation", "bob")
        todo = envelopes - len(await hub.read_wal(channel.id))
        body = "x" * 150
        started = time.perf_counter()

        async def poster(count: int) -> None:
            for n in range(count):
                envelope = Envelope(channel_id=channel.id, event_data={"text": f"{n} {body}"})
                await hub.post_envelope(envelope, sender_id=alice.agent_id)

        share, extra = divmod(todo, POSTERS)
        await asyncio.gather(*(poster(share + (i < extra)) for i in range(POSTERS)))
        last = (await hub.store.read_wal_tail(channel.id, 1))[0].envelope_id
        bob = await client.agent_id_of("bob")
        for _ in range(1200):  # bob's last acks, at most a minute
            if hub.delivery.cursor(bob, channel.id) == last:
                break
            await asyncio.sleep(0.05)
        took = time.perf_counter() - started
        print(f"built {envelopes:,} envelopes in {took:.1f}s ({todo / took:,.0f} posts/s, durability off)")
        return channel.id


async def restart(path: Path) -> tuple[float, float, Hub]:
    t0 = time.perf_counter()
    store = await SqliteStore.open(path)
    t1 = time.perf_counter()
    hub = await Hub(store).start()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, hub


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="reuse (or keep) the database at this path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "hub.db"
        if path.exists():
            store = await SqliteStore.open(path)
            [meta] = await store.load_channels()
            channel_id = meta.channel_id
            await store.aclose()
            print(f"reusing {path}")
        else:
            channel_id = await build(path, args.envelopes)
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        print(f"database: {size / 1e6:,.0f} MB")

        for attempt in range(3):
            opened, started, hub = await restart(path)
            length = await hub.store.wal_length(channel_id)
            record = hub.channels.get(channel_id)
            await hub.aclose()
            print(
                f"restart {attempt + 1}: open {opened:.2f}s + start {started:.2f}s = {opened + started:.2f}s "
                f"({length:,} envelopes, {record.texts:,} texts, state turns={record.state.turns:,})"
            )

        store = await SqliteStore.open(path)
        snapshot = await store.get_kv(SNAPSHOT_PREFIX + channel_id)
        assert snapshot is not None
        await store.delete_kv(SNAPSHOT_PREFIX + channel_id)
        await store.aclose()
        opened, started, hub = await restart(path)
        await hub.aclose()
        print(f"without a snapshot (full refold): open {opened:.2f}s + start {started:.2f}s")
        store = await SqliteStore.open(path)
        await store.put_kv(SNAPSHOT_PREFIX + channel_id, snapshot)
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
