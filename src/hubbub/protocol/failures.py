"""Failed requests on the wire: a :class:`~hubbub.errors.HubbubError` to a response and back.

A failed :class:`~hubbub.protocol.frames.ResponseFrame` has ``ok`` false,
``error_code`` and ``error_message`` (the exception's text), as AG2's clients
expect. ``error_code`` is one of the codes AG2's vocabulary defines
(:data:`WIRE_CODES`): the exception's own ``code`` when it is one of them,
else that of its nearest ancestor that has one (``channel_rule`` travels as
``protocol_error``, ``inbox_full`` and ``rate_limited`` as ``access_denied``,
``usage`` as ``error``), so an AG2 client raises the matching class. One
exception: ``channel_closed`` travels as ``protocol_error``, which is what
AG2's hub answers for a send to a channel that is not active. The
exception's precise code and typed fields travel in ``result``, which a
failure leaves otherwise unused, as an object holding whichever of these
are set::

    {"code": str, "channel_id": str, "agent_id": str, "reason": str, "retry_after": float}

``code`` is there when it differs from ``error_code``. ``reason`` is the
stable name of the rule or condition (``"not_bound"``, ``"invite_rejected"``,
``"access.outbound_to"`` ...); ``retry_after`` comes with ``rate_limited``.
A client rebuilds the same exception class with the same fields, so code
that inspects ``err.reason`` works over any link.
"""

from __future__ import annotations

from typing import Any

from hubbub.errors import ChannelClosedError, HubbubError, RateLimitedError, error_for_code

__all__ = ["WIRE_CODES", "error_from_failure", "failure_details", "wire_code"]

WIRE_CODES: frozenset[str] = frozenset(
    {"not_found", "access_denied", "protocol_error", "auth_failed", "error"}
)
"""The error codes AG2's vocabulary defines; the only ones sent as ``error_code`` / ``code``."""


_WIRE_OVERRIDES: dict[type[HubbubError], str] = {ChannelClosedError: "protocol_error"}


def _wire_code_of(cls: type[HubbubError]) -> str:
    for klass in cls.__mro__:
        if klass in _WIRE_OVERRIDES:
            return _WIRE_OVERRIDES[klass]
        code = getattr(klass, "code", None)
        if code in WIRE_CODES:
            return str(code)
    return HubbubError.code


def wire_code(exc: HubbubError) -> str:
    """The code to send for ``exc``: its own, or its nearest ancestor's, among :data:`WIRE_CODES`."""
    return _wire_code_of(type(exc))


def failure_details(exc: HubbubError) -> dict[str, Any] | None:
    """The typed fields of ``exc`` to send as a failed response's ``result`` (None when there are none).

    Includes ``code`` when the exception's own code is not its :func:`wire_code`.
    """
    details: dict[str, Any] = {}
    if exc.code != wire_code(exc):
        details["code"] = exc.code
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

    A precise ``code`` in ``details`` wins when it travels as ``code``.
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
    precise = fields.get("code")
    if isinstance(precise, str) and _wire_code_of(error_for_code(precise)) == code:
        cls = error_for_code(precise)
    if issubclass(cls, RateLimitedError):
        retry_after = fields.get("retry_after")
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool):
            retry_after = 0.0
        return cls(message, retry_after=float(retry_after), **kwargs)
    return cls(message, **kwargs)
