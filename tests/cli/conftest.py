"""The command line against a real hub: ``serve_ws`` on 127.0.0.1 port 0, in a thread of its own.

``hubbub`` runs its own event loop (``asyncio.run``), so the hub it talks to
runs on another: :class:`ThreadHub` starts one in a thread, and ``run``
executes a coroutine there (to register worker agents, which then keep
answering from the hub's loop). Tests call the real ``main(argv)`` and read
what it printed with ``capsys``; tables come out 200 columns wide.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from hubbub import AuthRegistry, Hub, HubClient, LocalLink, serve_ws
from hubbub.cli import main
from tests.conftest import TIME_UNIT

T = TypeVar("T")


class ThreadHub:
    """A hub served over WebSocket from a background thread's event loop."""

    def __init__(
        self, auth: AuthRegistry | None = None, *, invite_ack_timeout: float = 5 * TIME_UNIT
    ) -> None:
        self._auth = auth
        self._invite_ack_timeout = invite_ack_timeout
        self._loop = asyncio.new_event_loop()
        self._ready: Future[str] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="hubbub-test-hub", daemon=True)
        self.hub: Hub
        self.client: HubClient
        """A client in the hub's loop, over LocalLink: register worker agents through it."""
        self.url = ""

    def _main(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with (
                Hub(invite_ack_timeout=self._invite_ack_timeout, auth=self._auth) as hub,
                serve_ws(hub) as server,
                HubClient(LocalLink(hub)) as client,
            ):
                self.hub, self.client = hub, client
                self._ready.set_result(server.url)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def start(self) -> ThreadHub:
        self._thread.start()
        self.url = self._ready.result(timeout=10 * TIME_UNIT)
        return self

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``await make()`` on the hub's loop and return its result."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30 * TIME_UNIT)

    def stop(self) -> None:
        """Close the hub and its server (idempotent)."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10 * TIME_UNIT)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HUBBUB_* from the outside, and a fixed table width."""
    for name in ("HUBBUB_URL", "HUBBUB_KEY", "HUBBUB_AS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def served() -> Iterator[ThreadHub]:
    hub = ThreadHub().start()
    try:
        yield hub
    finally:
        hub.stop()


class Cli:
    """Run ``hubbub ARGS --url <the hub>`` in process; returns (status, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], url: str) -> None:
        self._capsys = capsys
        self.url = url

    def __call__(self, *args: str, url: bool = True) -> tuple[int, str, str]:
        self._capsys.readouterr()
        status = main([*args, "--url", self.url] if url else list(args))
        out, err = self._capsys.readouterr()
        return status, out, err

    def json(self, *args: str) -> Any:
        import json

        status, out, err = self(*args, "--json")
        assert status == 0, err
        return json.loads(out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], served: ThreadHub) -> Cli:
    return Cli(capsys, served.url)
