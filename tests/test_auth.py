"""Authentication at registration and at every later connection, over the real WebSocket."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hubbub import AuthBlock, AuthError, Hub, HubClient, Passport, UsageError, WsLink, serve_ws
from hubbub.auth import ApiKeyAuth, AuthRegistry, NoAuth

KEY = "k-0123456789abcdef"


def keyed(name: str, key: str = KEY) -> Passport:
    return Passport(name=name, auth=AuthBlock(scheme="api_key", claim={"api_key": key}))


@pytest.fixture
async def secured() -> Any:
    auth = AuthRegistry([ApiKeyAuth({"alice": KEY, "bob": "b-0123456789abcdef"})])
    async with Hub(auth=auth) as hub, serve_ws(hub, port=0) as server:
        yield hub, server


async def test_register_with_the_right_key_and_the_claim_is_never_stored(secured: Any) -> None:
    hub, server = secured
    async with HubClient(WsLink(server.url)) as client:
        alice = await client.register(passport=keyed("alice"))
    stored = hub.get_agent("alice")
    assert stored.auth.scheme == "api_key"
    assert stored.auth.claim == {}
    assert alice.passport.auth.claim == {}


@pytest.mark.parametrize(
    ("passport", "message"),
    [
        (keyed("alice", "wrong-key-0123456789"), "wrong API key for alice"),
        (keyed("mallory"), "wrong API key for mallory"),
        (Passport(name="alice"), "auth scheme 'none' is not accepted by this hub; it accepts ['api_key']"),
        (Passport(name="alice", auth=AuthBlock(scheme="api_key")), "must present claim"),
    ],
)
async def test_register_is_refused_without_the_right_credential(
    secured: Any, passport: Passport, message: str
) -> None:
    hub, server = secured
    async with HubClient(WsLink(server.url)) as client:
        with pytest.raises(AuthError) as err:
            await client.register(passport=passport)
    assert message in str(err.value)
    assert hub.list_agents() == []


async def test_reattach_presents_the_credential_again(secured: Any) -> None:
    hub, server = secured
    async with HubClient(WsLink(server.url)) as first:
        await first.register(passport=keyed("alice"))
    async with HubClient(WsLink(server.url)) as thief:
        with pytest.raises(AuthError) as err:
            await thief.attach(None, "alice")
        assert "registered with auth scheme 'api_key', not 'none'" in str(err.value)
        with pytest.raises(AuthError):
            await thief.attach(
                None, "alice", auth=AuthBlock(scheme="api_key", claim={"api_key": "b-0123456789abcdef"})
            )
    async with HubClient(WsLink(server.url)) as again:
        alice = await again.attach(None, "alice", auth=AuthBlock(scheme="api_key", claim={"api_key": KEY}))
        assert alice.passport.agent_id == hub.get_agent("alice").agent_id


async def test_api_key_file_formats(tmp_path: Path) -> None:
    lines = tmp_path / "keys.txt"
    lines.write_text(f"# team keys\nalice: {KEY}\n\n*: w-0123456789abcdef\n")
    auth = ApiKeyAuth.from_file(lines)
    await auth.validate(Passport(name="alice"), {"api_key": KEY})
    await auth.validate(Passport(name="anyone"), {"api_key": "w-0123456789abcdef"})
    as_json = tmp_path / "keys.json"
    as_json.write_text(f'{{"alice": "{KEY}"}}')
    await ApiKeyAuth.from_file(as_json).validate(Passport(name="alice"), {"api_key": KEY})
    bad = tmp_path / "bad.txt"
    bad.write_text("alice\n")
    with pytest.raises(UsageError) as err:
        ApiKeyAuth.from_file(bad)
    assert "line 1: write 'name: key'" in str(err.value)
    with pytest.raises(UsageError):
        ApiKeyAuth({"alice": "short"})


async def test_a_key_file_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes(f"\ufeffalice: {KEY}\n".encode())
    await ApiKeyAuth.from_file(path).validate(Passport(name="alice"), {"api_key": KEY})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfea\x00l\x00", "is not UTF-8 text"),
        (
            f"ops: a-{KEY}\nops: b-{KEY}\n".encode(),
            "line 2: 'ops' already has a key (line 1); one key per name",
        ),
        (f'ops: "{KEY}"\n'.encode(), "line 1: write the key without quotes"),
        (b"# nothing yet\n", "holds no keys: write lines 'name: key'"),
        (b"ops: short\n", "the API key for 'ops' must be a string of at least 16 characters"),
    ],
)
def test_api_key_file_mistakes_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=re.escape(message)):
        ApiKeyAuth.from_file(path)


async def test_default_hub_is_open_but_a_custom_adapter_can_refuse() -> None:
    class OnlyTeam:
        scheme = "team"

        async def validate(self, passport: Passport, claim: Any) -> None:
            if claim.get("team") != "blue":
                raise AuthError(f"{passport.name} is not on the blue team")

    assert AuthRegistry().open
    async with Hub(auth=AuthRegistry([OnlyTeam(), NoAuth()])) as hub:
        await hub.register(Passport(name="open"))
        await hub.register(Passport(name="blue", auth=AuthBlock(scheme="team", claim={"team": "blue"})))
        with pytest.raises(AuthError):
            await hub.register(Passport(name="red", auth=AuthBlock(scheme="team", claim={"team": "red"})))
        assert [p.name for p in hub.list_agents()] == ["open", "blue"]
