"""Consulting: two parties, one question from the initiator, one reply, then closed."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager

import pytest

from hubbub.adapters import AdapterResult, AgentReply, ConsultingAdapter
from hubbub.adapters.consulting import ConsultingState
from hubbub.adapters.views import FullTranscript
from hubbub.errors import ChannelRuleError
from hubbub.model import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_OPENED,
    EV_CONTEXT_SET,
    EV_EXPECTATION_VIOLATED,
    EV_PACKET,
    EV_TASK_CANCEL_REQUEST,
    EV_TEXT,
    ChannelState,
    Envelope,
)

from ._channel import CHANNEL_ID, Channel, make_metadata

ASKER, EXPERT = "agent-asker", "agent-expert"


@pytest.fixture
def channel() -> Channel:
    adapter = ConsultingAdapter()
    return Channel(adapter, make_metadata(adapter, [ASKER, EXPERT]))


def refused(agent_id: str, rule: str) -> AbstractContextManager[pytest.ExceptionInfo[ChannelRuleError]]:
    """A ChannelRuleError naming this channel and agent, with ``rule`` in its message."""
    return pytest.raises(
        ChannelRuleError,
        match=rf"^consulting channel {CHANNEL_ID} refused a send from {agent_id}: .*{re.escape(rule)}",
    )


# ── creation ────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("agent_ids", [[ASKER], [ASKER, EXPERT, "agent-third"], []])
def test_creation_needs_exactly_two_participants(agent_ids: list[str]) -> None:
    adapter = ConsultingAdapter()
    metadata = make_metadata(adapter, agent_ids)
    with pytest.raises(ChannelRuleError) as info:
        adapter.validate_create(metadata)
    assert info.value.message.startswith(
        f"consulting channel {CHANNEL_ID} needs exactly 2 participants, got {len(agent_ids)}"
    )
    assert info.value.channel_id == CHANNEL_ID
    assert info.value.reason == "participant_count"


def test_manifest() -> None:
    manifest = ConsultingAdapter().manifest
    assert manifest.type == "consulting"
    assert (manifest.participants.min, manifest.participants.max) == (2, 2)
    assert manifest.default_view_policy == "full_transcript"
    assert [(e.name, e.on_violation, e.params) for e in manifest.expectations] == [
        ("acks_within", "auto_close", {"seconds": 30}),
        ("reply_within", "auto_close", {"seconds": 600}),
    ]


# ── the one question, one reply protocol ────────────────────────────────────


def test_question_then_reply_closes_the_channel(channel: Channel) -> None:
    assert channel.expected() == (ASKER, None)

    assert channel.send(ASKER, "What is 2+2?") == AdapterResult()
    question_id = channel.last_id()
    assert channel.state == ConsultingState(asked=True, answered=False, last_envelope_id=question_id)
    assert channel.expected() == (EXPERT, question_id)

    assert channel.send(EXPERT, "4") == AdapterResult(ChannelState.CLOSED, "consulting_complete")
    assert channel.state == ConsultingState(asked=True, answered=True, last_envelope_id=channel.last_id())
    assert channel.expected() is None


def test_respondent_cannot_speak_first(channel: Channel) -> None:
    with refused(EXPERT, f"the initiator {ASKER} must ask first") as info:
        channel.send(EXPERT, "unprompted advice")
    assert info.value.channel_id == CHANNEL_ID
    assert info.value.agent_id == EXPERT
    assert channel.state == ConsultingState()


def test_outsider_cannot_speak_first(channel: Channel) -> None:
    with refused("agent-outsider", "must ask first"):
        channel.send("agent-outsider")


def test_second_question_is_refused(channel: Channel) -> None:
    channel.send(ASKER, "first question")
    with refused(ASKER, "one question per consulting channel; wait for the reply") as info:
        channel.send(ASKER, "second question")
    assert info.value.agent_id == ASKER


@pytest.mark.parametrize("sender", [ASKER, EXPERT])
def test_everything_is_refused_after_the_reply(channel: Channel, sender: str) -> None:
    channel.send(ASKER, "q")
    channel.send(EXPERT, "a")
    with refused(sender, "the question was already answered; open a new channel to ask again"):
        channel.send(sender, "more")


@pytest.mark.parametrize("event_type", [EV_PACKET, EV_CONTEXT_SET, "custom.note"])
def test_non_text_events_are_refused_at_every_stage(channel: Channel, event_type: str) -> None:
    with refused(ASKER, f"consulting takes only {EV_TEXT} turns, not {event_type!r}"):
        channel.send(ASKER, event_type=event_type, event_data={"body": "x"})
    channel.send(ASKER, "q")
    with refused(EXPERT, f"not {event_type!r}"):
        channel.send(EXPERT, event_type=event_type, event_data={"body": "x"})


@pytest.mark.parametrize(
    "event_type", [EV_CHANNEL_OPENED, EV_CHANNEL_CLOSED, EV_TASK_CANCEL_REQUEST, EV_EXPECTATION_VIOLATED]
)
def test_control_events_and_violation_notices_bypass_the_rules(channel: Channel, event_type: str) -> None:
    # Before the question, from the respondent, and after the reply: all accepted, none a turn.
    assert channel.send(EXPERT, event_type=event_type, event_data={}) == AdapterResult()
    assert channel.state == ConsultingState()
    assert channel.expected() == (ASKER, None)

    channel.send(ASKER, "q")
    question_id = channel.last_id()
    assert channel.send(ASKER, event_type=event_type, event_data={}) == AdapterResult()
    assert channel.expected() == (EXPERT, question_id)

    channel.send(EXPERT, "a")
    assert channel.send(EXPERT, event_type=event_type, event_data={}) == AdapterResult()
    assert channel.state.answered


def test_reply_is_only_counted_once_by_fold() -> None:
    adapter = ConsultingAdapter()
    done = ConsultingState(asked=True, answered=True, last_envelope_id="e2")
    late = Envelope(channel_id=CHANNEL_ID, sender_id=EXPERT, envelope_id="e3")
    assert adapter.fold(done, late) is done


def test_fold_does_not_mutate_its_input() -> None:
    adapter = ConsultingAdapter()
    start = ConsultingState()
    after = adapter.fold(start, Envelope(channel_id=CHANNEL_ID, sender_id=ASKER, envelope_id="e1"))
    assert start == ConsultingState()
    assert after == ConsultingState(asked=True, last_envelope_id="e1")


def test_refold_of_the_wal_reaches_the_same_state(channel: Channel) -> None:
    channel.send(ASKER, "q")
    channel.send(ASKER, event_type=EV_CHANNEL_OPENED, event_data={})
    channel.send(EXPERT, "a")
    state = channel.adapter.initial_state(channel.metadata)
    for envelope in channel.wal:
        state = channel.adapter.fold(state, envelope)
    assert state == channel.state


# ── turn helpers ────────────────────────────────────────────────────────────


def test_default_view_is_the_full_transcript(channel: Channel) -> None:
    assert isinstance(channel.adapter.default_view(channel.metadata, EXPERT), FullTranscript)


def test_turn_input_and_reply_envelope(channel: Channel) -> None:
    adapter = channel.adapter
    question = Envelope(channel_id=CHANNEL_ID, sender_id=ASKER, event_data={"text": "Why?"})
    assert adapter.turn_input(question) == "Why?"
    opened = Envelope(channel_id=CHANNEL_ID, event_type=EV_CHANNEL_OPENED)
    assert adapter.turn_input(opened) is None

    reply = adapter.reply_envelope(channel.metadata, channel.state, EXPERT, AgentReply(text="Because."))
    assert reply == Envelope(
        channel_id=CHANNEL_ID, sender_id=EXPERT, event_type=EV_TEXT, event_data={"text": "Because."}
    )
    assert adapter.reply_envelope(channel.metadata, channel.state, EXPERT, AgentReply(text="")) is None
