"""``kill -9`` a ``hubbub serve`` process while agents in this process post and ack over WebSocket.

``test_crash.py`` kills a hub whose agents share its process; this one puts the network in
between, as users run it: every post a client saw answered with an id is in the WAL exactly
once after ten kills and restarts on the same file, ids keep increasing, and the receiving
agent, attached again, gets exactly what the hub had not seen it ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from hubbub import EV_TEXT, Channel, Envelope, HubClient, SqliteStore, TransportError, WsLink
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until

KILLS = 10
SENDERS = ("alice", "carol")


class Served:
    """``hubbub serve`` on ``db`` in a subprocess, on a fresh port."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hubbub.cli", "serve", "--port", "0", "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first.startswith("hubbub serving on ws://"), first + (
            self.proc.stderr.read() if self.proc.stderr else ""
        )
        self.url = first.split()[3]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=10)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err


def link(url: str) -> WsLink:
    return WsLink(url, reconnect=False, request_timeout=5 * TIME_UNIT)


async def post_until_cut(channel: Channel, name: str, run: int, acked: list[str]) -> None:
    """Post one text after another; record each id the hub answered, until the hub is gone."""
    n = 0
    with contextlib.suppress(TransportError):
        while True:
            acked.append(await channel.send(f"{name}-{run}-{n}"))
            n += 1


async def one_life(
    db: Path, run: int, channels: dict[str, str], acked: list[str], rng: random.Random
) -> None:
    """Start the hub, post from every sender (bob receives and acks), kill -9 it mid-flight."""
    served = await asyncio.to_thread(Served, db)
    clients = [HubClient(link(served.url)) for _ in range(3)]
    try:
        for client in clients:
            await client.connect()
        bob_client, *senders = clients
        if run == 0:
            await bob_client.register(name="bob", handle_turns=False)
            agents = [
                await c.register(name=name, handle_turns=False)
                for c, name in zip(senders, SENDERS, strict=True)
            ]
            for agent, name in zip(agents, SENDERS, strict=True):
                channels[name] = (await agent.open("conversation", "bob")).id
        else:
            await bob_client.attach(None, "bob", handle_turns=False)  # replays what it had not acked
            agents = [
                await c.attach(None, name, handle_turns=False)
                for c, name in zip(senders, SENDERS, strict=True)
            ]
        posting = []
        for client, agent, name in zip(senders, agents, SENDERS, strict=True):
            channel = agent.channel(await client.get_channel(channels[name]))
            posting.append(asyncio.create_task(post_until_cut(channel, name, run, acked)))
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        await asyncio.to_thread(served.kill)
        await asyncio.wait_for(asyncio.gather(*posting), 10 * TIME_UNIT)
    finally:
        for client in clients:
            await client.aclose()
        if served.proc.poll() is None:
            served.proc.kill()


async def test_posts_acked_over_the_wire_survive_kill_9_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    rng = random.Random(int(os.environ.get("HUBBUB_CRASH_SEED", "0")) or None)
    channels: dict[str, str] = {}
    acked: list[str] = []
    for run in range(KILLS):
        await one_life(db, run, channels, acked, rng)
    assert len(acked) > KILLS  # every life posted something

    store = await SqliteStore.open(db)  # what the last kill left: what bob had acked by then
    try:
        cursors = await store.load_cursors()
        bob = next(a.passport.agent_id for a in await store.load_agents() if a.passport.name == "bob")
        wals: dict[str, list[Envelope]] = {}
        for channel_id in channels.values():
            wals[channel_id] = []
            while page := await store.read_wal(
                channel_id, since=wals[channel_id][-1].envelope_id if wals[channel_id] else None, limit=500
            ):
                wals[channel_id] += page
    finally:
        await store.aclose()
    texts = [e for wal in wals.values() for e in wal if e.event_type == EV_TEXT]
    counts = Counter(e.envelope_id for e in texts)
    assert all(counts[envelope_id] == 1 for envelope_id in acked)  # every answered post, once
    assert max(counts.values()) == 1
    for wal in wals.values():
        ids = [e.envelope_id for e in wal]
        assert ids == sorted(set(ids))  # strictly increasing
    owed = {
        channel_id: [e.envelope_id for e in wal if e.envelope_id > (cursors.get((bob, channel_id)) or "")]
        for channel_id, wal in wals.items()
    }

    served = await asyncio.to_thread(Served, db)
    try:
        got: dict[str, list[str]] = {channel_id: [] for channel_id in channels.values()}
        async with HubClient(link(served.url)) as client:
            back = await client.attach(None, "bob", handle_turns=False, since_envelope_id=None)
            back.on_envelope(lambda e: got[e.channel_id].append(e.envelope_id))
            sent = await back.replay()
            await wait_until(lambda: sum(map(len, got.values())) >= sent, 20 * TIME_UNIT, what="the replay")
        assert got == owed  # exactly what bob had not acked, per channel, in order
    finally:
        await asyncio.to_thread(served.stop)
