"""``hubbub serve --retain-closed`` compacts the hub it runs at start, and ``hubbub compact`` refuses
the file while that hub holds it, then compacts it once the hub stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from hubbub import FunctionAgent, Hub, HubClient, LocalLink, SqliteStore
from tests.conftest import TIME_UNIT

HUBBUB = [sys.executable, "-m", "hubbub.cli"]


async def _one_closed_channel(db: Path) -> str:
    async with Hub(SqliteStore(db)) as hub, HubClient(LocalLink(hub)) as client:
        alice = await client.register(FunctionAgent(lambda t: "hi", name="alice"))
        await client.register(FunctionAgent(lambda t: "4", name="bob"))
        channel = await alice.open("consulting", "bob")
        await channel.send("2+2?")
        await channel.wait_closed(timeout=5 * TIME_UNIT)
        return channel.id


def _compact(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUBBUB, "compact", "--db", str(db), "--retain-closed", "0s"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_compacts_and_compact_refuses_a_file_in_use(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    closed_id = asyncio.run(_one_closed_channel(db))
    serve = subprocess.Popen(
        [
            *HUBBUB,
            "serve",
            "--port",
            "0",
            "--db",
            str(db),
            "--retain-closed",
            "0s",
            "--retention-every",
            "9h",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert serve.stdout is not None
        lines = [serve.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("hubbub serving on ws://127.0.0.1:"), lines
        assert lines[2] == "retention: dropped 6 envelopes of 1 closed channels and 0 audit records\n"
        refused = _compact(db)
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"hubbub compact: {db} is in use by a running hub")
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=20)
        assert serve.returncode == 0, err
        assert out.endswith("hubbub stopped\n")
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate(timeout=10)
    done = _compact(db)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{db}: dropped 0 envelopes of 0 closed channels and 0 audit records\n"

    async def wal_length() -> int:
        store = SqliteStore(db)
        try:
            return await store.wal_length(closed_id)
        finally:
            await store.aclose()

    assert asyncio.run(wal_length()) == 0
