"""Shared fixtures: a started in-memory hub and a client connected to it.

``client`` runs every test that uses it twice: over ``LocalLink`` (in
process) and over ``WsLink`` to ``serve_ws(hub)`` on 127.0.0.1 (real
sockets), because the client API must behave the same over both links.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from hubbub import Hub, HubClient, LocalLink, WsLink, serve_ws

TIME_UNIT = float(os.environ.get("HUBBUB_TEST_TIME_UNIT", "1"))
"""Scale every timeout in the tests (slow machines: HUBBUB_TEST_TIME_UNIT=3)."""


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub(invite_ack_timeout=5 * TIME_UNIT) as h:
        yield h


@pytest.fixture(params=["local", "ws"])
def link(request: pytest.FixtureRequest) -> str:
    """Which link the ``client`` fixture uses."""
    return str(request.param)


@pytest.fixture
async def client(hub: Hub, link: str) -> AsyncIterator[HubClient]:
    if link == "local":
        async with HubClient(LocalLink(hub)) as c:
            yield c
        return
    async with serve_ws(hub) as server, HubClient(WsLink(server.url)) as c:
        yield c
