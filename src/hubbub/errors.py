"""Every error hubbub raises, under one root.

::

    HubbubError                      code="error"
    ├── NotFoundError                code="not_found"       unknown agent, channel, envelope
    ├── AccessDeniedError            code="access_denied"   a rule or the arbiter said no
    │   ├── InboxFull                code="inbox_full"      recipient holds max_pending unacked
    │   └── RateLimitedError         code="rate_limited"    sender is past its rate; see retry_after
    ├── AuthError                    code="auth_failed"     bad or missing credential
    ├── ProtocolError                code="protocol_error"  malformed frame or envelope
    │   └── ChannelRuleError         code="channel_rule"    the channel's adapter refused a send
    │       └── WorkflowGraphError   code="invalid_graph"   a transition graph that cannot run
    ├── ChannelClosedError           code="channel_closed"  the channel no longer takes sends
    ├── UsageError                   code="usage"           a developer's mistake (bad argument)
    ├── StorageError                 code="storage"         the store failed or holds bad data
    └── TransportError               code="transport"       the link to the hub broke
        └── HubTimeoutError          code="timeout"         no answer in time

Every error carries a stable ``code`` (the wire ``error_code``) and, where it
applies, ``channel_id``, ``agent_id`` and ``reason``. :func:`error_for_code`
maps a wire code back to its class, so a client re-raises what the hub raised.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDeniedError",
    "AuthError",
    "ChannelClosedError",
    "ChannelRuleError",
    "HubTimeoutError",
    "HubbubError",
    "InboxFull",
    "NotFoundError",
    "ProtocolError",
    "RateLimitedError",
    "StorageError",
    "TransportError",
    "UsageError",
    "WorkflowGraphError",
    "error_for_code",
]


class HubbubError(Exception):
    """Root of every hubbub error.

    ``code`` names the family on the wire; ``channel_id``, ``agent_id`` and
    ``reason`` say where and why, when known.
    """

    code: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        channel_id: str | None = None,
        agent_id: str | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.channel_id = channel_id
        self.agent_id = agent_id
        self.reason = reason


class NotFoundError(HubbubError):
    """The named agent, channel, envelope or task does not exist."""

    code = "not_found"


class AccessDeniedError(HubbubError):
    """A rule or an arbiter refused the action; ``reason`` names the rule."""

    code = "access_denied"


class InboxFull(AccessDeniedError):
    """The recipient holds ``max_pending`` unacked envelopes; retry after it acks."""

    code = "inbox_full"


class RateLimitedError(AccessDeniedError):
    """The sender used up its rate (``limits.rate``); retry after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AuthError(HubbubError):
    """The credential was missing, malformed or wrong."""

    code = "auth_failed"


class ProtocolError(HubbubError):
    """A frame or envelope was malformed or broke the protocol."""

    code = "protocol_error"


class ChannelRuleError(ProtocolError):
    """The channel's adapter refused the envelope (out of turn, wrong shape)."""

    code = "channel_rule"


class WorkflowGraphError(ChannelRuleError):
    """A transition graph names an unknown target, condition or speaker."""

    code = "invalid_graph"


class ChannelClosedError(HubbubError):
    """The channel is closed or expired and takes no more sends."""

    code = "channel_closed"


class UsageError(HubbubError):
    """The caller passed something that can never work (a developer's mistake)."""

    code = "usage"


class StorageError(HubbubError):
    """The store failed, or holds data the hub cannot trust."""

    code = "storage"


class TransportError(HubbubError):
    """The link to the hub broke or refused the frame."""

    code = "transport"


class HubTimeoutError(TransportError):
    """No answer arrived in time."""

    code = "timeout"


_BY_CODE: dict[str, type[HubbubError]] = {
    cls.code: cls
    for cls in (
        HubbubError,
        NotFoundError,
        AccessDeniedError,
        InboxFull,
        RateLimitedError,
        AuthError,
        ProtocolError,
        ChannelRuleError,
        WorkflowGraphError,
        ChannelClosedError,
        UsageError,
        StorageError,
        TransportError,
        HubTimeoutError,
    )
}


def error_for_code(code: str) -> type[HubbubError]:
    """The exception class for a wire ``error_code``; unknown codes map to the root."""
    return _BY_CODE.get(code, HubbubError)
