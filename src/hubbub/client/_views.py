"""Operator views on :class:`~hubbub.client.HubClient`: the whole hub, not one agent's part of it.

These call the ops in ``hub/_ops_admin.py``. On a hub that checks credentials,
all but :meth:`HubViews.hub_agents` need this client to have registered or
attached an agent with its credential first (:class:`~hubbub.errors.AuthError`,
reason ``not_authenticated``, otherwise).
"""

from __future__ import annotations

from typing import Any

from ..model.audit import AuditRecord
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope
from ..model.identity import AgentInfo
from ._convert import as_type

__all__ = ["HubViews"]


class HubViews:
    """Mixed into :class:`~hubbub.client.HubClient`."""

    async def request(self, op: str, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def hub_agents(
        self, *, capability: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[AgentInfo]:
        """Agents with their resume, whether they are connected, and their open channel count;
        with ``capability``, only those claiming it, best first."""
        raw = await self.request("hub_agents", {"capability": capability, "kind": kind, "limit": limit})
        return as_type(list[AgentInfo], raw)  # type: ignore[no-any-return]

    async def hub_channels(
        self, *, limit: int = 50, before: str | None = None, **filters: str | None
    ) -> list[ChannelMetadata]:
        """Every channel on the hub, newest first, closed ones that left the hub's memory too.
        ``filters``: ``state``, ``type`` (channel type), ``agent`` (a participant's name or id);
        ``before``: only channel ids below it (the last one of the previous page)."""
        return (await self.hub_channels_page(limit=limit, before=before, **filters))[0]

    async def hub_channels_page(
        self, *, limit: int = 50, before: str | None = None, **filters: str | None
    ) -> tuple[list[ChannelMetadata], str | None]:
        """:meth:`hub_channels`, and the ``before`` of the next page: set whenever this page is full
        or the hub's scan bound stopped it (None: there are no more)."""
        unknown = set(filters) - {"state", "type", "agent"}
        if unknown:
            raise TypeError(
                f"hub_channels filters are state, type and agent, not {', '.join(sorted(unknown))}"
            )
        params = {**filters, "limit": limit, "before": before, "page": True}
        raw = await self.request("hub_channels", params)
        return as_type(list[ChannelMetadata], raw["channels"]), raw["before"]

    async def hub_wal(
        self, channel_id: str, *, since: str | None = None, limit: int | None = None, tail: int | None = None
    ) -> list[Envelope]:
        """Any channel's envelopes, oldest first: after ``since`` (at most ``limit``), or the last
        ``tail`` of them."""
        params: dict[str, Any] = {"channel_id": channel_id, "since": since, "limit": limit}
        if tail is not None:
            params["tail"] = tail
        return as_type(list[Envelope], await self.request("hub_wal", params))  # type: ignore[no-any-return]

    async def audit_query(
        self,
        *,
        kind: str | None = None,
        agent: str | None = None,
        channel_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        tail: bool = False,
    ) -> list[AuditRecord]:
        """Audit records, oldest first, filtered (``agent`` is a name or id, matching the record's
        agent or actor; ``since``/``until`` are ISO times, inclusive): the first ``limit``, or with
        ``tail`` the latest ``limit``."""
        params = {
            "kind": kind,
            "agent_id": agent,
            "channel_id": channel_id,
            "since": since,
            "until": until,
            "limit": limit,
            "tail": tail,
        }
        return as_type(list[AuditRecord], await self.request("audit_query", params))  # type: ignore[no-any-return]
