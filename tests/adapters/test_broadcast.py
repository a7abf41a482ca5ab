"""Broadcast: one text from the creator, nobody's turn after it, closed by the adapter."""

from __future__ import annotations

import pytest

from hubbub.adapters import AgentReply, BroadcastAdapter
from hubbub.errors import ChannelRuleError
from hubbub.model import EV_CHANNEL_OPENED, ChannelState

from ._channel import Channel, make_metadata


def test_one_text_from_the_creator_closes_it() -> None:
    channel = Channel(BroadcastAdapter(), make_metadata(BroadcastAdapter(), ["hq", "a", "b"]))
    assert channel.expected() == ("hq", None)
    result = channel.send("hq", "all hands at noon")
    assert result.next_state is ChannelState.CLOSED
    assert result.close_reason == "broadcast_sent"
    assert channel.expected() is None
    assert channel.state.sent
    assert channel.state.envelope_id == channel.last_id()


def test_lifecycle_events_pass_and_change_nothing() -> None:
    channel = Channel(BroadcastAdapter(), make_metadata(BroadcastAdapter(), ["hq", "a"]))
    result = channel.send("hub", event_type=EV_CHANNEL_OPENED, event_data={})
    assert result.next_state is None
    assert not channel.state.sent


@pytest.mark.parametrize(
    ("sender", "event_type", "rule"),
    [
        ("a", "ag2.msg.text", "only the sender hq posts to a broadcast"),
        ("hq", "ag2.packet", "a broadcast carries one ag2.msg.text, not 'ag2.packet'"),
    ],
)
def test_refusals(sender: str, event_type: str, rule: str) -> None:
    channel = Channel(BroadcastAdapter(), make_metadata(BroadcastAdapter(), ["hq", "a", "b"]))
    with pytest.raises(ChannelRuleError) as err:
        channel.send(sender, event_type=event_type, event_data={"text": "x"})
    assert err.value.reason == rule
    assert not channel.state.sent


def test_a_second_text_is_refused() -> None:
    channel = Channel(BroadcastAdapter(), make_metadata(BroadcastAdapter(), ["hq", "a"]))
    channel.send("hq", "once")
    with pytest.raises(ChannelRuleError, match="already sent"):
        channel.send("hq", "twice")


def test_needs_a_recipient_and_recipients_never_reply() -> None:
    adapter = BroadcastAdapter()
    with pytest.raises(ChannelRuleError, match="at least 2 participants"):
        Channel(adapter, make_metadata(adapter, ["hq"]))
    meta = make_metadata(adapter, ["hq", "a"])
    assert adapter.reply_envelope(meta, adapter.initial_state(meta), "a", AgentReply(text="ok")) is None
