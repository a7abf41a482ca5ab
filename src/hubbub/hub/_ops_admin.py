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
from ._params import count, opt_bool, opt_str, req_str

if TYPE_CHECKING:
    from .session import Session

__all__ = ["MAX_LIMIT", "audit_query", "hub_agents", "hub_channels", "hub_wal", "require_viewer"]

MAX_LIMIT = 10_000
"""The most records one call returns; page for more."""
MAX_SCANNED = 100_000
"""About how many stored channels (those in memory too) one ``hub_channels`` request reads: a
rare filter over a long history may return fewer than ``limit``, and (with ``page``) where to go on."""
_SCAN_PAGE = 1000

_STATES = ", ".join(s.value for s in ChannelState)


def require_viewer(session: Session, op: str) -> None:
    """On a hub that checks credentials, ``op`` (which shows what happens between agents) needs a
    connection with an agent bound."""
    if session.trusted or session.bound or session.hub.auth.open:
        return
    raise AuthError(
        f"op {op!r} shows the whole hub, and this hub checks credentials: register or attach an "
        "agent with its credential on this connection first",
        reason="not_authenticated",
    )


def _limit(params: dict[str, Any], default: int, cursor: str = "since") -> int:
    value = count(params, "limit", default)
    if value > MAX_LIMIT:
        raise ProtocolError(f"param 'limit' must be at most {MAX_LIMIT}, got {value}; page with {cursor!r}")
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


async def hub_channels(session: Session, p: dict[str, Any]) -> list[ChannelMetadata] | dict[str, Any]:
    """Channels of the whole hub by id from the newest, filtered by state, type and participant:
    those in memory and the older ones the store keeps (closed channels that left memory).
    ``before`` (a channel id) keeps those below it; with ``page`` the result is
    ``{"channels": [...], "before": <the id to pass for the next page>}``, set whenever the page is
    full or the scan bound stopped it (None: no more)."""
    require_viewer(session, "hub_channels")
    hub = session.hub
    state = opt_str(p, "state") or None
    if state is not None and state not in ChannelState._value2member_map_:
        raise ProtocolError(f"param 'state' must be one of {_STATES}, got {state!r}")
    type_ = opt_str(p, "type") or None
    agent = opt_str(p, "agent") or None
    agent_id = (hub.registry.get(agent).passport.agent_id or "") if agent else None
    limit = _limit(p, 50, "before")
    before = opt_str(p, "before") or None
    paged = opt_bool(p, "page")

    def wanted(meta: ChannelMetadata) -> bool:
        return (
            (before is None or meta.channel_id < before)
            and (state is None or meta.state == state)
            and (type_ is None or meta.manifest.type == type_)
            and (agent_id is None or agent_id in meta.participant_ids())
        )

    records = hub.channels.of_agent(agent_id) if agent_id else hub.channels.all()
    metas = sorted((r.metadata for r in records if wanted(r.metadata)), key=_id, reverse=True)
    more: str | None = None
    if state is None or ChannelState(state).is_terminal:  # only closed ones leave memory
        # In memory now: one that leaves memory during the scan is not listed twice.
        known = {r.id for r in hub.channels.all()}
        # Stored ones below the limit-th found in memory could not make this page.
        floor = metas[limit - 1].channel_id if len(metas) >= limit else None
        stored, more = await _stored_channels(session, wanted, known, before, floor, limit)
        if more is not None:  # the scan stopped at ``more``: what is below it belongs to the next page
            metas = [m for m in metas if m.channel_id >= more]
        metas = sorted([*metas, *stored], key=_id, reverse=True)
    found = metas[:limit]
    if len(found) == limit and found:
        more = found[-1].channel_id  # (else: where the scan stopped, or None at the end)
    return {"channels": found, "before": more} if paged else found


def _id(meta: ChannelMetadata) -> str:
    return meta.channel_id


async def _stored_channels(
    session: Session,
    wanted: Callable[[ChannelMetadata], bool],
    known: set[str],
    before: str | None,
    floor: str | None,
    limit: int,
) -> tuple[list[ChannelMetadata], str | None]:
    """Up to ``limit`` wanted channels the store keeps that were not in memory, from the newest,
    above ``floor``; reading at most :data:`MAX_SCANNED`. Also the id to go on below when
    that bound, not the end of the store, stopped the scan (else None)."""
    hub, scanned = session.hub, 0
    found: list[ChannelMetadata] = []
    size = min(_SCAN_PAGE, max(limit, 100))
    while len(found) < limit:
        if scanned >= MAX_SCANNED:
            return found, before
        page = await hub.store.scan_channels(before=before, limit=size)
        found += [m for m in page if m.channel_id not in known and wanted(m)]
        if len(page) < size or (floor is not None and page[-1].channel_id < floor):
            break
        scanned += len(page)
        before = page[-1].channel_id
    return found, None


async def hub_wal(session: Session, p: dict[str, Any]) -> list[Envelope]:
    """Any channel's envelopes, oldest first: after ``since`` (at most ``limit``) or the last ``tail``."""
    require_viewer(session, "hub_wal")
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
    require_viewer(session, "audit_query")
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
