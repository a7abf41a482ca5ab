"""``hubbub serve`` settings: flags over HUBBUB_* over the config file over defaults; bad values refused."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from pathlib import Path

import pytest

from hubbub import UsageError
from hubbub.server import GC_THRESHOLDS, ServeConfig, event_loop, load_config, run_server


def test_defaults() -> None:
    config = load_config({}, environ={})
    assert config == ServeConfig(db=os.path.abspath("hubbub.db"))
    assert (config.host, config.port, config.durability) == ("127.0.0.1", 8765, "full")


def test_precedence_flags_then_environment_then_file(tmp_path: Path) -> None:
    file = tmp_path / "hub.toml"
    file.write_text('port = 1111\ndb = "file.db"\ndurability = "off"\n')
    env = {"HUBBUB_PORT": "2222", "HUBBUB_DURABILITY": "normal"}
    config = load_config({"port": 3333, "host": None}, config_file=str(file), environ=env)
    assert config.port == 3333
    assert config.durability == "normal"
    assert config.db == os.path.abspath("file.db")
    assert config.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"port": -1}, {}, "port must be 0 to 65535"),
        (
            {},
            {"HUBBUB_PORT": "eighty"},
            "bad setting port = 'eighty' (from HUBBUB_PORT): it must be a whole number",
        ),
        (
            {},
            {"HUBBUB_DURABILITY": "sometimes"},
            "bad setting durability = 'sometimes' (from HUBBUB_DURABILITY): it must be full, normal or off",
        ),
        (
            {},
            {"HUBBUB_ALLOW_UNAUTHENTICATED": "yes"},
            "allow_unauthenticated = 'yes' (from HUBBUB_ALLOW_UNAUTHENTICATED): it must be true or false",
        ),
        (
            {},
            {"HUBBUB_PING_INTERVAL": "20s"},
            "ping_interval = '20s' (from HUBBUB_PING_INTERVAL): it must be a number",
        ),
        ({"host": "192.168.1.5"}, {}, "refusing to serve on 192.168.1.5"),
        ({"tls_key": "k.pem"}, {}, "TLS needs both"),
        ({"retain_closed": "soon"}, {}, "bad retention setting: cannot read duration 'soon'"),
        ({}, {"HUBBUB_RETENTION_EVERY": "0s"}, "retention_every must be above 0"),
        ({"audit_max_rows": -5}, {}, "audit_max_rows must be an int (0 or more)"),
        ({}, {"HUBBUB_CHECKPOINT_MAX_BYTES": "0"}, "checkpoint_max_bytes must be 1 or more"),
        ({"keep_closed": -1}, {}, "keep_closed must be 0 or more"),
        ({"ping_interval": -1}, {}, "ping interval must be 0 (off) or more"),
        ({}, {"HUBBUB_PING_TIMEOUT": "0"}, "ping timeout above 0"),
        ({"max_inflight_requests": 0}, {}, "max_inflight_requests must be 1 or more"),
        ({}, {"HUBBUB_LOOP": "fast"}, "loop = 'fast' (from HUBBUB_LOOP): it must be auto, uvloop or asyncio"),
    ],
)
def test_bad_settings(flags: dict[str, object], environ: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as err:
        load_config(flags, environ=environ)
    assert message in str(err.value)


def test_heartbeat_settings_from_flags_and_environment() -> None:
    config = load_config({"ping_interval": 2.5}, environ={"HUBBUB_PING_TIMEOUT": "4"})
    assert (config.ping_interval, config.ping_timeout) == (2.5, 4.0)
    assert load_config({}, environ={}).ping_interval == 20.0


def test_request_concurrency_from_flags_and_environment() -> None:
    assert load_config({}, environ={}).max_inflight_requests == 64
    assert load_config({}, environ={"HUBBUB_MAX_INFLIGHT_REQUESTS": "512"}).max_inflight_requests == 512
    flags = {"max_inflight_requests": 1024}
    assert load_config(flags, environ={"HUBBUB_MAX_INFLIGHT_REQUESTS": "512"}).max_inflight_requests == 1024


def test_unknown_key_in_the_config_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "hub.toml"
    file.write_text("prot = 1\n")
    with pytest.raises(UsageError) as err:
        load_config({}, config_file=str(file), environ={})
    assert "prot" in str(err.value)


def test_non_loopback_needs_explicit_permission() -> None:
    config = load_config({"host": "0.0.0.0", "allow_unauthenticated": True}, environ={})
    assert config.host == "0.0.0.0"


def test_retention_settings_from_flags_environment_and_file(tmp_path: Path) -> None:
    assert load_config({}, environ={}).retention()[0].empty
    file = tmp_path / "hub.toml"
    file.write_text('retain_closed = "30d"\nretain_audit = 3600\naudit_max_rows = 500\n')
    env = {"HUBBUB_RETAIN_AUDIT": "2h", "HUBBUB_RETENTION_EVERY": "10m", "HUBBUB_CLOSED_MAX_ENVELOPES": "7"}
    config = load_config({"audit_max_rows": 100}, config_file=str(file), environ=env)
    policy, every = config.retention()
    assert (policy.closed_wal_after, policy.audit_after, policy.audit_max_rows) == (30 * 86400, 7200, 100)
    assert policy.closed_wal_max_envelopes == 7
    assert every == 600
    only_size = load_config({"closed_max_envelopes": 1000}, environ={}).retention()[0]
    assert not only_size.empty
    assert only_size.drops_wals


def test_event_loop_from_flags_and_environment() -> None:
    assert load_config({}, environ={}).loop == "auto"
    assert load_config({}, environ={"HUBBUB_LOOP": "asyncio"}).loop == "asyncio"
    assert load_config({"loop": "uvloop"}, environ={"HUBBUB_LOOP": "asyncio"}).loop == "uvloop"


def test_auto_picks_uvloop_when_installed_and_asyncio_is_always_there() -> None:
    import uvloop

    assert event_loop("auto") == (uvloop.new_event_loop, "uvloop")
    assert event_loop("uvloop") == (uvloop.new_event_loop, "uvloop")
    assert event_loop("asyncio") == (None, "asyncio")


def test_without_uvloop_auto_falls_back_and_asking_for_it_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert event_loop("auto") == (None, "asyncio")
    with pytest.raises(UsageError) as err:
        event_loop("uvloop")
    assert "uvloop is not installed: pip install uvloop, or pass --loop asyncio" in str(err.value)


async def test_serving_raises_the_collectors_thresholds_and_stopping_restores_them(tmp_path: Path) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    seen: dict[str, tuple[int, ...]] = {}

    def say(line: str) -> None:
        if line.startswith("hubbub serving"):
            seen["serving"] = gc.get_threshold()
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    config = load_config({"port": 0, "db": str(tmp_path / "hub.db")}, environ={})
    assert await run_server(config, say=say) == 0
    assert seen["serving"] == GC_THRESHOLDS
    assert gc.get_threshold() == before


def test_closed_channels_kept_in_memory_from_flags_and_environment() -> None:
    assert load_config({}, environ={}).keep_closed == 10_000
    assert load_config({}, environ={"HUBBUB_KEEP_CLOSED": "50"}).keep_closed == 50
    assert load_config({"keep_closed": 7}, environ={"HUBBUB_KEEP_CLOSED": "50"}).keep_closed == 7


def test_a_bad_value_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('ping_interval = "20s"\nretain_closed = [1]\n')
    with pytest.raises(UsageError) as err:
        load_config({}, config_file=str(config), environ={})
    assert f"(from config file {config}): it must be a number of seconds" in str(err.value)
