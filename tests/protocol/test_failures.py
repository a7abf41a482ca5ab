"""A failed response rebuilds the exception the hub raised: same class, message and typed fields."""

from __future__ import annotations

import msgspec
import pytest

from hubbub.errors import (
    AccessDeniedError,
    ChannelRuleError,
    HubbubError,
    NotFoundError,
    RateLimitedError,
    error_for_code,
)
from hubbub.protocol.codec import decode_frame, encode_frame
from hubbub.protocol.failures import error_from_failure, failure_details
from hubbub.protocol.frames import ResponseFrame


def over_the_wire(exc: HubbubError) -> HubbubError:
    frame = ResponseFrame("r1", False, failure_details(exc), exc.code, str(exc))
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
