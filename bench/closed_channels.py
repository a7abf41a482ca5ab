"""Memory of a hub that closes channels all day: closed channels leaving memory vs all kept.

Run: ``.venv/bin/python bench/closed_channels.py [--quick] [--json]``.

Workload (printed with the results): in this process, a ``Hub`` on ``SqliteStore`` (durability
"off": this measures memory, not the disk) and one ``HubClient(LocalLink)`` hosting an asker and
a ``FunctionAgent`` respondent; consultations one after another (``open("consulting", ...,
first=...)`` then ``wait_closed``). WARMUP consultations first (they fill the store's bounded
cache of recent envelopes, 65,536 at most), then WINDOW more; the figure is the growth of the
process's resident memory over the window, per consultation. The same run repeats with
``keep_closed`` high enough that nothing ever leaves memory (what the hub did before closed
channels could leave): the reference.

Expectation (no target in an issue): with the default ``keep_closed`` (10,000) the growth per
consultation is a small fraction of the reference's. Each run ends with two restarts of a hub
on the same file (``SqliteStore.open`` + ``Hub.start``, the second timed): with closed channels
leaving memory, the store has retired them and a start-up loads only the rest; the reference
loads every channel it ever closed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment
from hubbub import FunctionAgent, Hub, HubClient, LocalLink, SqliteStore
from hubbub.hub.channels import KEEP_CLOSED


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


async def one_run(keep_closed: int, warmup: int, window: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-") as tmp:
        store = await SqliteStore.open(f"{tmp}/hub.db", durability="off")
        async with Hub(store, keep_closed=keep_closed) as hub, HubClient(LocalLink(hub)) as client:
            asker = await client.register(name="asker", handle_turns=False)
            await client.register(FunctionAgent(lambda turn: "42", name="oracle"))

            async def consult(times: int) -> None:
                for _ in range(times):
                    channel = await asker.open("consulting", "oracle", first="why?")
                    await channel.wait_closed(timeout=30)

            await consult(warmup)
            gc.collect()
            before = rss_mib()
            started = time.perf_counter()
            await consult(window)
            seconds = time.perf_counter() - started
            gc.collect()
            after = rss_mib()
            result = {
                "keep_closed": keep_closed,
                "rss_before_mib": round(before, 1),
                "rss_after_mib": round(after, 1),
                "bytes_per_consultation": round((after - before) * 2**20 / window),
                "channels_in_memory": len(hub.channels),
                "consultations_per_s": round(window / seconds),
            }
        # A restart on the same file (a second one: the first after a build may still retire).
        for _ in range(2):
            started = time.perf_counter()
            store = await SqliteStore.open(f"{tmp}/hub.db", durability="off")
            async with Hub(store, keep_closed=keep_closed) as hub:
                result["restart_s"] = round(time.perf_counter() - started, 3)
                result["channels_loaded"] = len(await store.load_channels())
        return result


def run_apart(keep_closed: int, warmup: int, window: int) -> dict[str, Any]:
    """:func:`one_run` in a fresh process: memory freed by one run would hide the next one's growth."""
    argv = [sys.executable, __file__, "--one", str(keep_closed), str(warmup), str(window)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(args: argparse.Namespace) -> dict[str, Any]:
    def log(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    # The warm-up fills the store's cache of recent envelopes (65,536, 6 per consultation).
    warmup, window = (12_000, 6_000) if args.quick else (15_000, 15_000)
    keep = min(KEEP_CLOSED, warmup // 3)  # below the warm-up, so eviction is under way
    env = environment("hubbub")
    log("Memory of closed channels; " + ", ".join(f"{k} {v}" for k, v in env.items()))
    log(
        f"Workload: in process, SqliteStore (durability off), {warmup:,} consultations to warm up, then "
        f"{window:,} measured;\nRSS growth over the measured ones per consultation, with keep_closed "
        f"= {keep:,} (closed channels leave memory) and with nothing leaving; each in its own process."
    )
    evicting = run_apart(keep, warmup, window)
    kept = run_apart(10 * (warmup + window), warmup, window)
    for name, run in (("closed leave", evicting), ("all kept", kept)):
        log(
            f"  {name:12} RSS {run['rss_before_mib']} -> {run['rss_after_mib']} MiB: "
            f"{run['bytes_per_consultation']:,} bytes per consultation; "
            f"{run['channels_in_memory']:,} channels in memory; {run['consultations_per_s']:,}/s;\n"
            f"  {'':12} restart {run['restart_s']:.2f} s loading {run['channels_loaded']:,} channels"
        )
    ratio = evicting["bytes_per_consultation"] / max(1, kept["bytes_per_consultation"])
    restart = evicting["restart_s"] / max(1e-9, kept["restart_s"])
    log(f"growth per consultation, closed channels leaving / all kept: {ratio:.2f}")
    log(f"restart time, closed channels retired / all kept: {restart:.2f}")
    return {
        "evicting": evicting,
        "all_kept": kept,
        "ratio": round(ratio, 3),
        "restart_ratio": round(restart, 3),
        "environment": env,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="12,000 + 6,000 consultations per run")
    parser.add_argument("--json", action="store_true", help="print one JSON line on stdout (report: stderr)")
    parser.add_argument(
        "--one", nargs=3, type=int, metavar=("KEEP", "WARMUP", "WINDOW"), help=argparse.SUPPRESS
    )
    arguments = parser.parse_args()
    if arguments.one:
        print(json.dumps(asyncio.run(one_run(*arguments.one))))
    else:
        result = main(arguments)
        if arguments.json:
            print(json.dumps(result))
