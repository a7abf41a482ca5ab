"""``hubbub status``, ``agents``, ``channels``, ``wal``, ``audit`` against a served hub: tables, JSON,
and one-line errors with their exit statuses."""

from __future__ import annotations

import re
import time

from hubbub import EV_TEXT, FunctionAgent
from tests.cli.conftest import Cli, ThreadHub


def _workers(served: ThreadHub) -> None:
    async def register() -> None:
        await served.client.register(
            FunctionAgent(lambda t: f"summary of {t.prompt}", name="summarizer", capabilities=["summarize"])
        )
        await served.client.register(
            FunctionAgent(
                lambda t: t.prompt.upper(), name="shouter", capabilities=["shout", "summarize-loud"]
            )
        )

    served.run(register)


def _conversation(served: ThreadHub, *texts: str) -> str:
    """alice opens a conversation with bob and says ``texts``; returns the channel id."""

    async def talk() -> str:
        alice = await served.client.register(name="alice", handle_turns=False)
        await served.client.register(name="bob", handle_turns=False)
        channel = await alice.open("conversation", "bob")
        for text in texts:
            await channel.send(text)
        return channel.id

    return served.run(talk)


def _audit_settled(served: ThreadHub, count: int) -> None:
    """The audit log is written by a listener, a moment after each event."""
    for _ in range(500):
        if len(served.run(lambda: served.hub.audit.query())) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"fewer than {count} audit records")


def test_status_table_and_json(cli: Cli, served: ThreadHub) -> None:
    _workers(served)
    status, out, err = cli("status")
    assert status == 0, err
    assert f"hub             {served.url}" in out
    assert "agents          2 (2 connected)" in out
    assert re.search(r"^tasks +0 *$", out, re.M)
    assert "consulting, conversation, discussion, workflow" in out
    data = cli.json("status")
    assert data["url"] == served.url
    assert data["agents"] == 2
    assert data["hub_id"] == served.hub.hub_id
    assert (data["connected"], data["tasks"], data["tasks_by_state"]) == (2, 0, {})


def test_agents_lists_and_finds_by_capability(cli: Cli, served: ThreadHub) -> None:
    _workers(served)
    status, out, _ = cli("agents")
    assert status == 0
    assert "agents (2)" in out
    lines = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.split()[:1] in (["summarizer"], ["shouter"])
    }
    assert lines["summarizer"][:4] == ["summarizer", "agent", "yes", "summarize"]
    assert lines["shouter"][:5] == ["shouter", "agent", "yes", "shout,", "summarize-loud"]

    status, out, _ = cli("agents", "--capability", "summarize")
    assert "agents claiming 'summarize' (2)" in out
    assert out.index("summarizer") < out.index("shouter")  # the exact claim ranks first
    found = cli.json("agents", "-c", "shout")
    assert [a["passport"]["name"] for a in found] == ["shouter"]
    assert found[0]["connected"] is True
    assert found[0]["resume"]["claimed_capabilities"] == ["shout", "summarize-loud"]

    status, out, _ = cli("agents", "--capability", "translate")
    assert status == 0
    assert out.strip() == f"no agents claiming 'translate' on {served.url}"
    assert cli.json("agents", "-c", "translate") == []


def test_channels_hub_wide_with_state_filter(cli: Cli, served: ThreadHub) -> None:
    status, out, _ = cli("channels")
    assert (status, out.strip()) == (0, f"no channels on {served.url}")
    open_id = _conversation(served, "hi")

    async def close_one() -> str:
        carol = await served.client.register(name="carol", handle_turns=False)
        channel = await carol.open("conversation", "bob")
        await channel.close("done here")
        return channel.id

    closed_id = served.run(close_one)
    status, out, _ = cli("channels")
    assert "channels (2)" in out
    assert out.index(closed_id) < out.index(open_id)  # newest first
    row = next(line for line in out.splitlines() if line.startswith(closed_id)).split()
    assert row[1:4] == ["conversation", "closed", "carol,"]
    assert row[-2:] == ["done", "here"]
    assert [c["channel_id"] for c in cli.json("channels", "--state", "active")] == [open_id]
    assert [c["channel_id"] for c in cli.json("channels", "--agent", "carol")] == [closed_id]
    status, out, _ = cli("channels", "--state", "expired")
    assert out.strip() == f"no channels in state expired on {served.url}"
    # A full page says how to see the next one.
    status, out, _ = cli("channels", "--limit", "1")
    assert out.strip().endswith(f"older ones: the same command with --before {closed_id}")
    assert [c["channel_id"] for c in cli.json("channels", "--before", closed_id)] == [open_id]


def test_wal_shows_the_tail_or_everything(cli: Cli, served: ThreadHub) -> None:
    channel_id = _conversation(served, *(f"message {i}" for i in range(5)))
    status, out, _ = cli("wal", channel_id)
    assert status == 0
    assert f"channel {channel_id} (8 envelopes)" in out
    assert "channel.invite" in out
    assert "conversation with alice, bob" in out
    assert "alice   msg.text             message 4" in out
    status, out, _ = cli("wal", channel_id, "--limit", "2")
    assert f"channel {channel_id} (2 envelopes, the last 2)" in out
    assert "message 3" in out
    assert "message 2" not in out
    everything = cli.json("wal", channel_id, "--all")
    assert [e["event_data"]["text"] for e in everything if e["event_type"] == EV_TEXT] == [
        f"message {i}" for i in range(5)
    ]
    assert len(everything) == 8
    assert [e["envelope_id"] for e in cli.json("wal", channel_id, "--limit", "3")] == [
        e["envelope_id"] for e in everything[-3:]
    ]


def test_audit_table_filters_and_json(cli: Cli, served: ThreadHub) -> None:
    channel_id = _conversation(served, "hi")
    _audit_settled(served, 3)
    status, out, _ = cli("audit")
    assert status == 0
    assert "audit log (3 records)" in out
    assert "agent_registered   alice   alice" in out
    assert f"channel_created    -       alice   {channel_id}" in out
    records = cli.json("audit", "--kind", "agent_registered")
    assert [r["kind"] for r in records] == ["agent_registered", "agent_registered"]
    assert [r["kind"] for r in cli.json("audit", "--agent", "bob")] == ["agent_registered"]
    assert [r["kind"] for r in cli.json("audit", "--channel", channel_id)] == ["channel_created"]
    assert [r["kind"] for r in cli.json("audit", "--limit", "1")] == ["channel_created"]
    assert len(cli.json("audit", "--since", "1h")) == 3
    assert cli.json("audit", "--since", "2999-01-01T00:00:00Z") == []
    status, out, _ = cli("audit", "--kind", "send_denied")
    assert out.strip() == f"no audit records matching on {served.url}"


def test_errors_are_one_line_with_a_status(cli: Cli, served: ThreadHub) -> None:
    status, out, err = cli("wal", "nope")
    assert (status, out) == (1, "")
    assert err == f"hubbub wal: no channel 'nope' on the hub at {served.url}; `hubbub channels` lists them\n"
    status, _, err = cli("channels", "--agent", "nobody")
    assert status == 1
    assert err == (
        f"hubbub channels: no agent named or with id 'nobody' on the hub at {served.url}; "
        "`hubbub agents` lists them\n"
    )
    status, _, err = cli("agents", "--limit", "lots")
    assert status == 2
    assert err == (
        "hubbub agents: error: argument --limit: expected a whole number, got 'lots' "
        "(see hubbub agents --help)\n"
    )
    status, _, err = cli("channels", "--state", "open")
    assert status == 2
    assert err.startswith("hubbub channels: error: argument --state: invalid choice: 'open'")
    assert err.count("\n") == 1
    status, _, err = cli("audit", "--since", "yesterday")
    assert status == 2
    assert err == "hubbub audit: --since must be an ISO time or a duration like 10m, got 'yesterday'\n"
    status, _, err = cli("frobnicate", url=False)
    assert status == 2
    assert err.startswith("hubbub: error: argument COMMAND: invalid choice: 'frobnicate'")


def test_an_unreachable_hub_is_one_line_and_status_3(cli: Cli, served: ThreadHub) -> None:
    served.stop()
    for command in (["status"], ["agents"], ["wal", "x"], ["send", "--to", "a", "hi"]):
        status, out, err = cli(*command, "--timeout", "2")
        assert status == 3, (command, err)
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith(f"hubbub {command[0]}: could not connect to the hub at {served.url}")
        assert err.endswith("is a hub running there? Start one with `hubbub serve`, or pass --url\n")


def test_me_is_registered_once_and_attached_after(cli: Cli, served: ThreadHub) -> None:
    _workers(served)
    for _ in range(2):
        status, out, err = cli("send", "--to", "summarizer", "hello", "--wait")
        assert status == 0, err
        assert out == "summarizer: summary of hello\n"
    names = [a["passport"]["name"] for a in cli.json("agents")]
    assert names.count("cli") == 1
    status, out, err = cli("send", "--to", "summarizer", "as someone else", "--as", "ada")
    assert status == 0, err
    assert out.startswith("sent ")
    assert " as ada to consulting " in out
    assert out.endswith(" with summarizer\n")
