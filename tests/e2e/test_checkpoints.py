"""Checkpoints across processes: one process saves through ``hubbub serve``, the hub is killed
(``kill -9``) and started again on the same file, and another process reads what the first saved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

HUBBUB = [sys.executable, "-m", "hubbub.cli"]

WRITER = """
import asyncio, sys
from hubbub import HubClient, WsLink

async def main() -> None:
    async with HubClient(WsLink(sys.argv[1])) as client:
        me = await client.register(name="cruncher")
        await me.checkpoints.save("crunch-1", {"next_page": 7})
        info = await me.checkpoints.save("crunch-1", {"next_page": 8})
        print(info.version)

asyncio.run(main())
"""

READER = """
import asyncio, sys
from hubbub import HubClient, WsLink

async def main() -> None:
    async with HubClient(WsLink(sys.argv[1])) as client:
        me = await client.attach(None, "cruncher")
        print(await me.checkpoints.load("crunch-1"))
        intruder = await client.register(name="intruder")
        try:
            await intruder.checkpoints.load("crunch-1")
        except Exception as exc:
            print(type(exc).__name__, exc.reason)

asyncio.run(main())
"""


def _serve(db: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*HUBBUB, "serve", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("hubbub serving on ws://127.0.0.1:"), first
    return proc, first.split()[3]


def _python(script: str, url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_checkpoint_outlives_its_writer_and_a_killed_hub(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    hub, url = _serve(db)
    try:
        assert _python(WRITER, url) == "2\n"
    finally:
        hub.send_signal(signal.SIGKILL)
        hub.communicate(timeout=10)
    again, url = _serve(db)
    try:
        assert _python(READER, url) == "{'next_page': 8}\nAccessDeniedError not_owner\n"
    finally:
        again.send_signal(signal.SIGKILL)
        again.communicate(timeout=10)
