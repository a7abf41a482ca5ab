"""Helpers the in-process benchmarks share: runs and their statistics, environment, verdicts, the loop."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import sqlite3
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Series", "add_loop_flag", "environment", "percentile", "load_average", "loop_choice", "verdict"]


@dataclass
class Series:
    """Repeated measurements of one figure; ``higher_is_better`` picks what "best" means."""

    name: str
    values: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    skipped: str | None = None

    @property
    def best(self) -> float:
        if not self.values:
            return 0.0
        return max(self.values) if self.higher_is_better else min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else 0.0

    def as_dict(self, digits: int = 1) -> dict[str, Any]:
        return {
            "best": round(self.best, digits),
            "median": round(self.median, digits),
            "runs": [round(v, digits) for v in self.values],
            "skipped": self.skipped,
        }


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def environment(*packages: str) -> dict[str, str]:
    """Python, SQLite, CPU count, load average and the versions of ``packages``."""

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    env = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": str(os.cpu_count()),
        "load": load_average(),
    }
    return env | {name: version(name) for name in packages}


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


LOOPS = ("asyncio", "uvloop")


def add_loop_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="asyncio",
        help="event loop for both hubs (default asyncio: what asyncio.run gives an application)",
    )


def loop_choice(name: str) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """The loop factory for ``name`` (None: asyncio's), and the loop's name."""
    if name == "asyncio":
        return None, "asyncio"
    import uvloop

    return uvloop.new_event_loop, "uvloop"
