"""Launching ``hubbub mcp`` as a real subprocess and talking to it with the MCP SDK's own ``Client``.

Over stdio the client launches the server itself (as an assistant would);
over HTTP the test starts ``hubbub mcp --http --port 0`` and reads the URL it
prints. Either way the subprocess runs this checkout's code (PYTHONPATH).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

import hubbub
from tests.conftest import TIME_UNIT

SRC = str(Path(hubbub.__file__).resolve().parents[1])
MCP = [sys.executable, "-m", "hubbub.cli", "mcp"]
ENV = {"PYTHONPATH": SRC}


def start_http(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``hubbub mcp --http --port 0 ARGS`` running, and the URL it serves MCP on."""
    proc = subprocess.Popen(
        [*MCP, "--http", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith("hubbub mcp serving on http://127.0.0.1:"):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"hubbub mcp --http did not start: {first!r} {err}")
    return proc, first.split()[4]


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, then the exit status and stderr (killed if it does not stop)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20 * TIME_UNIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@asynccontextmanager
async def mcp_client(transport: str, *args: str) -> AsyncIterator[Client]:
    """A connected ``Client`` to ``hubbub mcp ARGS`` over ``transport`` ("stdio" or "http")."""
    if transport == "stdio":
        params = StdioServerParameters(command=MCP[0], args=[*MCP[1:], *args], env=ENV)
        async with Client(params, read_timeout_seconds=30 * TIME_UNIT) as client:
            yield client
        return
    proc, url = await asyncio.to_thread(start_http, *args)
    try:
        async with Client(url, read_timeout_seconds=30 * TIME_UNIT) as client:
            yield client
    finally:
        await asyncio.to_thread(stop, proc)


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a tool call that must have succeeded."""
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """The message of a tool call that must have failed."""
    assert result.is_error, result.structured_content
    [content] = result.content
    assert content.type == "text"
    return content.text
