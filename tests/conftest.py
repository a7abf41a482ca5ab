"""Shared fixtures: a started in-memory hub and a client connected to it in process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from hubbub import Hub, HubClient, LocalLink

TIME_UNIT = float(os.environ.get("HUBBUB_TEST_TIME_UNIT", "1"))
"""Scale every timeout in the tests (slow machines: HUBBUB_TEST_TIME_UNIT=3)."""


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub(invite_ack_timeout=5 * TIME_UNIT) as h:
        yield h


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[HubClient]:
    async with HubClient(LocalLink(hub)) as c:
        yield c
