"""Conversation: two parties, free-form, until closed or ``max_turns``."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hubbub.adapters import AdapterResult, AgentReply, ConversationAdapter
from hubbub.adapters.conversation import ConversationState
from hubbub.adapters.views import WindowedSummary
from hubbub.errors import ChannelRuleError
from hubbub.model import (
    EV_CHANNEL_CLOSED,
    EV_CONTEXT_SET,
    EV_EXPECTATION_VIOLATED,
    EV_PACKET,
    EV_TASK_CANCELLED,
    EV_TEXT,
    ChannelState,
    Envelope,
)

from ._channel import CHANNEL_ID, Channel, make_metadata

ANN, BOB = "agent-ann", "agent-bob"


def open_channel(**knobs: Any) -> Channel:
    adapter = ConversationAdapter()
    return Channel(adapter, make_metadata(adapter, [ANN, BOB], knobs=knobs))


# ── creation ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("agent_ids", [[ANN], [ANN, BOB, "agent-cy"]])
def test_creation_needs_exactly_two_participants(agent_ids: list[str]) -> None:
    adapter = ConversationAdapter()
    with pytest.raises(ChannelRuleError) as info:
        adapter.validate_create(make_metadata(adapter, agent_ids))
    assert info.value.message.startswith(
        f"conversation channel {CHANNEL_ID} needs exactly 2 participants, got {len(agent_ids)}"
    )
    assert info.value.channel_id == CHANNEL_ID


@pytest.mark.parametrize("max_turns", [0, -1, "3", True, 2.0, [3]])
def test_max_turns_must_be_a_positive_integer(max_turns: Any) -> None:
    adapter = ConversationAdapter()
    with pytest.raises(ChannelRuleError) as info:
        adapter.validate_create(make_metadata(adapter, [ANN, BOB], knobs={"max_turns": max_turns}))
    assert info.value.message == (
        f"conversation channel {CHANNEL_ID}: knob 'max_turns' must be a positive integer, got {max_turns!r}"
    )
    assert info.value.reason == "knob:max_turns"


@pytest.mark.parametrize("knobs", [{}, {"max_turns": 1}, {"max_turns": 50, "strict": True}])
def test_valid_knobs_are_accepted(knobs: dict[str, Any]) -> None:
    adapter = ConversationAdapter()
    adapter.validate_create(make_metadata(adapter, [ANN, BOB], knobs=knobs))


# ── free-form turns ─────────────────────────────────────────────────────────


def test_anyone_may_speak_in_any_order() -> None:
    channel = open_channel()
    assert channel.expected() is None  # nobody is owed a turn before the first text
    for sender in (BOB, BOB, ANN, BOB, ANN, ANN, ANN):
        assert channel.send(sender) == AdapterResult()
    assert channel.state == ConversationState(
        turns=7, last_speaker_id=ANN, last_envelope_id=channel.last_id()
    )


def test_expected_next_is_the_other_party_of_the_last_text() -> None:
    channel = open_channel()
    channel.send(ANN, "hello")
    assert channel.expected() == (BOB, channel.last_id())
    channel.send(BOB, "hi")
    assert channel.expected() == (ANN, channel.last_id())
    channel.send(BOB, "also")
    assert channel.expected() == (ANN, channel.last_id())


@pytest.mark.parametrize("event_type", [EV_PACKET, EV_CONTEXT_SET, "custom.reaction"])
def test_other_events_are_accepted_and_are_not_turns(event_type: str) -> None:
    channel = open_channel()
    channel.send(ANN, "hello")
    text_id = channel.last_id()
    assert channel.send(BOB, event_type=event_type, event_data={"emoji": "+1"}) == AdapterResult()
    assert channel.state.turns == 1
    assert channel.expected() == (BOB, text_id)


@pytest.mark.parametrize("event_type", [EV_PACKET, EV_CONTEXT_SET, "custom.reaction"])
def test_strict_refuses_other_events_naming_channel_and_agent(event_type: str) -> None:
    channel = open_channel(strict=True)
    with pytest.raises(
        ChannelRuleError,
        match=rf"^conversation channel {CHANNEL_ID} refused a send from {BOB}: "
        rf"strict conversation takes only {re.escape(EV_TEXT)}, not {re.escape(repr(event_type))}$",
    ) as info:
        channel.send(BOB, event_type=event_type, event_data={})
    assert (info.value.channel_id, info.value.agent_id) == (CHANNEL_ID, BOB)


@pytest.mark.parametrize("event_type", [EV_CHANNEL_CLOSED, EV_TASK_CANCELLED, EV_EXPECTATION_VIOLATED])
def test_strict_still_lets_control_events_and_notices_through(event_type: str) -> None:
    channel = open_channel(strict=True)
    assert channel.send(ANN, event_type=event_type, event_data={}) == AdapterResult()
    assert channel.state == ConversationState()


def test_max_turns_closes_after_that_many_texts() -> None:
    channel = open_channel(max_turns=3)
    assert channel.send(ANN) == AdapterResult()
    assert channel.send(ANN, event_type="custom.note", event_data={}) == AdapterResult()
    assert channel.send(BOB) == AdapterResult()
    assert channel.send(ANN) == AdapterResult(ChannelState.CLOSED, "max_turns")


def test_max_turns_one_closes_on_the_first_text() -> None:
    channel = open_channel(max_turns=1)
    assert channel.send(BOB) == AdapterResult(ChannelState.CLOSED, "max_turns")


def test_no_max_turns_never_closes() -> None:
    channel = open_channel()
    results = {channel.send(ANN if i % 2 else BOB) for i in range(200)}
    assert results == {AdapterResult()}


def test_fold_does_not_mutate_its_input() -> None:
    adapter = ConversationAdapter()
    start = ConversationState(turns=2, last_speaker_id=ANN, last_envelope_id="e2")
    after = adapter.fold(start, Envelope(channel_id=CHANNEL_ID, sender_id=BOB, envelope_id="e3"))
    assert start == ConversationState(turns=2, last_speaker_id=ANN, last_envelope_id="e2")
    assert after == ConversationState(turns=3, last_speaker_id=BOB, last_envelope_id="e3")


# ── turn helpers ────────────────────────────────────────────────────────────


def test_default_view_is_a_window_of_ten() -> None:
    channel = open_channel()
    view = channel.adapter.default_view(channel.metadata, ANN)
    assert isinstance(view, WindowedSummary)
    assert view.recent_n == 10
    assert channel.adapter.manifest.default_view_policy == "windowed"


def test_reply_envelope_is_a_text_from_the_agent() -> None:
    channel = open_channel()
    reply = channel.adapter.reply_envelope(channel.metadata, channel.state, BOB, AgentReply(text="ok"))
    assert reply == Envelope(channel_id=CHANNEL_ID, sender_id=BOB, event_data={"text": "ok"})
    assert (
        channel.adapter.turn_input(
            Envelope(channel_id=CHANNEL_ID, event_type=EV_PACKET, event_data={"body": "b"})
        )
        == "b"
    )
