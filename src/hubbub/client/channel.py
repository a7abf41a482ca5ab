"""``Channel``: an agent's handle on one channel it takes part in."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec

from ..model.channel import ChannelMetadata, ChannelState
from ..model.envelope import EV_CONTEXT_SET, EV_TEXT, Envelope

if TYPE_CHECKING:
    from .agent_client import AgentClient

__all__ = ["Channel"]


class Channel:
    """Send into, read, and close one channel as one agent."""

    def __init__(self, client: AgentClient, metadata: ChannelMetadata) -> None:
        self._client = client
        self.metadata = metadata

    @property
    def id(self) -> str:
        return self.metadata.channel_id

    @property
    def type(self) -> str:
        return self.metadata.manifest.type

    def __repr__(self) -> str:
        return f"Channel({self.type}, {self.id}, {self.metadata.state.value})"

    async def send(
        self,
        content: str | None = None,
        *,
        event_type: str = EV_TEXT,
        event_data: dict[str, Any] | None = None,
        audience: list[str] | None = None,
        causation_id: str | None = None,
        task_id: str | None = None,
        depth: int = 0,
        idempotency_key: str | None = None,
        ttl_seconds: int | None = None,
    ) -> str:
        """Post into the channel; returns the envelope id once it is durable.

        ``content`` is the text of an ``EV_TEXT``; pass ``event_type`` and
        ``event_data`` for anything else. ``audience`` takes agent names or ids.
        """
        data = dict(event_data or {})
        if content is not None:
            data["text"] = content
        envelope = Envelope(
            channel_id=self.id,
            sender_id=self._client.agent_id,
            audience=await self._client.resolve_ids(audience) if audience is not None else None,
            event_type=event_type,
            event_data=data,
            causation_id=causation_id,
            task_id=task_id,
            depth=depth,
            idempotency_key=idempotency_key,
            ttl_seconds=ttl_seconds,
        )
        return await self._client.send_envelope(envelope)

    async def set_context(
        self, values: dict[str, Any] | None = None, *, delete: list[str] | None = None
    ) -> str:
        """Set (and delete) workflow context variables."""
        return await self.send(
            event_type=EV_CONTEXT_SET, event_data={"set": values or {}, "delete": delete or []}
        )

    async def info(self) -> ChannelMetadata:
        """The channel's current metadata (state, participants, close reason)."""
        self.metadata = await self._client.hub_client.get_channel(self.id)
        return self.metadata

    async def read(self, *, since: str | None = None, limit: int | None = None) -> list[Envelope]:
        """The channel's WAL after ``since``, oldest first."""
        return await self._client.hub_client.read_wal(self.id, since=since, limit=limit)

    async def close(self, reason: str = "closed") -> ChannelMetadata:
        """Close the channel for everyone in it."""
        self.metadata = await self._client.hub_client.close_channel(self.id, reason)
        return self.metadata

    async def wait_closed(self, timeout: float = 60.0) -> ChannelMetadata:
        """Wait until the channel is closed or expired (its closing envelope is durable, and
        delivered to this agent if it was listening); returns its final metadata."""
        ended = await self._client.wait_ended(self.id, timeout=timeout)
        if isinstance(ended, ChannelMetadata):
            self.metadata = ended
        elif self.metadata.state is ChannelState.ACTIVE:
            # Once a channel is active, its end changes only what the closing envelope says:
            # no need to ask the hub (a copy: over LocalLink the metadata is the hub's own).
            final = msgspec.structs.replace(self.metadata)
            final.end_with(ended)
            self.metadata = final
        else:
            await self.info()
        return self.metadata

    async def wait_for(
        self, count: int = 1, *, event_type: str = EV_TEXT, timeout: float = 60.0
    ) -> list[Envelope]:
        """Wait until the WAL holds at least ``count`` envelopes of ``event_type``; returns them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [e for e in await self.read() if e.event_type == event_type]
            if len(found) >= count:
                return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(
                    f"channel {self.id} has {len(found)} {event_type} envelopes, wanted {count}"
                )
            try:
                await self._client.wait_for_channel_event(
                    self.id, lambda e: e.event_type == event_type, timeout=remaining, seen_ok=False
                )
            except TimeoutError:
                continue
