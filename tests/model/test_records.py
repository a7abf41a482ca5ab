"""Wire records: JSON round trips, and the field names AG2's network clients decode."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgspec
import pytest
from ag2.network import channel as ag2_channel
from ag2.network import envelope as ag2_envelope
from ag2.network import identity as ag2_identity
from ag2.network import rule as ag2_rule

from hubbub.model import (
    CHANNEL_EVENTS,
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_EXPIRED,
    EV_CHANNEL_INVITE,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_INVITE_REJECT,
    EV_CHANNEL_OPENED,
    EV_CONTEXT_SET,
    EV_EXPECTATION_VIOLATED,
    EV_PACKET,
    EV_TASK_CANCEL_REQUEST,
    EV_TASK_CANCELLED,
    EV_TEXT,
    AccessBlock,
    AuthBlock,
    ChannelManifest,
    ChannelMetadata,
    ChannelState,
    ChannelTypeAccess,
    CostProfile,
    Envelope,
    Expectation,
    InboxBlock,
    LimitsBlock,
    ObservedStat,
    Participant,
    ParticipantRole,
    ParticipantSchema,
    Passport,
    RateBlock,
    Resume,
    ResumeExample,
    Rule,
    is_control_event,
    visible_to,
)

# ── sample records, every optional field filled ────────────────────────────


def envelope() -> Envelope:
    return Envelope(
        channel_id="ch-1",
        sender_id="agent-a",
        audience=["agent-b", "agent-c"],
        event_type=EV_PACKET,
        event_data={
            "routing": {"kind": "handoff", "target": "agent-b"},
            "body": "over to you",
            "n": [1, 2.5],
        },
        envelope_id="0000000000000001abcdefabcdefabcd",
        task_id="task-1",
        causation_id="0000000000000000ffffffffffffffff",
        trace_id="trace-1",
        priority="urgent",
        depth=2,
        idempotency_key="idem-1",
        created_at="2026-01-02T03:04:05.678901Z",
        ttl_seconds=90,
    )


def passport() -> Passport:
    return Passport(
        name="translator",
        owner="team-x",
        provider="anthropic",
        model="claude",
        cost=CostProfile(input_per_mtok=3.0, output_per_mtok=15.0, latency_tier="fast"),
        region="eu-west-1",
        auth=AuthBlock(
            scheme="jwt",
            issuer="https://issuer.example",
            audience="hubbub",
            key_fingerprint="sha256:abcd",
            claim={"sub": "translator", "scopes": ["a", "b"]},
        ),
        kind="remote_agent",
        hub_id="hub-2",
        version=3,
        agent_id="0123456789abcdef0123456789abcdef",
        created_at="2026-01-02T03:04:05.000000Z",
    )


def resume() -> Resume:
    return Resume(
        claimed_capabilities=["translate", "summarize"],
        domains=["legal"],
        summary="Translates legal text",
        examples=[
            ResumeExample(
                title="Contract FR→EN",
                outcome="completed",
                task_id="task-9",
                channel_id="ch-9",
                when="2026-01-01T00:00:00.000000Z",
                note="42 pages",
            )
        ],
        observed={"translate": ObservedStat(n=10, completed=8, failed=1, expired=1, p50_latency_ms=1200)},
        version=4,
        last_updated="2026-01-02T00:00:00.000000Z",
    )


def rule() -> Rule:
    return Rule(
        version=2,
        access=AccessBlock(
            inbound_from=["planner-*"],
            outbound_to=["writer", "review-[ab]"],
            channel_types=ChannelTypeAccess(initiate=["consulting"], accept=["discussion", "conv*"]),
        ),
        limits=LimitsBlock(
            max_concurrent_channels=4,
            max_concurrent_tasks=2,
            channel_ttl_default="30m",
            task_ttl_default="90s",
            rate=RateBlock(per_minute=60, burst=10),
            delegation_depth=3,
            inbox=InboxBlock(max_pending=50, overflow="drop_oldest", high_water=40),
        ),
    )


def expectation() -> Expectation:
    return Expectation(
        name="reply_within", on_violation="auto_close", params={"seconds": 600}, applies_to=["respondent"]
    )


def manifest() -> ChannelManifest:
    return ChannelManifest(
        type="discussion",
        version=2,
        participants=ParticipantSchema(min=2, max=5, roles=["initiator", "participant"]),
        knobs_schema={"max_turns": "int"},
        default_view_policy="named_windowed",
        expectations=[expectation()],
    )


def metadata() -> ChannelMetadata:
    return ChannelMetadata(
        channel_id="ch-1",
        manifest=manifest(),
        creator_id="agent-a",
        participants=[
            Participant(agent_id="agent-a", role=ParticipantRole.INITIATOR, order=0, joined_at="t0"),
            Participant(agent_id="agent-b", role=ParticipantRole.PARTICIPANT, order=1, joined_at="t1"),
        ],
        state=ChannelState.CLOSED,
        created_at="2026-01-02T03:04:05.000000Z",
        expires_at="2026-01-02T05:04:05.000000Z",
        closed_at="2026-01-02T04:00:00.000000Z",
        close_reason="max_turns",
        parent_channel_id="ch-0",
        knobs={"max_turns": 6, "strict": True},
        labels={"intent": "review"},
        required_acks=1,
        pending_acks=["agent-b"],
        rejected_by=["agent-c"],
    )


SAMPLES: list[tuple[type[Any], Any]] = [
    (Envelope, envelope()),
    (Passport, passport()),
    (Resume, resume()),
    (Rule, rule()),
    (Expectation, expectation()),
    (ChannelManifest, manifest()),
    (ChannelMetadata, metadata()),
    (Rule, Rule()),
    (Passport, Passport(name="bare")),
    (Envelope, Envelope(channel_id="ch-2")),
]


# ── JSON round trip ─────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("cls", "record"), SAMPLES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(SAMPLES)]
)
def test_json_round_trip_is_lossless(cls: type[Any], record: Any) -> None:
    decoded = msgspec.json.decode(msgspec.json.encode(record), type=cls)
    assert decoded == record


def test_channel_metadata_decodes_enums_from_their_string_values() -> None:
    raw = json.loads(msgspec.json.encode(metadata()))
    assert raw["state"] == "closed"
    assert raw["participants"][0]["role"] == "initiator"

    decoded = msgspec.json.decode(msgspec.json.encode(metadata()), type=ChannelMetadata)
    assert decoded.state is ChannelState.CLOSED
    assert decoded.state.is_terminal
    assert decoded.participants[1].role is ParticipantRole.PARTICIPANT
    assert decoded.participant_ids() == ["agent-a", "agent-b"]
    assert decoded.id == "ch-1"


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (ChannelState.PENDING, False),
        (ChannelState.ACTIVE, False),
        (ChannelState.CLOSING, False),
        (ChannelState.CLOSED, True),
        (ChannelState.EXPIRED, True),
    ],
)
def test_channel_state_terminality(state: ChannelState, terminal: bool) -> None:
    assert state.is_terminal is terminal
    assert msgspec.structs.replace(metadata(), state=state).is_terminal() is terminal


def test_decode_refuses_an_unknown_channel_state() -> None:
    raw = json.loads(msgspec.json.encode(metadata()))
    raw["state"] = "sleeping"
    with pytest.raises(msgspec.ValidationError, match="state"):
        msgspec.json.decode(json.dumps(raw), type=ChannelMetadata)


# ── compatibility with AG2's records ────────────────────────────────────────


def test_envelope_encodes_exactly_ag2_field_names_in_order() -> None:
    ours = json.loads(msgspec.json.encode(envelope()))
    assert list(ours) == [f.name for f in dataclasses.fields(ag2_envelope.Envelope)]


def test_envelope_with_defaults_still_encodes_every_ag2_field() -> None:
    # ag2's Envelope has no defaults for audience, event_type, event_data: omitting them breaks cls(**d).
    ours = json.loads(msgspec.json.encode(Envelope(channel_id="ch-2")))
    assert list(ours) == [f.name for f in dataclasses.fields(ag2_envelope.Envelope)]
    theirs = ag2_envelope.Envelope.from_dict(ours)
    assert theirs.audience is None
    assert theirs.event_type == EV_TEXT
    assert theirs.event_data == {}


def test_ag2_envelope_from_dict_accepts_our_bytes_unchanged() -> None:
    data = msgspec.json.encode(envelope())
    theirs = ag2_envelope.Envelope.from_dict(json.loads(data))
    assert theirs.to_dict() == json.loads(data)
    assert theirs.envelope_id == "0000000000000001abcdefabcdefabcd"
    assert theirs.audience == ["agent-b", "agent-c"]
    # And back: what an ag2 client sends decodes into ours.
    assert msgspec.json.decode(theirs.to_json(), type=Envelope) == envelope()


def _ag2_pairs() -> list[tuple[type[Any], Any]]:
    if ag2_envelope is None:
        return []
    return [
        (Passport, ag2_identity.Passport),
        (AuthBlock, ag2_identity.AuthBlock),
        (CostProfile, ag2_identity.CostProfile),
        (Resume, ag2_identity.Resume),
        (ResumeExample, ag2_identity.ResumeExample),
        (ObservedStat, ag2_identity.ObservedStat),
        (Rule, ag2_rule.Rule),
        (AccessBlock, ag2_rule.AccessBlock),
        (ChannelTypeAccess, ag2_rule.ChannelTypeAccess),
        (LimitsBlock, ag2_rule.LimitsBlock),
        (RateBlock, ag2_rule.RateBlock),
        (InboxBlock, ag2_rule.InboxBlock),
        (ChannelMetadata, ag2_channel.ChannelMetadata),
        (ChannelManifest, ag2_channel.ChannelManifest),
        (ParticipantSchema, ag2_channel.ParticipantSchema),
        (Participant, ag2_channel.Participant),
        (Expectation, ag2_channel.Expectation),
    ]


@pytest.mark.parametrize(("ours", "theirs"), _ag2_pairs(), ids=lambda c: c.__name__)
def test_field_names_match_ag2(ours: type[msgspec.Struct], theirs: type[Any]) -> None:
    assert {f.name for f in msgspec.structs.fields(ours)} == {f.name for f in dataclasses.fields(theirs)}


@pytest.mark.parametrize(
    ("record", "loader"),
    [
        (passport(), lambda d: ag2_identity.Passport.from_dict(d)),
        (resume(), lambda d: ag2_identity.Resume.from_dict(d)),
        (rule(), lambda d: ag2_rule.Rule.from_dict(d)),
        (manifest(), lambda d: ag2_channel.ChannelManifest.from_dict(d)),
        (metadata(), lambda d: ag2_channel.ChannelMetadata.from_dict(d)),
    ],
    ids=["Passport", "Resume", "Rule", "ChannelManifest", "ChannelMetadata"],
)
def test_ag2_from_dict_reads_our_json_without_loss(record: Any, loader: Any) -> None:
    ours = json.loads(msgspec.json.encode(record))
    theirs = loader(ours)
    assert theirs.to_dict() == ours


# ── visibility and control events ───────────────────────────────────────────


def test_broadcast_is_visible_to_everyone() -> None:
    env = Envelope(channel_id="ch", sender_id="a", audience=None)
    assert visible_to(env, "a")
    assert visible_to(env, "b")
    assert visible_to(env, "stranger")


def test_addressed_envelope_is_visible_to_sender_and_audience_only() -> None:
    env = Envelope(channel_id="ch", sender_id="a", audience=["b"])
    assert visible_to(env, "a")
    assert visible_to(env, "b")
    assert not visible_to(env, "c")


def test_sender_sees_its_own_envelope_even_with_an_empty_audience() -> None:
    env = Envelope(channel_id="ch", sender_id="a", audience=[])
    assert visible_to(env, "a")
    assert not visible_to(env, "b")


@pytest.mark.parametrize(
    "event_type",
    [
        EV_CHANNEL_INVITE,
        EV_CHANNEL_INVITE_ACK,
        EV_CHANNEL_INVITE_REJECT,
        EV_CHANNEL_OPENED,
        EV_CHANNEL_CLOSED,
        EV_CHANNEL_EXPIRED,
        EV_TASK_CANCEL_REQUEST,
        EV_TASK_CANCELLED,
        "ag2.task.anything_new",
    ],
)
def test_lifecycle_and_task_events_are_control_events(event_type: str) -> None:
    assert is_control_event(event_type)


@pytest.mark.parametrize(
    "event_type",
    [
        EV_TEXT,
        EV_PACKET,
        EV_CONTEXT_SET,
        EV_EXPECTATION_VIOLATED,
        "ag2.channel",
        "ag2.taskish",
        "custom.event",
    ],
)
def test_other_events_are_not_control_events(event_type: str) -> None:
    assert not is_control_event(event_type)


def test_channel_events_constant_lists_the_six_lifecycle_events() -> None:
    assert (
        frozenset(
            {
                "ag2.channel.invite",
                "ag2.channel.invite.ack",
                "ag2.channel.invite.reject",
                "ag2.channel.opened",
                "ag2.channel.closed",
                "ag2.channel.expired",
            }
        )
        == CHANNEL_EVENTS
    )


# ── Envelope.text ───────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("event_data", "text"),
    [
        ({"text": "hello"}, "hello"),
        ({"body": "packet body", "routing": {"kind": "text"}}, "packet body"),
        ({"text": "wins", "body": "loses"}, "wins"),
        ({"text": None, "body": "fallback"}, "fallback"),
        ({"text": 42}, "42"),
        ({}, ""),
        ({"other": "x"}, ""),
    ],
)
def test_envelope_text(event_data: dict[str, Any], text: str) -> None:
    assert Envelope(channel_id="ch", event_data=event_data).text == text


def test_envelope_defaults_are_an_unstamped_broadcast_text() -> None:
    env = Envelope(channel_id="ch")
    assert (env.sender_id, env.envelope_id, env.created_at) == ("", "", "")
    assert env.audience is None
    assert env.event_type == EV_TEXT
    assert env.priority == "normal"
    assert env.depth == 0


def test_envelope_is_immutable() -> None:
    env = envelope()
    with pytest.raises(AttributeError):
        env.sender_id = "mallory"  # type: ignore[misc]
