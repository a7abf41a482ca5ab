"""Durations and rule validation: every refusal names the bad value or field."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from hubbub.errors import UsageError
from hubbub.model import (
    AccessBlock,
    ChannelTypeAccess,
    InboxBlock,
    LimitsBlock,
    RateBlock,
    Rule,
    parse_duration,
    validate_rule,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        ("45", 45.0),
        ("1.5h", 5400.0),
        (" 10 s ", 10.0),
        ("", 0.0),
        (5, 5.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    result = parse_duration(value)
    assert result == seconds
    assert type(result) is float


@pytest.mark.parametrize("value", ["-1s", "abc", "5x", "s", "1h30m", "2 hours"])
def test_parse_duration_refuses_unreadable_strings_naming_them(value: str) -> None:
    with pytest.raises(UsageError, match=re.escape(repr(value))) as info:
        parse_duration(value)
    assert "'30s'" in str(info.value)  # tells the user what to write instead


def test_parse_duration_refuses_a_negative_number() -> None:
    with pytest.raises(UsageError, match=r"must not be negative, got -3"):
        parse_duration(-3)


@pytest.mark.parametrize("value", [True, False])
def test_parse_duration_refuses_booleans(value: bool) -> None:
    with pytest.raises(UsageError, match=rf"got {value}"):
        parse_duration(value)


def test_default_rule_is_valid_and_returned_as_is() -> None:
    rule = Rule()
    assert validate_rule(rule) is rule


def test_default_rule_is_permissive() -> None:
    rule = Rule()
    assert rule.access.inbound_from == ["*"]
    assert rule.access.outbound_to == ["*"]
    assert rule.access.channel_types.initiate == ["*"]
    assert rule.access.channel_types.accept == ["*"]
    assert rule.limits.max_concurrent_channels == 0
    assert rule.limits.rate.per_minute == 0
    assert rule.limits.inbox.max_pending == 1000
    assert parse_duration(rule.limits.channel_ttl_default) == 7200.0
    assert parse_duration(rule.limits.task_ttl_default) == 900.0


def test_a_tightened_but_sound_rule_is_valid() -> None:
    rule = Rule(
        access=AccessBlock(
            inbound_from=["planner-*", "review-[ab]"],
            outbound_to=["writer"],
            channel_types=ChannelTypeAccess(initiate=[], accept=["consulting"]),
        ),
        limits=LimitsBlock(
            max_concurrent_channels=3,
            channel_ttl_default="250ms",
            task_ttl_default="",
            rate=RateBlock(per_minute=60, burst=5),
            delegation_depth=0,
            inbox=InboxBlock(max_pending=1, overflow="drop_newest", high_water=0),
        ),
    )
    assert validate_rule(rule) is rule


def _with_access(**changes: Any) -> Rule:
    return Rule(access=msgspec.structs.replace(AccessBlock(), **changes))


def _with_channel_types(**changes: Any) -> Rule:
    return Rule(access=AccessBlock(channel_types=msgspec.structs.replace(ChannelTypeAccess(), **changes)))


def _with_limits(**changes: Any) -> Rule:
    return Rule(limits=msgspec.structs.replace(LimitsBlock(), **changes))


MALFORMED: list[tuple[str, Rule, str]] = [
    ("negative channels", _with_limits(max_concurrent_channels=-1), "limits.max_concurrent_channels"),
    ("negative tasks", _with_limits(max_concurrent_tasks=-2), "limits.max_concurrent_tasks"),
    ("negative depth", _with_limits(delegation_depth=-1), "limits.delegation_depth"),
    ("negative rate", _with_limits(rate=RateBlock(per_minute=-5)), "limits.rate.per_minute"),
    ("negative burst", _with_limits(rate=RateBlock(burst=-1)), "limits.rate.burst"),
    ("max_pending 0", _with_limits(inbox=InboxBlock(max_pending=0)), "limits.inbox.max_pending"),
    ("max_pending -1", _with_limits(inbox=InboxBlock(max_pending=-1)), "limits.inbox.max_pending"),
    ("negative high_water", _with_limits(inbox=InboxBlock(high_water=-1)), "limits.inbox.high_water"),
    ("bad glob inbound", _with_access(inbound_from=["[abc"]), "access.inbound_from"),
    ("bad glob outbound", _with_access(outbound_to=["ok", "review-[ab"]), "access.outbound_to"),
    ("empty glob inbound", _with_access(inbound_from=[""]), "access.inbound_from"),
    ("empty glob outbound", _with_access(outbound_to=["a", ""]), "access.outbound_to"),
    ("glob not a list", _with_access(inbound_from="*"), "access.inbound_from"),
    ("bad glob initiate", _with_channel_types(initiate=["[abc"]), "access.channel_types.initiate"),
    ("empty glob accept", _with_channel_types(accept=[""]), "access.channel_types.accept"),
    ("bad channel ttl", _with_limits(channel_ttl_default="soon"), "limits.channel_ttl_default"),
    ("bad task ttl", _with_limits(task_ttl_default="-5m"), "limits.task_ttl_default"),
    # Found by these tests: validate_rule does not look at these fields (see the report).
    ("unknown overflow", _with_limits(inbox=InboxBlock(overflow="explode")), "limits.inbox.overflow"),  # type: ignore[arg-type]
    ("max_pending a string", _with_limits(inbox=InboxBlock(max_pending="10")), "limits.inbox.max_pending"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("rule", "field"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_validate_rule_refuses_a_malformed_field_naming_its_path(rule: Rule, field: str) -> None:
    with pytest.raises(UsageError, match=re.escape(field)):
        validate_rule(rule)


def test_glob_refusal_quotes_the_bad_pattern() -> None:
    with pytest.raises(UsageError, match=re.escape("'[abc'")):
        validate_rule(_with_access(inbound_from=["ok-*", "[abc"]))


def test_ttl_refusal_quotes_the_bad_value() -> None:
    with pytest.raises(UsageError) as info:
        validate_rule(_with_limits(channel_ttl_default="soon"))
    assert "limits.channel_ttl_default" in info.value.message
    assert "'soon'" in info.value.message
    assert isinstance(info.value.__cause__, UsageError)


def test_number_refusal_says_the_value() -> None:
    with pytest.raises(UsageError, match=r"limits\.max_concurrent_channels must be 0 or more, got -1"):
        validate_rule(_with_limits(max_concurrent_channels=-1))
    with pytest.raises(UsageError, match=r"limits\.inbox\.max_pending must be 1 or more, got 0"):
        validate_rule(_with_limits(inbox=InboxBlock(max_pending=0)))


def test_decoding_json_applies_defaults_to_missing_blocks() -> None:
    rule = msgspec.json.decode(b'{"limits": {"inbox": {"max_pending": 5}}}', type=Rule)
    assert rule.limits.inbox.max_pending == 5
    assert rule.limits.inbox.overflow == "reject"
    assert rule.access.inbound_from == ["*"]
    assert validate_rule(rule) is rule
