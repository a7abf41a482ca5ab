"""Failed requests on the wire: a :class:`~hubbub.errors.HubbubError` to a response and back.

A failed :class:`~hubbub.protocol.frames.ResponseFrame` has ``ok`` false,
``error_code`` (the exception's ``code``) and ``error_message`` (its text),
as AG2's clients expect. The exception's typed fields travel in ``result``,
which a failure leaves otherwise unused, as an object holding whichever of
these are set::

    {"channel_id": str, "agent_id": str, "reason": str, "retry_after": float}

``reason`` is the stable name of the rule or condition (``"not_bound"``,
``"invite_rejected"``, ``"access.outbound_to"`` ...); ``retry_after`` comes
with ``rate_limited``. A client rebuilds the same exception class with the
same fields, so code that inspects ``err.reason`` works over any link.
"""

from __future__ import annotations

from typing import Any

from hubbub.errors import HubbubError, RateLimitedError, error_for_code

__all__ = ["error_from_failure", "failure_details"]


def failure_details(exc: HubbubError) -> dict[str, Any] | None:
    """The typed fields of ``exc`` to send as a failed response's ``result`` (None when there are none)."""
    details: dict[str, Any] = {}
    if exc.channel_id:
        details["channel_id"] = exc.channel_id
    if exc.agent_id:
        details["agent_id"] = exc.agent_id
    if exc.reason:
        details["reason"] = exc.reason
    if isinstance(exc, RateLimitedError):
        details["retry_after"] = exc.retry_after
    return details or None


def error_from_failure(code: str, message: str, details: Any = None) -> HubbubError:
    """The exception a failed response stands for: the class of ``code``, fields from ``details``.

    Unknown codes give a plain :class:`HubbubError`; details of the wrong
    type are ignored, so a response from any server can be turned into an
    exception.
    """
    fields = details if isinstance(details, dict) else {}
    kwargs: dict[str, Any] = {
        key: value
        for key in ("channel_id", "agent_id")
        if isinstance(value := fields.get(key), str) and value
    }
    reason = fields.get("reason")
    if isinstance(reason, str):
        kwargs["reason"] = reason
    cls = error_for_code(code)
    if issubclass(cls, RateLimitedError):
        retry_after = fields.get("retry_after")
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool):
            retry_after = 0.0
        return cls(message, retry_after=float(retry_after), **kwargs)
    return cls(message, **kwargs)
