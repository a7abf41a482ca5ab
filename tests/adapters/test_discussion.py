"""Discussion: two or more parties taking turns round robin in join order, creator first."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hubbub.adapters import AdapterResult, DiscussionAdapter
from hubbub.adapters.discussion import DiscussionState
from hubbub.adapters.views import NamedWindowedSummary
from hubbub.errors import ChannelRuleError
from hubbub.model import (
    EV_CHANNEL_INVITE_ACK,
    EV_CONTEXT_SET,
    EV_EXPECTATION_VIOLATED,
    EV_PACKET,
    EV_TASK_CANCEL_REQUEST,
    EV_TEXT,
    ChannelState,
    Envelope,
    Participant,
    ParticipantRole,
)

from ._channel import CHANNEL_ID, Channel, make_metadata

A, B, C = "agent-a", "agent-b", "agent-c"


def open_channel(agent_ids: list[str] | None = None, **knobs: Any) -> Channel:
    adapter = DiscussionAdapter()
    return Channel(adapter, make_metadata(adapter, agent_ids or [A, B, C], knobs=knobs))


# ── creation ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("agent_ids", [[A], []])
def test_creation_needs_at_least_two_participants(agent_ids: list[str]) -> None:
    adapter = DiscussionAdapter()
    with pytest.raises(ChannelRuleError) as info:
        adapter.validate_create(make_metadata(adapter, agent_ids))
    assert info.value.message.startswith(
        f"discussion channel {CHANNEL_ID} needs at least 2 participants, got {len(agent_ids)}"
    )
    assert info.value.channel_id == CHANNEL_ID


def test_two_and_many_participants_are_fine() -> None:
    adapter = DiscussionAdapter()
    adapter.validate_create(make_metadata(adapter, [A, B]))
    adapter.validate_create(make_metadata(adapter, [f"agent-{i}" for i in range(12)]))


@pytest.mark.parametrize("ordering", ["random", "ROUND_ROBIN", "", None, 1])
def test_ordering_other_than_round_robin_is_refused(ordering: Any) -> None:
    adapter = DiscussionAdapter()
    with pytest.raises(ChannelRuleError) as info:
        adapter.validate_create(make_metadata(adapter, [A, B], knobs={"ordering": ordering}))
    assert CHANNEL_ID in info.value.message
    assert f"discussion ordering must be 'round_robin', got {ordering!r}" in info.value.message


def test_explicit_round_robin_ordering_is_accepted() -> None:
    adapter = DiscussionAdapter()
    adapter.validate_create(make_metadata(adapter, [A, B], knobs={"ordering": "round_robin"}))


@pytest.mark.parametrize("max_turns", [0, "3", True, -4])
def test_max_turns_must_be_a_positive_integer(max_turns: Any) -> None:
    adapter = DiscussionAdapter()
    with pytest.raises(ChannelRuleError) as info:
        adapter.validate_create(make_metadata(adapter, [A, B], knobs={"max_turns": max_turns}))
    assert info.value.message == (
        f"discussion channel {CHANNEL_ID}: knob 'max_turns' must be a positive integer, got {max_turns!r}"
    )


# ── round robin ─────────────────────────────────────────────────────────────


def test_turns_rotate_in_join_order_starting_with_the_creator() -> None:
    channel = open_channel()
    assert channel.expected() == (A, None)
    for speaker, after in [(A, B), (B, C), (C, A), (A, B), (B, C)]:
        assert channel.send(speaker) == AdapterResult()
        assert channel.expected() == (after, channel.last_id())
    assert channel.state.turns == 5


def test_join_order_comes_from_participant_order_not_list_position() -> None:
    adapter = DiscussionAdapter()
    metadata = make_metadata(adapter, [A, B, C])
    metadata.participants = [
        Participant(agent_id=C, role=ParticipantRole.PARTICIPANT, order=2),
        Participant(agent_id=A, role=ParticipantRole.INITIATOR, order=0),
        Participant(agent_id=B, role=ParticipantRole.PARTICIPANT, order=1),
    ]
    assert adapter.initial_state(metadata).order == (A, B, C)


@pytest.mark.parametrize(("sender", "step"), [(B, 0), (C, 0), (A, 1), (C, 1), ("agent-outsider", 2)])
def test_out_of_turn_is_refused_naming_channel_sender_and_expected_speaker(sender: str, step: int) -> None:
    channel = open_channel()
    for speaker in [A, B][:step]:
        channel.send(speaker)
    expected = [A, B, C][step]
    with pytest.raises(ChannelRuleError) as info:
        channel.send(sender)
    assert info.value.message == (
        f"discussion channel {CHANNEL_ID} refused a send from {sender}: "
        f"out of turn: round robin expects {expected} to speak next"
    )
    assert (info.value.channel_id, info.value.agent_id) == (CHANNEL_ID, sender)
    assert channel.expected() == (expected, channel.wal[-1].envelope_id if channel.wal else None)


@pytest.mark.parametrize("event_type", [EV_PACKET, EV_CONTEXT_SET, "custom.vote"])
def test_other_events_from_anyone_are_accepted_and_do_not_pass_the_turn(event_type: str) -> None:
    channel = open_channel()
    assert channel.send(C, event_type=event_type, event_data={}) == AdapterResult()
    assert channel.state == DiscussionState(order=(A, B, C))


@pytest.mark.parametrize("event_type", [EV_PACKET, "custom.vote"])
def test_strict_refuses_other_events(event_type: str) -> None:
    channel = open_channel(strict=True)
    with pytest.raises(
        ChannelRuleError,
        match=rf"^discussion channel {CHANNEL_ID} refused a send from {A}: "
        rf"strict discussion takes only {re.escape(EV_TEXT)}, not {re.escape(repr(event_type))}$",
    ):
        channel.send(A, event_type=event_type, event_data={})


@pytest.mark.parametrize(
    "event_type", [EV_CHANNEL_INVITE_ACK, EV_TASK_CANCEL_REQUEST, EV_EXPECTATION_VIOLATED]
)
def test_control_events_and_notices_bypass_turns_even_when_strict(event_type: str) -> None:
    channel = open_channel(strict=True)
    assert channel.send(C, event_type=event_type, event_data={}) == AdapterResult()
    assert channel.expected() == (A, None)


def test_max_turns_closes_after_that_many_texts() -> None:
    channel = open_channel(max_turns=4)
    assert [channel.send(s) for s in (A, B, C)] == [AdapterResult()] * 3
    assert channel.send(A) == AdapterResult(ChannelState.CLOSED, "max_turns")


def test_fold_does_not_mutate_its_input() -> None:
    adapter = DiscussionAdapter()
    start = DiscussionState(order=(A, B), next_index=1, turns=1, last_envelope_id="e1")
    after = adapter.fold(start, Envelope(channel_id=CHANNEL_ID, sender_id=B, envelope_id="e2"))
    assert start == DiscussionState(order=(A, B), next_index=1, turns=1, last_envelope_id="e1")
    assert after == DiscussionState(order=(A, B), next_index=0, turns=2, last_envelope_id="e2")


def test_refold_of_the_wal_reaches_the_same_state() -> None:
    channel = open_channel()
    for speaker in (A, B):
        channel.send(speaker)
    channel.send(A, event_type="custom.vote", event_data={})
    channel.send(C)
    state = channel.adapter.initial_state(channel.metadata)
    for envelope in channel.wal:
        state = channel.adapter.fold(state, envelope)
    assert state == channel.state
    assert state.expected_speaker == A


def test_default_view_windows_two_rounds_by_name() -> None:
    channel = open_channel()
    view = channel.adapter.default_view(channel.metadata, B)
    assert isinstance(view, NamedWindowedSummary)
    assert view.recent_n == 6
    assert channel.adapter.manifest.default_view_policy == "named_windowed"
