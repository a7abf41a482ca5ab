"""``hubbub send``: into a channel, or to an agent in a new channel; ``--wait`` for the reply; acting
with a key on a hub that checks credentials."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from hubbub import (
    EV_TEXT,
    ApiKeyAuth,
    AuthBlock,
    AuthRegistry,
    Envelope,
    FunctionAgent,
    HubClient,
    LocalLink,
    Passport,
)
from tests.cli.conftest import Cli, ThreadHub
from tests.conftest import TIME_UNIT

OPS_KEY = "ops-key-0123456789abcdef"
ECHO_KEY = "echo-key-0123456789abcd"


def _echo(served: ThreadHub) -> None:
    served.run(lambda: served.client.register(FunctionAgent(lambda t: f"echo: {t.prompt}", name="echo")))


def test_send_to_an_agent_and_wait_for_the_reply(cli: Cli, served: ThreadHub) -> None:
    _echo(served)
    status, out, err = cli("send", "--to", "echo", "what time is it?", "--wait")
    assert (status, out, err) == (0, "echo: echo: what time is it?\n", "")
    sent = cli.json("send", "--to", "echo", "again", "--wait")
    assert sent["type"] == "consulting"
    assert sent["reply"]["event_data"] == {"text": "echo: again"}
    assert sent["reply"]["causation_id"] == sent["envelope_id"]
    [channel] = cli.json("channels", "--state", "closed", "--limit", "1")
    assert channel["channel_id"] == sent["channel_id"]
    assert channel["close_reason"] == "consulting_complete"


def test_a_conversation_goes_on_with_send_channel(cli: Cli, served: ThreadHub) -> None:
    _echo(served)
    status, out, err = cli("send", "--to", "echo", "one", "--type", "conversation", "--wait")
    assert status == 0, err
    first, hint = out.splitlines()
    assert first == "echo: echo: one"
    channel_id = hint.split()[1]
    assert hint == f"channel {channel_id} stays open: hubbub send {channel_id} TEXT --wait"
    status, out, err = cli("send", channel_id, "two", "--wait")
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == "echo: echo: two"
    status, out, _ = cli("send", channel_id, "three")
    assert status == 0
    assert out.startswith("sent ")
    assert out.endswith(f" as cli to conversation {channel_id} with echo\n")
    texts = [e["event_data"]["text"] for e in cli.json("wal", channel_id) if e["event_type"] == EV_TEXT]
    assert texts[:4] == ["one", "echo: one", "two", "echo: two"]


def test_text_from_stdin(cli: Cli, served: ThreadHub, monkeypatch: pytest.MonkeyPatch) -> None:
    _echo(served)
    monkeypatch.setattr("sys.stdin", io.StringIO("line one\nline two\n"))
    status, out, _ = cli("send", "--to", "echo", "-", "--wait")
    assert (status, out) == (0, "echo: echo: line one\nline two\n")


def test_send_errors(cli: Cli, served: ThreadHub) -> None:
    _echo(served)
    channel_id = served.run(_private_channel(served))
    status, out, err = cli("send", channel_id, "let me in")
    assert (status, out) == (1, "")
    assert err == f"hubbub send: none of this connection's agents takes part in channel {channel_id}\n"
    status, _, err = cli("send", "--to", "nobody", "hi")
    assert status == 1
    assert "no agent named or with id 'nobody'" in err
    status, _, err = cli("send", "just-text")
    assert status == 2
    assert err == (
        "hubbub send: expected hubbub send CHANNEL TEXT (or --to AGENT TEXT), got 'just-text'; "
        "quote a TEXT that has spaces\n"
    )
    status, _, err = cli("send", "--to", "echo", "two", "words")
    assert status == 2
    assert "expected hubbub send --to AGENT TEXT, got 'two' 'words'" in err
    status, _, err = cli("send", "--to", "echo", "  ")
    assert (status, err) == (2, "hubbub send: hubbub send needs a non-empty TEXT\n")
    status, _, err = cli("send", "--to", "echo", "hi", "--wait-timeout", "0")
    assert status == 2
    assert "argument --wait-timeout: expected a number of seconds above 0" in err


def _private_channel(served: ThreadHub):  # type: ignore[no-untyped-def]
    async def make() -> str:
        alice = await served.client.register(name="alice", handle_turns=False)
        channel = await alice.open("conversation", "echo")
        return channel.id

    return make


def test_waiting_gives_up_or_sees_the_channel_end(cli: Cli, served: ThreadHub) -> None:
    async def silent_and_closer() -> None:
        await served.client.register(name="silent", handle_turns=False)
        closer = await served.client.register(name="closer", handle_turns=False)

        async def close_on_text(envelope: Envelope) -> None:
            if envelope.event_type == EV_TEXT:
                await served.client.close_channel(envelope.channel_id, "not talking")

        closer.on_envelope(close_on_text)

    served.run(silent_and_closer)
    status, out, err = cli("send", "--to", "silent", "hello?", "--wait", "--wait-timeout", "0.3")
    assert (status, out) == (1, "")
    assert err.startswith("hubbub send: no reply in channel ")
    assert err.endswith(" within 0.3s; it may still come: hubbub wal " + err.split()[6] + " --follow\n")
    status, _, err = cli("send", "--to", "closer", "hello?", "--type", "conversation", "--wait")
    assert status == 1
    assert err.endswith("ended (not talking) before anyone replied\n")


def test_sending_to_an_agent_that_never_answers_is_the_hubs_refusal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    impatient = ThreadHub(invite_ack_timeout=0.3 * TIME_UNIT).start()
    cli = Cli(capsys, impatient.url)
    try:

        async def offline() -> None:
            away = HubClient(LocalLink(impatient.hub))
            await away.register(name="offline", handle_turns=False)
            await away.aclose()

        impatient.run(offline)
        status, out, err = cli("send", "--to", "offline", "hi")
        assert (status, out) == (1, "")  # the hub answered: not status 3 (no hub)
        assert "offline did not ack the invite to channel" in err
    finally:
        impatient.stop()


@pytest.fixture
def keyed() -> Iterator[ThreadHub]:
    hub = ThreadHub(AuthRegistry([ApiKeyAuth({"ops": OPS_KEY, "echo": ECHO_KEY})])).start()
    try:
        yield hub
    finally:
        hub.stop()


def test_on_a_hub_with_keys(capsys: pytest.CaptureFixture[str], keyed: ThreadHub) -> None:
    cli = Cli(capsys, keyed.url)
    echo = FunctionAgent(lambda t: f"echo: {t.prompt}", name="echo")
    passport = Passport(name="echo", auth=AuthBlock(scheme="api_key", claim={"api_key": ECHO_KEY}))
    keyed.run(lambda: keyed.client.register(echo, passport=passport))
    status, out, _ = cli("agents")  # open to anyone, like list_agents
    assert status == 0
    assert "echo" in out
    status, _, err = cli("channels")
    assert status == 1
    assert err == (
        f"hubbub channels: the hub at {keyed.url} checks credentials, and hubbub channels shows the whole "
        "hub: pass --as NAME --key KEY (or set HUBBUB_AS and HUBBUB_KEY) for an agent in its key file\n"
    )
    status, _, err = cli("send", "--to", "echo", "hi")
    assert status == 1
    assert err == (
        "hubbub send: auth scheme 'none' is not accepted by this hub; it accepts ['api_key']; "
        "pass --key KEY (or set HUBBUB_KEY) if the hub checks credentials\n"
    )
    status, _, err = cli("send", "--to", "echo", "hi", "--as", "ops", "--key", "wrong-key-0123456789")
    assert (status, err) == (1, "hubbub send: wrong API key for ops\n")
    for _ in range(2):  # registered, then attached with the key
        status, out, err = cli("send", "--to", "echo", "hi", "--wait", "--as", "ops", "--key", OPS_KEY)
        assert (status, out, err) == (0, "echo: echo: hi\n", "")
    status, _, err = cli("send", "--to", "echo", "hi", "--as", "ops", "--key", "wrong-key-0123456789")
    assert (status, err) == (1, "hubbub send: wrong API key for ops\n")
    assert len(cli.json("channels", "--as", "ops", "--key", OPS_KEY)) == 2
    assert [r["kind"] for r in cli.json("audit", "--as", "ops", "--key", OPS_KEY, "--limit", "1")] == [
        "channel_closed"
    ]
