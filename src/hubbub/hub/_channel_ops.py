"""The wire ops on channels and turns: param checks, then the hub's own methods.

``create_channel``, ``post_envelope``, ``pending_turns_for``, ``report_turn_failure``,
``turn_context`` and ``post_reply`` act as an agent bound to the calling connection; the
channel reads (``get_channel``, ``read_wal``, ``find_envelope_by_causation``, ``can_send``) and
``close_channel`` are for a participant of the channel.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ..adapters.base import AgentReply
from ..errors import ProtocolError
from ..model.channel import ChannelState
from ..model.envelope import EV_TEXT, Envelope
from ..model.turn import PendingTurn
from ._params import as_type as _as
from ._params import count as _count
from ._params import opt_dict as _opt_dict
from ._params import opt_str as _opt_str
from ._params import req_str as _str
from ._params import ttl as _ttl

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "can_send",
    "close_channel",
    "create_channel",
    "find_by_causation",
    "get_channel",
    "list_channels",
    "pending_turns_for",
    "post_envelope",
    "post_reply",
    "read_wal",
    "report_turn_failure",
    "turn_context",
]

_MOST_READ = 1 << 62
"""Above any channel's length (SQLite's integers end at 2**63)."""


async def create_channel(session: Session, p: dict[str, Any]) -> Any:
    creator = session._require_bound(p.get("creator_id"), "creator_id")
    if p.get("manifest_type") == "broadcast":
        raise ProtocolError(
            "broadcast channels are opened by the hub: send the 'broadcast' op instead",
            reason="not_creatable",
        )
    participants = p.get("participants")
    if not isinstance(participants, list) or not all(isinstance(x, str) for x in participants):
        raise ProtocolError(
            f"param 'participants' must be a list of agent names or ids, got {participants!r}"
        )
    return await session.hub.create_channel(
        creator,
        _str(p, "manifest_type"),
        [x for x in participants if x != creator],
        version=_count(p, "manifest_version", 1),
        knobs=_opt_dict(p, "knobs"),
        ttl=_ttl(p.get("ttl")),
        labels=_opt_dict(p, "labels"),
        intent=_opt_str(p, "intent"),
        first=_opt_str(p, "first"),
    )


async def get_channel(session: Session, p: dict[str, Any]) -> Any:
    channel_id = _str(p, "channel_id")
    return await session._require_member(channel_id)


async def list_channels(session: Session, p: dict[str, Any]) -> Any:
    agent_id = p.get("agent_id")
    agents = [session._require_bound(agent_id)] if agent_id else sorted(session.bound)
    limit = _count(p, "limit", 50)
    state = _opt_str(p, "state")
    if state and state not in ChannelState._value2member_map_:
        known = ", ".join(s.value for s in ChannelState)
        raise ProtocolError(f"param 'state' must be one of {known}, got {state!r}")
    seen: dict[str, Any] = {}
    for a in agents:
        for meta in session.hub.list_channels(agent_id=a, state=state, limit=limit):
            seen[meta.channel_id] = meta
    return list(seen.values())[:limit]


async def close_channel(session: Session, p: dict[str, Any]) -> Any:
    channel_id = _str(p, "channel_id")
    await session._require_member(channel_id)
    # No reason given: ag2's hub records "explicit_close", and so does this one.
    return await session.hub.close_channel(channel_id, _opt_str(p, "reason") or "explicit_close")


def post_envelope(session: Session, p: dict[str, Any]) -> Awaitable[str]:
    # Not a coroutine: the hot path, one frame less.
    envelope = _as(Envelope, p.get("envelope"), "envelope")
    sender = session._require_bound(envelope.sender_id, "envelope.sender_id")
    return session.hub.post_envelope(envelope, sender_id=sender)


async def read_wal(session: Session, p: dict[str, Any]) -> list[Envelope]:
    channel_id = _str(p, "channel_id")
    since, until, limit = p.get("since"), p.get("until"), p.get("limit")
    if not isinstance(since, int) and not isinstance(until, int):
        _check_wal_range(since, until, limit)
    await session._require_member(channel_id)
    if isinstance(since, int) or isinstance(until, int):
        # ag2's clients page by list position; serve it (a full read) for compatibility.
        everything = await session.hub.read_wal(channel_id)
        start = since if isinstance(since, int) and since > 0 else 0
        end = until if isinstance(until, int) else None
        return everything[start:end]
    return await session.hub.read_wal(channel_id, since=since or None, until=until or None, limit=limit)


async def find_by_causation(session: Session, p: dict[str, Any]) -> Envelope | None:
    channel_id = _str(p, "channel_id")
    await session._require_member(channel_id)
    return await session.hub.find_envelope_by_causation(
        channel_id, _str(p, "sender_id"), _str(p, "causation_id")
    )


async def can_send(session: Session, p: dict[str, Any]) -> bool:
    channel_id = _str(p, "channel_id")
    await session._require_member(channel_id)
    return session.hub.can_send(channel_id, _str(p, "sender_id"), _opt_str(p, "event_type") or EV_TEXT)


async def pending_turns_for(session: Session, p: dict[str, Any]) -> list[PendingTurn]:
    return session.hub.pending_turns_for(session._require_bound(p.get("agent_id")))


async def report_turn_failure(session: Session, p: dict[str, Any]) -> None:
    """ag2's default handler reports a turn that raised: audited as ``turn_failed`` and given to
    listeners' ``on_turn_failed``. Unlike a nack, nothing is redelivered."""
    agent_id = session._require_bound(p.get("agent_id"))
    channel_id = _str(p, "channel_id")
    await session._require_member(channel_id)
    envelope_id = _str(p, "envelope_id")
    error = p.get("error")
    reason = (error if isinstance(error, str) else "")[:2000]
    session.hub.governance.audit(
        "turn_failed",
        agent_id=agent_id,
        channel_id=channel_id,
        reason=reason,
        data={"envelope_id": envelope_id},
    )
    if session.hub.listeners.wants("on_turn_failed"):
        session.hub.listeners.emit("on_turn_failed", channel_id, agent_id, envelope_id, reason)


async def turn_context(session: Session, p: dict[str, Any]) -> Any:
    agent_id = session._require_bound(p.get("agent_id"))
    return await session.hub.turn_context(_str(p, "channel_id"), agent_id, _str(p, "envelope_id"))


async def post_reply(session: Session, p: dict[str, Any]) -> str | None:
    agent_id = session._require_bound(p.get("agent_id"))
    reply = _as(AgentReply, p.get("reply"), "reply")
    return await session.hub.post_reply(_str(p, "channel_id"), agent_id, _str(p, "causation_id"), reply)


def _check_wal_range(since: Any, until: Any, limit: Any) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"param {name!r} must be an envelope id (string), got {value!r}")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= _MOST_READ
    ):
        raise ProtocolError(f"param 'limit' must be an integer from 0 to {_MOST_READ}, got {limit!r}")
