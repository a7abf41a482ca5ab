"""A failed response rebuilds the exception the hub raised: same class, message and typed fields."""

from __future__ import annotations

import msgspec
import pytest

from hubbub.errors import (
    AccessDeniedError,
    ChannelClosedError,
    ChannelRuleError,
    HubbubError,
    InboxFull,
    NotFoundError,
    RateLimitedError,
    UsageError,
    error_for_code,
)
from hubbub.protocol.codec import decode_frame, encode_frame
from hubbub.protocol.failures import WIRE_CODES, error_from_failure, failure_details, wire_code
from hubbub.protocol.frames import ResponseFrame


def over_the_wire(exc: HubbubError) -> HubbubError:
    frame = ResponseFrame("r1", False, failure_details(exc), wire_code(exc), str(exc))
    back = decode_frame(encode_frame(frame))
    assert isinstance(back, ResponseFrame)
    return error_from_failure(back.error_code, back.error_message, back.result)


@pytest.mark.parametrize(
    "exc",
    [
        NotFoundError("no agent 'x'", agent_id="x", reason="unknown_agent"),
        AccessDeniedError("not yours", channel_id="c1", agent_id="a1", reason="not_bound"),
        ChannelRuleError("out of turn", channel_id="c2", reason="out_of_turn"),
        RateLimitedError("slow down", retry_after=1.5, agent_id="a2", reason="limits.rate"),
        ChannelClosedError("closed", channel_id="c3", reason="consulting_complete"),
        UsageError("bad argument"),
        HubbubError("plain"),
    ],
)
def test_the_exception_comes_back_whole(exc: HubbubError) -> None:
    back = over_the_wire(exc)
    assert type(back) is type(exc)
    assert (str(back), back.channel_id, back.agent_id, back.reason) == (
        str(exc),
        exc.channel_id,
        exc.agent_id,
        exc.reason,
    )
    if isinstance(exc, RateLimitedError):
        assert isinstance(back, RateLimitedError)
        assert back.retry_after == 1.5


def test_no_fields_means_no_result() -> None:
    assert failure_details(HubbubError("plain")) is None
    frame = msgspec.json.decode(encode_frame(ResponseFrame("r", False, None, "error", "plain")))
    assert frame["result"] is None


@pytest.mark.parametrize(
    "details", [None, "text", [1], {"reason": 3, "agent_id": ["x"], "retry_after": "soon"}]
)
def test_unexpected_details_are_ignored(details: object) -> None:
    back = error_from_failure("rate_limited", "slow down", details)
    assert isinstance(back, RateLimitedError)
    assert (back.reason, back.agent_id, back.retry_after) == ("", None, 0.0)


def test_an_unknown_code_gives_the_root_class() -> None:
    back = error_from_failure("quota_exceeded", "over quota")
    assert type(back) is HubbubError
    assert error_for_code("quota_exceeded") is HubbubError


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (NotFoundError("x"), "not_found"),
        (ChannelRuleError("out of turn"), "protocol_error"),
        (RateLimitedError("slow down", retry_after=1.0), "access_denied"),
        (InboxFull("full"), "access_denied"),
        (UsageError("bad argument"), "error"),
        (ChannelClosedError("closed"), "protocol_error"),
        (HubbubError("plain"), "error"),
    ],
)
def test_the_wire_code_is_one_ag2_knows_and_the_precise_one_rides_in_result(
    exc: HubbubError, sent: str
) -> None:
    assert wire_code(exc) in WIRE_CODES
    assert wire_code(exc) == sent
    details = failure_details(exc)
    if exc.code == sent:
        assert details is None or "code" not in details
    else:
        assert details is not None
        assert details["code"] == exc.code


def test_a_precise_code_that_contradicts_the_wire_code_is_ignored() -> None:
    back = error_from_failure("not_found", "gone", {"code": "rate_limited"})
    assert type(back) is NotFoundError
