"""``hubbub serve``: a hub on SQLite behind a WebSocket, until SIGINT or SIGTERM.

Settings come from, in order of precedence: command-line flags, ``HUBBUB_*``
environment variables (``HUBBUB_HOST``, ``HUBBUB_PORT``, ``HUBBUB_DB``,
``HUBBUB_DURABILITY``, ``HUBBUB_TLS_CERT``, ``HUBBUB_TLS_KEY``,
``HUBBUB_ALLOW_UNAUTHENTICATED``, ``HUBBUB_MAX_FRAME_BYTES``, ``HUBBUB_PING_INTERVAL``,
``HUBBUB_PING_TIMEOUT``, ``HUBBUB_CHECKPOINT_MAX_BYTES``, ``HUBBUB_KEEP_CLOSED``,
``HUBBUB_RETAIN_CLOSED``, ``HUBBUB_CLOSED_MAX_ENVELOPES``, ``HUBBUB_RETAIN_AUDIT``, ``HUBBUB_AUDIT_MAX_ROWS``,
``HUBBUB_RETENTION_EVERY``, ``HUBBUB_LOOP``), a TOML config file (``--config``, keys named like
the flags with underscores), then the defaults below.

Retention: with any of ``retain_closed`` (a duration such as ``"30d"``: how
long a closed channel's WAL is kept after it closed), ``closed_max_envelopes``
(how many envelopes closed channels may hold in all), ``retain_audit`` (how
long audit records are kept) or ``audit_max_rows`` set, the hub compacts its
store at start and then every ``retention_every`` (default ``"1h"``), see
:meth:`~hubbub.hub.core.Hub.compact`. Unset, everything is kept for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgspec

from .auth import ApiKeyAuth, AuthRegistry
from .errors import HubbubError, UsageError
from .hub.channels import KEEP_CLOSED
from .hub.core import Hub
from .model.checkpoint import MAX_CHECKPOINT_BYTES
from .model.rule import parse_duration
from .storage.retention import RetentionPolicy
from .storage.sqlite import SqliteStore
from .transport.ws_server import DEFAULT_MAX_FRAME_BYTES, is_loopback, serve_ws

__all__ = ["GC_THRESHOLDS", "ServeConfig", "event_loop", "load_config", "run_server", "tune_gc"]

log = logging.getLogger("hubbub.serve")

Durability = Literal["full", "normal", "off"]
LoopChoice = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class ServeConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything ``hubbub serve`` needs; see the module docstring for where values come from."""

    host: str = "127.0.0.1"
    port: int = 8765
    db: str = "hubbub.db"
    durability: Durability = "full"
    tls_cert: str | None = None
    tls_key: str | None = None
    allow_unauthenticated: bool = False
    auth_keys: str | None = None
    """File of ``name: key`` lines (or a JSON object): agents must present ``{"api_key": key}``."""
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ping_interval: float = 20.0
    """Seconds between heartbeat pings on each connection; 0 turns heartbeats off."""
    ping_timeout: float = 20.0
    """Seconds to wait for the pong before dropping the connection (and unbinding its agents)."""
    max_inflight_requests: int = 64
    """Requests one connection may have running at once; more get a failed response at once."""
    checkpoint_max_bytes: int = MAX_CHECKPOINT_BYTES
    keep_closed: int = KEEP_CLOSED
    retain_closed: str | float | None = None
    closed_max_envelopes: int | None = None
    retain_audit: str | float | None = None
    audit_max_rows: int | None = None
    retention_every: str | float = "1h"
    loop: LoopChoice = "auto"
    """The event loop: ``uvloop`` (less CPU per frame and per wake-up), ``asyncio`` (the standard
    library's), or ``auto``: uvloop when it is installed (a dependency of hubbub except on Windows)."""

    def retention(self) -> tuple[RetentionPolicy, float]:
        """The retention policy these settings ask for, and seconds between two compactions."""
        try:
            every = parse_duration(self.retention_every)
            policy = RetentionPolicy.from_settings(
                retain_closed=self.retain_closed,
                retain_audit=self.retain_audit,
                audit_max_rows=self.audit_max_rows,
                closed_max_envelopes=self.closed_max_envelopes,
            )
        except UsageError as exc:
            raise UsageError(f"bad retention setting: {exc}") from exc
        if every <= 0:
            raise UsageError(f"retention_every must be above 0, got {self.retention_every!r}")
        return policy, every


_ENV = {
    "host": "HUBBUB_HOST",
    "port": "HUBBUB_PORT",
    "db": "HUBBUB_DB",
    "durability": "HUBBUB_DURABILITY",
    "tls_cert": "HUBBUB_TLS_CERT",
    "tls_key": "HUBBUB_TLS_KEY",
    "allow_unauthenticated": "HUBBUB_ALLOW_UNAUTHENTICATED",
    "auth_keys": "HUBBUB_AUTH_KEYS",
    "max_frame_bytes": "HUBBUB_MAX_FRAME_BYTES",
    "max_inflight_requests": "HUBBUB_MAX_INFLIGHT_REQUESTS",
    "checkpoint_max_bytes": "HUBBUB_CHECKPOINT_MAX_BYTES",
    "keep_closed": "HUBBUB_KEEP_CLOSED",
    "retain_closed": "HUBBUB_RETAIN_CLOSED",
    "closed_max_envelopes": "HUBBUB_CLOSED_MAX_ENVELOPES",
    "retain_audit": "HUBBUB_RETAIN_AUDIT",
    "audit_max_rows": "HUBBUB_AUDIT_MAX_ROWS",
    "retention_every": "HUBBUB_RETENTION_EVERY",
    "ping_interval": "HUBBUB_PING_INTERVAL",
    "ping_timeout": "HUBBUB_PING_TIMEOUT",
    "loop": "HUBBUB_LOOP",
}


def load_config(
    flags: Mapping[str, Any], *, config_file: str | None = None, environ: Mapping[str, str] | None = None
) -> ServeConfig:
    """Merge defaults, the config file, ``HUBBUB_*`` variables and flags (None = not given)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # setting -> where its value came from, for error messages
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                values.update(tomllib.load(fh))
        except OSError as exc:
            raise UsageError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"config file {config_file} is not valid TOML: {exc}") from exc
        sources.update((key, f"config file {config_file}") for key in values)
    env = os.environ if environ is None else environ
    for field, name in _ENV.items():
        if name in env:
            values[field] = env[name]
            sources[field] = name
    given = {k: v for k, v in flags.items() if v is not None}
    values.update(given)
    sources.update((key, "--" + key.replace("_", "-")) for key in given)
    try:
        config = msgspec.convert(values, ServeConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise UsageError(_bad_setting(exc, values, sources)) from exc
    config = msgspec.structs.replace(config, db=os.path.abspath(config.db))
    if not 0 <= config.port <= 65535:
        raise UsageError(f"port must be 0 to 65535, got {config.port}")
    if config.ping_interval < 0 or config.ping_timeout <= 0:
        raise UsageError(
            f"ping interval must be 0 (off) or more and ping timeout above 0, got "
            f"{config.ping_interval:g} and {config.ping_timeout:g}"
        )
    if (config.tls_cert is None) != (config.tls_key is None):
        raise UsageError("TLS needs both --tls-cert and --tls-key")
    config.retention()  # checked now: a bad duration stops serve before it binds
    if config.max_inflight_requests < 1:
        raise UsageError(f"max_inflight_requests must be 1 or more, got {config.max_inflight_requests}")
    if config.checkpoint_max_bytes < 1:
        raise UsageError(f"checkpoint_max_bytes must be 1 or more, got {config.checkpoint_max_bytes}")
    if config.keep_closed < 0:
        raise UsageError(f"keep_closed must be 0 or more, got {config.keep_closed}")
    if not is_loopback(config.host) and not config.allow_unauthenticated and not config.auth_keys:
        raise UsageError(
            f"refusing to serve on {config.host} without authentication: anyone who can reach it could act "
            "as any agent. Pass --auth-keys FILE, serve on 127.0.0.1, or pass --allow-unauthenticated "
            "if the network is trusted"
        )
    return config


_ALLOWED = {
    "durability": "full, normal or off",
    "loop": "auto, uvloop or asyncio",
    "allow_unauthenticated": "true or false (1 or 0)",
}


_KINDS = {
    "int": "a whole number",
    "int | null": "a whole number",
    "float": "a number of seconds",
    "str | float": "a duration such as 30s, 15m, 2h or 30d",
    "float | str": "a duration such as 30s, 15m, 2h or 30d",
    "float | str | null": "a duration such as 30s, 15m, 2h or 30d",
    "str | float | null": "a duration such as 30s, 15m, 2h or 30d",
    "str": "text",
    "str | null": "text",
}


def _bad_setting(exc: msgspec.ValidationError, values: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    """``exc`` as a user's error: which setting, from where, what it should be."""
    problem, _, path = str(exc).partition(" - at `$.")
    setting = path.rstrip("`").split(".")[0].split("[")[0]
    if setting not in values:
        return f"bad setting for hubbub serve: {exc}"
    allowed = _ALLOWED.get(setting)
    if allowed is None:
        wanted = problem.removeprefix("Expected `").split("`")[0] if problem.startswith("Expected") else ""
        allowed = _KINDS.get(wanted, wanted or problem)
    return (
        f"bad setting {setting} = {values[setting]!r} (from {sources.get(setting, 'defaults')}): "
        f"it must be {allowed}"
    )


def event_loop(choice: LoopChoice) -> tuple[LoopFactory | None, str]:
    """The loop factory for ``choice`` (None: asyncio's default) and the loop's name."""
    if choice == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise UsageError(
                "loop uvloop asked for, but uvloop is not installed: pip install uvloop, "
                "or pass --loop asyncio"
            ) from None
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


GC_THRESHOLDS = (20_000, 20, 100)
"""The collector's thresholds in a serving process (Python's default: 700, 10, 10).

A hub allocates many short-lived objects per frame (frames, envelopes, futures) that reference
counting frees at once; at the default a young-generation collection runs every few hundred
frames and a full one every few thousand, scanning everything the hub holds. These thresholds
make collections ~30x rarer; the cyclic garbage that waits meanwhile is small. Measured on
bench/ws_relay.py: +12% saturation throughput, a lower p99."""


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` for this process (what ``hubbub serve`` does before serving)."""
    gc.set_threshold(*GC_THRESHOLDS)


def _ssl_context(config: ServeConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot load TLS certificate {config.tls_cert} / key {config.tls_key}: {exc}"
        ) from exc
    return context


async def run_server(config: ServeConfig, *, say: Callable[[str], None] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; then finish in-flight commits and close connections (code 1001)."""
    say = say or (lambda line: print(line, flush=True))
    tls = _ssl_context(config)
    auth = AuthRegistry([ApiKeyAuth.from_file(config.auth_keys)]) if config.auth_keys else AuthRegistry()
    policy, every = config.retention()
    store = await SqliteStore.open(config.db, durability=config.durability)
    hub = Hub(
        store, auth=auth, checkpoint_max_bytes=config.checkpoint_max_bytes, keep_closed=config.keep_closed
    )
    await hub.start()
    thresholds = gc.get_threshold()
    tune_gc()
    retention: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serve_ws(
            hub,
            config.host,
            config.port,
            ssl_context=tls,
            max_frame_bytes=config.max_frame_bytes,
            max_inflight_requests=config.max_inflight_requests,
            ping_interval=config.ping_interval or None,
            ping_timeout=config.ping_timeout,
            allow_unauthenticated=config.allow_unauthenticated,
        ) as server:
            url = server.url  # an IPv6 host in brackets
            status = hub.status()
            say(
                f"hubbub serving on {url} (db {config.db}, durability {config.durability}, "
                f"loop {_loop_name()}, "
                f"auth {'/'.join(auth.schemes)}; "
                f"{status['agents']} agents, {status['channels']} channels)"
            )
            say(f'connect from Python: HubClient(WsLink("{url}")); stop with Ctrl-C or SIGTERM')
            if not policy.empty:
                retention = asyncio.create_task(_retain(hub, policy, every, say))
            await stop.wait()
            say("hubbub stopping: closing connections and flushing the database")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if retention is not None:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
        await hub.aclose()
        gc.set_threshold(*thresholds)
    say("hubbub stopped")
    return 0


async def _retain(hub: Hub, policy: RetentionPolicy, every: float, say: Callable[[str], None]) -> None:
    """Compact now and then every ``every`` seconds; a failed compaction is reported, not fatal."""
    while True:
        try:
            report = await hub.compact(policy)
        except HubbubError as exc:
            log.error("retention: compaction failed: %s", exc)
        except Exception:  # a bug must not end retention for the life of the hub
            log.exception("retention: compaction failed")
        else:
            if report.envelopes or report.audit_records:
                say(f"retention: {report}")
        await asyncio.sleep(every)


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def main(flags: Mapping[str, Any], config_file: str | None) -> int:
    """Entry for the CLI: a clear one-line error and exit status 2 for bad settings."""
    config: ServeConfig | None = None
    try:
        config = load_config(flags, config_file=config_file)
        factory, _ = event_loop(config.loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(run_server(config))
    except UsageError as exc:
        print(f"hubbub serve: {exc}", file=sys.stderr)
        return 2
    except HubbubError as exc:
        print(f"hubbub serve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"hubbub serve: {_os_error(exc, config)}", file=sys.stderr)
        return 1


def _os_error(exc: OSError, config: ServeConfig | None) -> str:
    if config is None:
        return str(exc)
    where = f"{config.host}:{config.port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: {exc.strerror}; check --host (a name or address of this machine)"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the address is in use; pick another --port, or stop what uses it"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: no such address on this machine; check --host"
    return f"cannot listen on {where}: {exc.strerror or exc}"
