"""``kill -9`` a hub on SQLite at random moments, restart it on the same file, and check it resumed exactly.

The child (``_crash_child.py``) posts from several agents at once and prints each
id a post returned; the parent SIGKILLs it 0.05-0.4 s after it starts printing,
again and again, then opens the file with a hub of its own and checks what a
user relies on: nothing acked is lost or doubled, ids keep increasing, channel
state and lifecycle agree with the WAL, inbox counts are right, and each agent,
re-attached, gets exactly what it had not acked. A damaged file is refused.

``HUBBUB_CRASH_SEED`` replays one run's random kill moments.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_INVITE_REJECT,
    EV_CHANNEL_OPENED,
    ChannelMetadata,
    ChannelState,
    Envelope,
    Hub,
    HubClient,
    LocalLink,
    SqliteStore,
    StorageError,
    Store,
)
from hubbub.model.envelope import is_bypass_event
from tests.conftest import TIME_UNIT
from tests.hub._waiting import wait_until

CHILD = Path(__file__).with_name("_crash_child.py")
KEEP_CLOSED = 2
"""As the child: closed channels beyond it retire."""
NAMES = ("alice", "bob", "carol")
KILLS = 12
FIRST_LINE_TIMEOUT = 30 * TIME_UNIT
LIFECYCLE = {
    EV_CHANNEL_INVITE: ChannelState.PENDING,
    EV_CHANNEL_INVITE_ACK: ChannelState.PENDING,
    EV_CHANNEL_INVITE_REJECT: ChannelState.PENDING,
    EV_CHANNEL_OPENED: ChannelState.ACTIVE,
    EV_CHANNEL_CLOSED: ChannelState.CLOSED,
    EV_CHANNEL_EXPIRED: ChannelState.EXPIRED,
}


class Child:
    """One run of the child, its printed ids read on a thread, its stderr in a file."""

    def __init__(self, db: Path, seed: int, stderr: IO[str]) -> None:
        self.stderr = stderr
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(seed)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        self.posted: list[tuple[str, str]] = []
        self.printing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            words = line.split()
            if line.endswith("\n") and len(words) == 3 and words[0] == "POSTED":
                self.posted.append((words[1], words[2]))
                self.printing.set()
        self.printing.set()  # EOF: the child is gone

    def why(self) -> str:
        self.stderr.flush()
        return Path(self.stderr.name).read_text()[-3000:]

    def kill_after(self, delay: float) -> None:
        """SIGKILL ``delay`` s after the first printed id; fail if it never printed or ended on its own."""
        if not self.printing.wait(FIRST_LINE_TIMEOUT) or self.proc.poll() is not None:
            raise AssertionError(f"the child printed no id or exited ({self.proc.poll()}):\n{self.why()}")
        try:
            self.proc.wait(delay)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
        else:
            raise AssertionError(f"the child exited on its own ({self.proc.returncode}):\n{self.why()}")

    def reap(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def crash_repeatedly(db: Path, logs: Path, kills: int, rng: random.Random) -> list[list[tuple[str, str]]]:
    """Run the child ``kills`` times on ``db``, SIGKILLing each; the ids each run printed."""
    runs = []
    for n in range(kills):
        with (logs / f"child{n}.err").open("w") as err:
            child = Child(db, rng.randrange(1 << 30), err)
            try:
                child.kill_after(rng.uniform(0.05, 0.4))
            finally:
                child.reap()
            assert child.proc.returncode == -signal.SIGKILL, child.why()
            runs.append(child.posted)
    return runs


async def read_all(store: Store, channel_id: str) -> list[Envelope]:
    envelopes: list[Envelope] = []
    while page := await store.read_wal(
        channel_id, since=envelopes[-1].envelope_id if envelopes else None, limit=500
    ):
        envelopes += page
    return envelopes


def addressed_to(envelope: Envelope, agent_id: str) -> bool:
    return envelope.sender_id != agent_id and (envelope.audience is None or agent_id in envelope.audience)


async def replayed(hub: Hub, name: str) -> tuple[int, dict[str, list[str]]]:
    """What ``name``, re-attached with a fresh client, gets from a replay: per channel, in order."""
    got: dict[str, list[str]] = defaultdict(list)
    async with HubClient(LocalLink(hub)) as client:
        agent = await client.attach(None, name, since_envelope_id=None, auto_answer_invites=False)
        agent.on_envelope(lambda e: got[e.channel_id].append(e.envelope_id))
        sent = await agent.replay()
        await wait_until(lambda: sum(map(len, got.values())) >= sent, 20 * TIME_UNIT)
        await agent.aclose()
    return sent, dict(got)


def check_lifecycle(meta: ChannelMetadata, wal: list[Envelope]) -> None:
    """The record says what the WAL's last lifecycle event says."""
    controls = [e for e in wal if e.event_type in LIFECYCLE]
    last = controls[-1] if controls else None
    assert meta.state is (LIFECYCLE[last.event_type] if last else ChannelState.PENDING), meta.channel_id
    if meta.state is ChannelState.PENDING:
        acked = {e.sender_id for e in wal if e.event_type == EV_CHANNEL_INVITE_ACK}
        invitees = [p for p in meta.participant_ids() if p != meta.creator_id]
        assert meta.pending_acks == [p for p in invitees if p not in acked]
    if meta.is_terminal():
        assert last is not None
        assert (meta.close_reason, meta.closed_at) == (last.event_data["reason"], last.created_at)


async def test_kill_9_at_random_moments_loses_nothing_and_resumes_exactly(tmp_path: Path) -> None:
    seed = int(os.environ.get("HUBBUB_CRASH_SEED", random.randrange(1 << 30)))
    db = tmp_path / "hub.db"
    runs = await asyncio.to_thread(crash_repeatedly, db, tmp_path, KILLS, random.Random(seed))
    where = f"(HUBBUB_CRASH_SEED={seed}, logs in {tmp_path})"
    reported = [post for run in runs for post in run]
    assert len(reported) >= 10 * KILLS, where
    assert len(set(reported)) == len(reported), where

    async with Hub(await SqliteStore.open(db), invite_ack_timeout=3600, keep_closed=KEEP_CLOSED) as hub:
        store = hub.store
        stored = {m.channel_id: m for m in await store.load_channels()}
        # Retired channels (closed, acked by every participant, out of memory): not loaded at start.
        retired = {
            m.channel_id: m for m in await store.scan_channels(limit=10**6) if m.channel_id not in stored
        }
        wal = {channel_id: await read_all(store, channel_id) for channel_id in [*stored, *retired]}
        cursors = await store.load_cursors()
        assert retired, f"no channel retired: the kills came too early to test it {where}"

        # Every post that returned an id is in its channel's WAL, exactly once.
        ids = {c: Counter(e.envelope_id for e in envelopes) for c, envelopes in wal.items()}
        assert all(n == 1 for counter in ids.values() for n in counter.values()), where
        missing = [(c, e) for c, e in reported if ids.get(c, Counter())[e] != 1]
        assert not missing, f"{len(missing)} acked posts are not in the WAL {where}"
        # Each restart's ids come after the previous run's, per channel.
        newest: dict[str, str] = {}
        for run in runs:
            for channel_id, envelope_id in run:
                assert envelope_id > newest.get(channel_id, ""), where
            for channel_id, envelope_id in run:
                newest[channel_id] = max(newest.get(channel_id, ""), envelope_id)

        # A retired channel's record is final and says what its WAL says; nothing of it is due.
        for channel_id, meta in retired.items():
            assert meta.is_terminal(), where
            check_lifecycle(meta, wal[channel_id])
            assert not any(c == channel_id for _, c in cursors), where
            assert hub.channels.find(channel_id) is None, where
        # Channel state and lifecycle agree with the WAL (and the stored record with memory).
        for channel_id in stored:
            envelopes = wal[channel_id]
            record = hub.channels.get(channel_id)
            state = record.adapter.initial_state(record.metadata)
            for envelope in envelopes:
                state = record.adapter.fold(state, envelope)
            assert record.state == state, f"channel {channel_id} {where}"
            check_lifecycle(record.metadata, envelopes)
            assert stored[channel_id] == record.metadata, where
        assert {m.state for m in stored.values()} >= {ChannelState.ACTIVE, ChannelState.CLOSED}

        # Inbox counts: substantive envelopes addressed to each agent past its cursor.
        agent_ids = {name: hub.get_agent(name).agent_id or "" for name in NAMES}
        expected: dict[str, dict[str, list[str]]] = {}
        for name, agent_id in agent_ids.items():
            expected[name] = {}
            for channel_id in stored:
                envelopes = wal[channel_id]
                if agent_id not in stored[channel_id].participant_ids():
                    continue
                cursor = cursors.get((agent_id, channel_id), "")
                due = [e for e in envelopes if e.envelope_id > cursor and addressed_to(e, agent_id)]
                if due:
                    expected[name][channel_id] = [e.envelope_id for e in due]
            substantive = sum(
                not is_bypass_event(e.event_type)
                for c in stored
                if agent_id in stored[c].participant_ids()
                for e in wal[c]
                if e.envelope_id > cursors.get((agent_id, c), "") and addressed_to(e, agent_id)
            )
            assert hub.governance.inbox.count(agent_id) == substantive, f"{name} {where}"

        # Each agent, re-attached, gets exactly what it had not acked, in order per channel.
        for name in NAMES:
            sent, got = await replayed(hub, name)
            assert sent == sum(map(len, expected[name].values())), f"{name} {where}"
            assert got == expected[name], f"{name} {where}"

    # Ids strictly increase in each channel in the order they were committed.
    with sqlite3.connect(db) as conn:
        last: dict[str, str] = {}
        for channel_id, envelope_id in conn.execute("SELECT channel_id, envelope_id FROM wal ORDER BY seq"):
            assert envelope_id > last.get(channel_id, ""), where
            last[channel_id] = envelope_id


def damage_garbage(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(random.Random(7).randbytes(64 * 1024))


def damage_truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def damage_and_start(
    db: Path, damage: Callable[[Path], None], *, wal: bool = False
) -> subprocess.CompletedProcess[str]:
    assert Path(f"{db}-wal").exists() == wal
    damage(db)
    return subprocess.run(
        [sys.executable, str(CHILD), str(db), "0"],
        capture_output=True,
        text=True,
        timeout=30 * TIME_UNIT,
        cwd=Path(__file__).parents[2],
    )


@pytest.mark.parametrize("damage", [damage_garbage, damage_truncate], ids=["garbage", "truncated"])
async def test_a_damaged_database_is_refused_with_its_name(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    db = tmp_path / "hub.db"
    await asyncio.to_thread(crash_repeatedly, db, tmp_path, 1, random.Random(1))
    async with Hub(await SqliteStore.open(db)):
        pass  # a clean close folds SQLite's own WAL into the file
    child = await asyncio.to_thread(damage_and_start, db, damage)
    assert child.returncode == 1
    assert "POSTED" not in child.stdout
    assert "hubbub.errors.StorageError: cannot open hubbub database " + str(db) in child.stderr
    with pytest.raises(StorageError, match="^cannot open hubbub database " + re.escape(str(db))):
        await SqliteStore.open(db)


def test_an_emptied_database_is_refused_and_the_log_a_kill_left_kept(tmp_path: Path) -> None:
    # After a kill -9 most of what was acked lives in hub.db-wal; a hub.db emptied since (a
    # botched copy, a full disk) must not open as a new database, which would delete that log.
    db = tmp_path / "hub.db"
    runs = crash_repeatedly(db, tmp_path, 1, random.Random(2))
    assert runs[0]
    wal = Path(f"{db}-wal")
    size = wal.stat().st_size
    assert size > 0
    child = damage_and_start(db, lambda path: path.write_bytes(b""), wal=True)
    assert child.returncode == 1
    assert "POSTED" not in child.stdout
    assert f"cannot open hubbub database {db}: it is empty but its write-ahead log" in child.stderr
    assert wal.stat().st_size == size
