"""What the hub keeps of one live channel (:class:`ChannelRecord`), and the shapes the post path
passes around for it: an accepted envelope not yet delivered, and the hub envelopes it caused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..adapters.base import ChannelAdapter
from ..errors import HubbubError
from ..model.channel import ChannelMetadata, ChannelState
from ..model.envelope import Envelope
from ..storage.base import AgentRecord

__all__ = ["Accepted", "ChannelRecord", "Followups", "Observer"]


Observer = Callable[["ChannelRecord", Envelope], None]
"""Called with each envelope committed to one channel, before anything awaits; must not raise."""


class ChannelRecord:
    """A live channel: metadata, its adapter, the cached adapter state."""

    __slots__ = (
        "activated",
        "adapter",
        "closing_id",
        "ended",
        "first",
        "first_accepted",
        "first_refused",
        "idempotency",
        "inflight",
        "members",
        "metadata",
        "observer",
        "participants",
        "recipients",
        "replying",
        "state",
        "texts",
        "unsnapped",
    )

    def __init__(self, metadata: ChannelMetadata, adapter: ChannelAdapter, state: Any) -> None:
        self.metadata = metadata
        self.adapter = adapter
        self.state = state
        self.participants = metadata.participant_ids()
        self.members = frozenset(self.participants)
        self.idempotency: dict[tuple[str, str], str] = {}
        self.recipients: dict[str, tuple[int, list[AgentRecord]]] = {}
        self.replying: set[tuple[str, str]] = set()
        self.activated: asyncio.Future[ChannelState] | None = None
        """Set once the channel is no longer pending, to the state it went to."""
        self.texts = 0
        """How many text and packet envelopes the WAL holds (what views count)."""
        self.unsnapped = 0  # envelopes since the last snapshot (hub/snapshots.py)
        self.inflight: set[str] = set()  # posted, not yet through delivery: no inbox counts them yet
        self.observer: Observer | None = None
        """Sees this channel's envelopes as they commit (a delegated task watches its channel)."""
        self.first: Envelope | None = None
        """The creator's first envelope, posted as the channel activates (``open(first=...)``)."""
        self.first_accepted: Accepted | None = None
        self.first_refused: HubbubError | None = None
        self.ended = metadata.is_terminal()
        """Terminal, and its closing envelope durable and delivered: it may leave memory."""
        self.closing_id: str | None = None
        """The id of the envelope that closed (or expired) it, once known."""

    @property
    def id(self) -> str:
        return self.metadata.channel_id


Followups = list[tuple[Envelope, Awaitable[None] | None]]
"""Hub envelopes an accepted envelope caused (opened, closed), each with its durability."""


Accepted = tuple[
    ChannelRecord,  # record
    Envelope,  # stamped
    Awaitable[None] | None,  # durable
    AgentRecord | None,  # sender
    list[AgentRecord],  # recipients
    bool,  # bypass
    list[str] | None,  # skip
    Followups | None,  # followups (None: the channel's metadata did not change)
]
"""An envelope :meth:`Channels.accept` ed (appended and folded), not yet delivered (a plain
tuple: it is made on every post)."""
