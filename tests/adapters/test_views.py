"""View policies: what a participant sees of the transcript on its turn."""

from __future__ import annotations

import pytest

from hubbub.adapters.views import (
    FullTranscript,
    NamedFullTranscript,
    NamedWindowedSummary,
    TranscriptLine,
    ViewPolicy,
    WindowedSummary,
    view_policy_by_name,
)
from hubbub.errors import UsageError
from hubbub.model import (
    EV_CHANNEL_OPENED,
    EV_CONTEXT_SET,
    EV_EXPECTATION_VIOLATED,
    EV_PACKET,
    EV_TEXT,
    Envelope,
)

A, B, C = "id-a", "id-b", "id-c"
NAMES = {A: "alice", B: "bob"}  # C has no name: shown by id


def env(n: int, sender: str, text: str, *, audience: list[str] | None = None) -> Envelope:
    return Envelope(
        channel_id="ch",
        sender_id=sender,
        audience=audience,
        event_type=EV_TEXT,
        event_data={"text": text},
        envelope_id=f"e{n}",
    )


WAL = [
    env(1, A, "hello all"),
    Envelope(channel_id="ch", sender_id=A, event_type=EV_CHANNEL_OPENED, envelope_id="e2"),
    env(3, B, "psst, alice only", audience=[A]),
    Envelope(
        channel_id="ch",
        sender_id=C,
        event_type=EV_PACKET,
        event_data={"routing": {"kind": "text"}, "body": "packet body"},
        envelope_id="e4",
    ),
    Envelope(
        channel_id="ch", sender_id=B, event_type=EV_CONTEXT_SET, event_data={"set": {}}, envelope_id="e5"
    ),
    Envelope(channel_id="ch", sender_id="hub", event_type=EV_EXPECTATION_VIOLATED, envelope_id="e6"),
    env(7, C, "custom", audience=[B, C]),
    Envelope(
        channel_id="ch", sender_id=A, event_type="custom.note", event_data={"text": "x"}, envelope_id="e8"
    ),
    env(9, B, "bye"),
]


def line(speaker: str, text: str, n: int, *, is_self: bool = False) -> TranscriptLine:
    return TranscriptLine(speaker=speaker, text=text, envelope_id=f"e{n}", is_self=is_self)


# ── full transcripts ────────────────────────────────────────────────────────


def test_full_transcript_shows_texts_and_packets_by_id() -> None:
    assert FullTranscript().project(WAL, A, NAMES) == [
        line(A, "hello all", 1, is_self=True),
        line(B, "psst, alice only", 3),
        line(C, "packet body", 4),
        line(B, "bye", 9),
    ]


def test_envelope_addressed_to_others_is_hidden_but_its_sender_sees_it() -> None:
    # C was not in the audience of e3; B sent it; C sent e7 to B and C.
    assert FullTranscript().project(WAL, C, NAMES) == [
        line(A, "hello all", 1),
        line(C, "packet body", 4, is_self=True),
        line(C, "custom", 7, is_self=True),
        line(B, "bye", 9),
    ]
    assert [x.envelope_id for x in FullTranscript().project(WAL, B, NAMES)] == ["e1", "e3", "e4", "e7", "e9"]


def test_named_full_transcript_labels_speakers_by_name_falling_back_to_id() -> None:
    assert NamedFullTranscript().project(WAL, B, NAMES) == [
        line("alice", "hello all", 1),
        line("bob", "psst, alice only", 3, is_self=True),
        line(C, "packet body", 4),
        line(C, "custom", 7),
        line("bob", "bye", 9, is_self=True),
    ]


def test_empty_wal_gives_an_empty_transcript() -> None:
    for policy in (FullTranscript(), NamedFullTranscript(), WindowedSummary(2), NamedWindowedSummary(2)):
        assert policy.project([], A, NAMES) == []


def test_render() -> None:
    assert line("alice", "hello", 1).render() == "alice: hello"


# ── windowed ────────────────────────────────────────────────────────────────


def test_windowed_keeps_the_last_n_after_a_count_line() -> None:
    assert WindowedSummary(2).project(WAL, B, NAMES) == [
        TranscriptLine(speaker="hub", text="[3 earlier messages not shown]"),
        line(C, "custom", 7),
        line(B, "bye", 9, is_self=True),
    ]


def test_windowed_counts_only_what_the_viewer_could_see() -> None:
    # A sees e1, e3, e4, e9: four lines, two hidden.
    assert WindowedSummary(2).project(WAL, A, NAMES)[0] == TranscriptLine(
        speaker="hub", text="[2 earlier messages not shown]"
    )


def test_named_windowed_labels_by_name() -> None:
    assert NamedWindowedSummary(2).project(WAL, A, NAMES) == [
        TranscriptLine(speaker="hub", text="[2 earlier messages not shown]"),
        line(C, "packet body", 4),
        line("bob", "bye", 9),
    ]


@pytest.mark.parametrize("recent_n", [4, 5, 100])
def test_windowed_without_overflow_has_no_count_line(recent_n: int) -> None:
    assert WindowedSummary(recent_n).project(WAL, A, NAMES) == FullTranscript().project(WAL, A, NAMES)


def test_window_of_zero_is_just_the_count() -> None:
    assert WindowedSummary(0).project(WAL, A, NAMES) == [
        TranscriptLine(speaker="hub", text="[4 earlier messages not shown]")
    ]


def test_default_window_is_ten() -> None:
    wal = [env(i, A if i % 2 else B, f"m{i}") for i in range(1, 13)]
    projected = WindowedSummary().project(wal, A, NAMES)
    assert projected[0] == TranscriptLine(speaker="hub", text="[2 earlier messages not shown]")
    assert [x.text for x in projected[1:]] == [f"m{i}" for i in range(3, 13)]


def test_negative_window_is_refused() -> None:
    with pytest.raises(UsageError, match="recent_n must be 0 or more, got -1"):
        WindowedSummary(-1)


# ── by name ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("full_transcript", FullTranscript),
        ("named_full_transcript", NamedFullTranscript),
        ("windowed", WindowedSummary),
        ("named_windowed", NamedWindowedSummary),
    ],
)
def test_view_policy_by_name(name: str, cls: type[ViewPolicy]) -> None:
    policy = view_policy_by_name(name)
    assert type(policy) is cls
    assert policy.name == name
    assert isinstance(policy, ViewPolicy)


def test_view_policy_by_name_passes_the_window() -> None:
    policy = view_policy_by_name("named_windowed", recent_n=3)
    assert isinstance(policy, NamedWindowedSummary)
    assert policy.recent_n == 3


def test_unknown_view_policy_names_it_and_lists_the_known_ones() -> None:
    # errors.py: "Every error hubbub raises, under one root" — a bad name is a UsageError.
    with pytest.raises(UsageError) as info:
        view_policy_by_name("everything")
    assert "'everything'" in str(info.value)
    for known in ("full_transcript", "named_full_transcript", "named_windowed", "windowed"):
        assert known in str(info.value)
