"""The ``hubbub`` command: ``demo`` shows all four channel types end to end."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console

from hubbub.demo import run_demo


async def test_demo_runs_all_four_channel_types() -> None:
    out = io.StringIO()
    status = await run_demo(Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert status == 0
    assert "oracle │ The sum of 17 + 25 + 8 is 50." in text
    assert "channel closed: consulting_complete" in text
    assert "pong (you said 'hello pong')" in text
    assert "→ hands off to billing" in text
    assert "■ finishes (resolved)" in text
    assert "✗ denied by access.outbound_to: intern may not reach billing" in text
    assert "⚠ expectation reply_within (0.2s) violated by sleepy" in text
    assert "OK · 5 channels" in text
    assert "governance: denied+violated" in text


def test_console_script_demo_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hubbub.cli", "demo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "workflow: resolved" in " ".join(result.stdout.split())


def test_no_command_prints_help_and_fails() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hubbub.cli"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "demo" in result.stderr
