"""Operator views of the whole hub: every agent, every channel, any WAL, the audit log.

What the ``hubbub`` command line (and any dashboard) shows. These ops read;
none acts as an agent.

Who may call them: ``hub_agents`` is open to every connection, like
``list_agents`` and ``get_resume``, which already show the same records. The
others show what happens between agents, so on a hub that checks credentials
(its :class:`~hubbub.auth.AuthRegistry` does not accept scheme ``"none"``) the
connection must have proved one: at least one agent bound to it, registered or
attached with its key. Any such connection may read everything; there are no
operator roles yet. An in-process (trusted) session and an open hub may always.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import AuthError, ProtocolError
from ..model.audit import AuditRecord
from ..model.channel import ChannelMetadata, ChannelState
from ..model.envelope import Envelope
from ..model.identity import AgentInfo
from ._params import count, opt_str, req_str

if TYPE_CHECKING:
    from .session import Session

__all__ = ["MAX_LIMIT", "audit_query", "hub_agents", "hub_channels", "hub_wal"]

MAX_LIMIT = 10_000
MAX_SCANNED = 100_000
"""Most stored channels one ``hub_channels`` request reads past those in memory (a rare filter
over a long history returns fewer than ``limit``: page on with ``before``)."""
_SCAN_PAGE = 1000
"""The most records one call returns; page with ``since`` for more."""

_STATES = ", ".join(s.value for s in ChannelState)


def _require_viewer(session: Session, op: str) -> None:
    if session.trusted or session.bound or session.hub.auth.open:
        return
    raise AuthError(
        f"op {op!r} shows the whole hub, and this hub checks credentials: register or attach an "
        "agent with its credential on this connection first",
        reason="not_authenticated",
    )


def _limit(params: dict[str, Any], default: int) -> int:
    value = count(params, "limit", default)
    if value > MAX_LIMIT:
        raise ProtocolError(f"param 'limit' must be at most {MAX_LIMIT}, got {value}; page with 'since'")
    return value


def _agent_id(session: Session, params: dict[str, Any], key: str) -> str | None:
    """A name or id param as an agent id; an id the registry no longer knows passes as it is
    (audit records outlive their agents)."""
    value = opt_str(params, key)
    if not value:
        return None
    record = session.hub.registry.find(value)
    return record.passport.agent_id if record is not None else value


async def hub_agents(session: Session, p: dict[str, Any]) -> list[AgentInfo]:
    """Every agent (or those claiming ``capability``, best first) with its resume and liveness."""
    hub = session.hub
    records = hub.registry.select(
        capability=opt_str(p, "capability") or None, kind=opt_str(p, "kind") or None, limit=_limit(p, 50)
    )
    infos = []
    for record in records:
        agent_id = record.passport.agent_id
        assert agent_id is not None
        infos.append(
            AgentInfo(
                passport=record.passport,
                resume=record.resume,
                connected=hub.delivery.endpoint_of(agent_id) is not None,
                open_channels=hub.channels.open_count(agent_id),
            )
        )
    return infos


async def hub_channels(session: Session, p: dict[str, Any]) -> list[ChannelMetadata]:
    """Channels of the whole hub, newest first, filtered by state, type and participant: those in
    memory, then older ones from the store (closed channels that left memory); ``before`` (the
    last channel id of a previous page) pages on."""
    _require_viewer(session, "hub_channels")
    hub = session.hub
    state = opt_str(p, "state") or None
    if state is not None and state not in ChannelState._value2member_map_:
        raise ProtocolError(f"param 'state' must be one of {_STATES}, got {state!r}")
    type_ = opt_str(p, "type") or None
    agent = opt_str(p, "agent") or None
    agent_id = (hub.registry.get(agent).passport.agent_id or "") if agent else None
    limit = _limit(p, 50)
    before = opt_str(p, "before") or None
    cursor = None
    if before is not None:
        last = await hub.fetch_channel(before)  # not_found if unknown
        cursor = (last.created_at, last.channel_id)

    def wanted(meta: ChannelMetadata) -> bool:
        return (
            (state is None or meta.state == state)
            and (type_ is None or meta.manifest.type == type_)
            and (agent_id is None or agent_id in meta.participant_ids())
            and (cursor is None or (meta.created_at, meta.channel_id) < cursor)
        )

    records = hub.channels.of_agent(agent_id) if agent_id else hub.channels.all()
    metas = [r.metadata for r in records if wanted(r.metadata)]
    if state is None or ChannelState(state).is_terminal:
        metas += await _stored_channels(session, wanted, before, limit)
    metas.sort(key=lambda m: (m.created_at, m.channel_id), reverse=True)
    return metas[:limit]


async def _stored_channels(
    session: Session, wanted: Callable[[ChannelMetadata], bool], before: str | None, limit: int
) -> list[ChannelMetadata]:
    """Up to ``limit`` wanted channels not in memory, newest first, reading at most
    :data:`MAX_SCANNED` stored channels."""
    hub, scanned = session.hub, 0
    found: list[ChannelMetadata] = []
    while len(found) < limit and scanned < MAX_SCANNED:
        page = await hub.store.scan_channels(before=before, limit=min(_SCAN_PAGE, MAX_SCANNED - scanned))
        found += [m for m in page if hub.channels.find(m.channel_id) is None and wanted(m)]
        if len(page) < _SCAN_PAGE:
            break
        scanned += len(page)
        before = page[-1].channel_id
    return found


async def hub_wal(session: Session, p: dict[str, Any]) -> list[Envelope]:
    """Any channel's envelopes, oldest first: after ``since`` (at most ``limit``) or the last ``tail``."""
    _require_viewer(session, "hub_wal")
    channel_id = req_str(p, "channel_id")
    await session.hub.fetch_channel(channel_id)  # not_found names it
    since = opt_str(p, "since") or None
    tail = p.get("tail")
    if tail is not None:
        if isinstance(tail, bool) or not isinstance(tail, int) or not 0 < tail <= MAX_LIMIT:
            raise ProtocolError(f"param 'tail' must be an integer from 1 to {MAX_LIMIT}, got {tail!r}")
        if since is not None:
            raise ProtocolError("params 'since' and 'tail' exclude each other: page forward or read the end")
        return await session.hub.store.read_wal_tail(channel_id, tail)
    return await session.hub.store.read_wal(channel_id, since=since, limit=_limit(p, 1000))


async def audit_query(session: Session, p: dict[str, Any]) -> list[AuditRecord]:
    """Audit records, oldest first: the first ``limit`` matching, or with ``tail`` the latest."""
    _require_viewer(session, "audit_query")
    tail = p.get("tail", False)
    if not isinstance(tail, bool):
        raise ProtocolError(f"param 'tail' must be true or false, got {tail!r}")
    return await session.hub.audit.query(
        kind=opt_str(p, "kind") or None,
        agent_id=_agent_id(session, p, "agent_id"),
        channel_id=opt_str(p, "channel_id") or None,
        since=opt_str(p, "since") or None,
        until=opt_str(p, "until") or None,
        limit=_limit(p, 100),
        tail=tail,
    )
