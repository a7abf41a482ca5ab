"""``hubbub serve`` in its own process: agents connect over WebSocket, SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from hubbub import (
    EV_TEXT,
    AuthBlock,
    AuthError,
    ChannelState,
    FunctionAgent,
    HubClient,
    Passport,
    SqliteStore,
    TransportError,
    WsLink,
)
from tests.conftest import TIME_UNIT

SERVE = [sys.executable, "-m", "hubbub.cli", "serve"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ}
    )


@pytest.fixture(params=["auto", "asyncio"])
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """``hubbub serve`` on uvloop (auto: it is installed with hubbub) and on asyncio's loop."""
    db = tmp_path / "hub.db"
    loop = request.param
    proc = _start("--port", "0", "--db", str(db), *(["--loop", loop] if loop != "auto" else []))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("hubbub serving on ws://127.0.0.1:"), first + (
            proc.stderr.read() if proc.stderr else ""
        )
        url = first.split()[3]
        assert str(db) in first
        assert f"loop {'uvloop' if loop == 'auto' else loop}," in first
        yield proc, url, db
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
async def remote(served: tuple[subprocess.Popen[str], str, Path]) -> AsyncIterator[HubClient]:
    async with HubClient(WsLink(served[1])) as client:
        yield client


async def test_agents_talk_through_a_served_hub_and_it_stops_cleanly(
    served: tuple[subprocess.Popen[str], str, Path], remote: HubClient
) -> None:
    proc, _, db = served
    alice = await remote.register(name="alice", handle_turns=False)
    await remote.register(FunctionAgent(lambda turn: f"echo: {turn.prompt}", name="echo"))
    channel = await alice.open("consulting", "echo")
    await channel.send("hello over the wire")
    final = await channel.wait_closed(timeout=10 * TIME_UNIT)
    assert final.state is ChannelState.CLOSED
    texts = [e.text for e in await channel.read() if e.event_type == EV_TEXT]
    assert texts == ["hello over the wire", "echo: hello over the wire"]
    await remote.aclose()

    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == 0, err
    assert "hubbub stopped" in out

    store = await SqliteStore.open(db)
    try:
        wal = await store.read_wal(channel.id)
        assert [e.text for e in wal if e.event_type == EV_TEXT] == texts
        assert [a.passport.name for a in await store.load_agents()] == ["alice", "echo"]
    finally:
        await store.aclose()


async def test_a_hub_served_over_tls_talks_wss_only(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    proc = _start(
        "--port", "0", "--db", str(tmp_path / "hub.db"),
        "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = await asyncio.to_thread(proc.stdout.readline)
        assert first.startswith("hubbub serving on wss://127.0.0.1:"), first
        url = first.split()[3]
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        async with HubClient(WsLink(url, ssl_context=trusting)) as client:
            alice = await client.register(name="alice", handle_turns=False)
            await client.register(FunctionAgent(lambda turn: f"echo: {turn.prompt}", name="echo"))
            channel = await alice.open("consulting", "echo", first="over tls")
            final = await channel.wait_closed(timeout=10 * TIME_UNIT)
            assert final.close_reason == "consulting_complete"
        # A client that does not trust the certificate cannot connect.
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            async with HubClient(WsLink(url, ssl_context=ssl.create_default_context())):
                pass
        # The command line says what to do about either mistake.
        cli = [sys.executable, "-m", "hubbub.cli", "status", "--url"]
        untrusted = await asyncio.to_thread(subprocess.run, [*cli, url], capture_output=True, text=True)
        assert untrusted.returncode == 3
        assert "the hub's TLS certificate is not trusted here" in untrusted.stderr
        assert "SSL_CERT_FILE" in untrusted.stderr
        plain = url.replace("wss://", "ws://")
        wrong_scheme = await asyncio.to_thread(subprocess.run, [*cli, plain], capture_output=True, text=True)
        assert wrong_scheme.returncode == 3
        assert "if the hub serves TLS (hubbub serve --tls-cert), use a wss:// URL" in wrong_scheme.stderr
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        trusted = await asyncio.to_thread(
            subprocess.run,
            [*cli, url],
            capture_output=True,
            text=True,
            env={**os.environ, "SSL_CERT_FILE": str(tmp_path / "ca.pem")},
        )
        assert trusted.returncode == 0, trusted.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == 0


def test_an_ipv6_host_is_announced_in_brackets(tmp_path: Path) -> None:
    proc = _start("--host", "::1", "--port", "0", "--db", str(tmp_path / "hub.db"))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("hubbub serving on ws://[::1]:"), first
        assert 'HubClient(WsLink("ws://[::1]:' in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "refusing to serve on 0.0.0.0 without authentication"),
        (["--tls-cert", "cert.pem"], "TLS needs both --tls-cert and --tls-key"),
        (["--port", "70000"], "port must be 0 to 65535"),
        (["--durability", "sometimes"], "invalid choice: 'sometimes'"),
        (["--max-inflight-requests", "0"], "max_inflight_requests must be 1 or more"),
        (["--loop", "fast"], "invalid choice: 'fast'"),
    ],
)
def test_bad_settings_fail_with_one_clear_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [*SERVE, "--db", str(tmp_path / "x.db"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_corrupt_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    db.write_bytes(b"this is not a database at all" * 100)
    result = subprocess.run(
        [*SERVE, "--port", "0", "--db", str(db)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert str(db) in result.stderr
    assert result.stdout == ""


def test_environment_and_config_file_settings(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('host = "10.1.2.3"\nport = 9000\n')
    result = subprocess.run(
        [*SERVE, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HUBBUB_DB": str(tmp_path / "env.db")},
    )
    assert result.returncode == 2
    assert "refusing to serve on 10.1.2.3" in result.stderr


async def test_serve_with_api_keys_demands_them(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("alice: k-0123456789abcdef\n")
    proc = _start("--port", "0", "--db", str(tmp_path / "hub.db"), "--auth-keys", str(keys))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "auth api_key" in first, first
        url = first.split()[3]
        async with HubClient(WsLink(url)) as client:
            with pytest.raises(AuthError):
                await client.register(name="alice")
            claim = AuthBlock(scheme="api_key", claim={"api_key": "k-0123456789abcdef"})
            alice = await client.register(passport=Passport(name="alice", auth=claim))
            assert alice.passport.auth.claim == {}
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.communicate, timeout=20)
    assert proc.returncode == 0


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_readme_remote_snippet_talks_to_a_served_hub(served: tuple[subprocess.Popen[str], str, Path]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [snippet] = [b for b in readme.split("```python\n") if 'WsLink("ws://127.0.0.1:8765")' in b]
    code = snippet.split("```")[0].replace("ws://127.0.0.1:8765", served[1])
    first = _run_python(code)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "['hello over the wire', 'HELLO OVER THE WIRE']", first.stdout
    again = _run_python(code)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        "hubbub.errors.UsageError: an agent named 'shouter' is already registered; pick another name,"
        " or attach to the existing identity with HubClient.attach()"
    )


def test_where_it_cannot_listen_is_named_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [*SERVE, "--port", str(port), "--db", str(tmp_path / "a.db")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use; pick another --port" in busy.stderr
    unknown = subprocess.run(
        [*SERVE, "--host", "nosuchhost.invalid", "--allow-unauthenticated", "--db", str(tmp_path / "b.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 1
    assert "cannot listen on nosuchhost.invalid:8765" in unknown.stderr
    assert "check --host" in unknown.stderr
