"""Shared by the WebSocket benchmarks: server processes, CPU pinning, CPU accounting, percentiles."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "_ws_servers.py"
SERVER_CPU = 1
CLIENT_CPU = 0
_URL = re.compile(r"wss?://[^\s\")]+")


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin_self(enabled: bool) -> str:
    """Pin this (client) process to CLIENT_CPU; the servers go on SERVER_CPU."""
    if enabled and can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
        return f"client pinned to CPU {CLIENT_CPU}, server to CPU {SERVER_CPU}"
    return "unpinned"


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    label: str

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process, all threads, so far."""
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(argv: Sequence[str], label: str, pin: bool, timeout: float = 30.0) -> Server:
    """Start a server process; its first stdout line holds the URL; stderr goes to a log file."""
    log_path = Path(tempfile.gettempdir()) / f"hubbub-bench-{label}.log"
    preexec = (lambda: os.sched_setaffinity(0, {SERVER_CPU})) if pin and can_pin() else None
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=log_path.open("a"),
        text=True,
        preexec_fn=preexec,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    match = _URL.search(line)
    if match is None or time.monotonic() > deadline:
        proc.kill()
        raise RuntimeError(f"{label} server did not print its URL (got {line!r})")
    return Server(proc, match.group(0), label)


def bench_server(
    kind: str,
    pin: bool,
    *,
    db: str | None = None,
    profile: str | None = None,
    max_inflight: int | None = None,
    durability: str | None = None,
) -> Server:
    argv = [sys.executable, os.environ.get("HUBBUB_BENCH_SERVER", str(SERVERS)), kind]
    if db:
        argv += ["--db", db]
    if max_inflight is not None:
        argv += ["--max-inflight", str(max_inflight)]
    if durability is not None:
        argv += ["--durability", durability]
    if profile:
        argv += ["--profile", profile]
    return start_server(argv, kind, pin)


class CpuMeter:
    """CPU seconds used by this process and by a server over a window."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.client0 = time.process_time()
        self.server0 = self.server.cpu_seconds()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        return {
            "client_busy": (time.process_time() - self.client0) / wall,
            "server_busy": (self.server.cpu_seconds() - self.server0) / wall,
        }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def versions() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "hubbub": version("hubbub"),
        "websockets": version("websockets"),
        "ag2": version("ag2"),
        "loop": "asyncio",
    }


def top_by_tottime(path: str, count: int, per: int) -> str:
    """The ``count`` functions with the most own time in a cProfile dump, in µs per ``per`` unit."""
    import pstats

    table: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values() if row) or 1.0
    lines = [f"{'ncalls':>8} {'own µs/msg':>10} {'own %':>6} {'cum µs/msg':>10}  function"]
    rows = sorted(table.items(), key=lambda kv: -kv[1][2])
    for (file, line, name), (_, ncalls, own, cum, _) in rows[:count]:
        where = (
            name if file == "~" else f"{file.split('/src/')[-1].split('/site-packages/')[-1]}:{line}({name})"
        )
        lines.append(
            f"{ncalls:>8} {own / per * 1e6:>10.2f} {own / total * 100:>5.1f}% "
            f"{cum / per * 1e6:>10.2f}  {where}"
        )
    return "\n".join(lines)
