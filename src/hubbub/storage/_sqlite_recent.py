"""The newest committed envelopes of the busiest channels, so reads of fresh WAL skip SQLite.

Live readers (deliveries being acked, replays after a short disconnect, turn
contexts) ask for the last few hundred envelopes of a channel; serving those
from memory saves a hop to the reader thread and a decode per envelope. The
cache only ever holds committed envelopes, in id order, and for each channel
it holds *every* committed envelope after its ``floor`` id, so an answer from
it is exactly what SQLite would give. Anything older goes to SQLite.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict

from ..model.envelope import Envelope
from .base import UNKNOWN, Unknown

__all__ = ["KEEP", "MAX_ENVELOPES", "UNKNOWN", "RecentEnvelopes", "Unknown"]

KEEP = 512
"""Envelopes kept per channel at least (a channel is trimmed back to this at twice as many)."""
MAX_ENVELOPES = 65_536
"""Envelopes cached over all channels at most: the least recently written channels go first."""


class _Tail:
    __slots__ = ("envelopes", "floor", "ids", "replies")

    def __init__(self, floor: str | None) -> None:
        self.floor = floor
        """Every committed envelope with an id above this is held (None: the channel's whole WAL)."""
        self.ids: list[str] = []
        self.envelopes: list[Envelope] = []
        self.replies: dict[tuple[str, str], Envelope] = {}
        """(sender, causation id) -> the first held envelope that sender posted in reply to it."""


class RecentEnvelopes:
    """Per channel, the committed envelopes after a floor id; fed in commit order."""

    def __init__(self, committed: dict[str, str], *, keep: int = KEEP, most: int = MAX_ENVELOPES) -> None:
        self._floors = dict(committed)  # channel -> newest id committed before its tail began
        self._tails: OrderedDict[str, _Tail] = OrderedDict()
        self._keep = keep
        self._most = most
        self._held = 0

    def add(self, envelopes: list[Envelope]) -> None:
        """Record envelopes that just committed, in the order they were appended."""
        tails = self._tails
        tail: _Tail | None = None
        channel_id = ""
        for envelope in envelopes:
            if envelope.channel_id != channel_id or tail is None:
                if tail is not None:
                    self._trim(tail)
                channel_id = envelope.channel_id
                tail = tails.get(channel_id)
                if tail is None:
                    tail = tails[channel_id] = _Tail(self._floors.pop(channel_id, None))
                else:
                    tails.move_to_end(channel_id)
            tail.ids.append(envelope.envelope_id)
            tail.envelopes.append(envelope)
            if envelope.causation_id is not None:
                tail.replies.setdefault((envelope.sender_id, envelope.causation_id), envelope)
        self._held += len(envelopes)
        if tail is not None:
            self._trim(tail)
        while self._held > self._most and len(tails) > 1:
            self._evict()

    def distrust(self, channel_id: str, first_id: str) -> None:
        """``first_id`` is about to be appended to a channel whose older envelopes (if any) this
        cache cannot know: a tail it starts holds only what comes from there on."""
        if channel_id not in self._tails:
            self._floors.setdefault(channel_id, first_id)

    def newest(self, channel_id: str) -> str | None:
        """The newest committed id this cache knows of the channel (its tail's, or its floor), or None."""
        tail = self._tails.get(channel_id)
        if tail is not None:
            return tail.ids[-1] if tail.ids else tail.floor
        return self._floors.get(channel_id)

    def forget(self, channel_id: str) -> None:
        """Drop the channel (it takes no more envelopes): its reads go to SQLite."""
        tail = self._tails.pop(channel_id, None)
        if tail is not None:
            self._held -= len(tail.ids)
        self._floors.pop(channel_id, None)

    def _trim(self, tail: _Tail) -> None:
        extra = len(tail.ids) - self._keep
        if extra >= self._keep:
            tail.floor = tail.ids[extra - 1]
            replies = tail.replies
            for gone in tail.envelopes[:extra]:
                if gone.causation_id is not None and replies.get((gone.sender_id, gone.causation_id)) is gone:
                    del replies[(gone.sender_id, gone.causation_id)]
            del tail.ids[:extra]
            del tail.envelopes[:extra]
            self._held -= extra

    def _evict(self) -> None:
        channel_id, tail = self._tails.popitem(last=False)
        self._held -= len(tail.ids)
        floor = tail.ids[-1] if tail.ids else tail.floor
        if floor is not None:
            self._floors[channel_id] = floor

    def read(
        self, channel_id: str, since: str | None, until: str | None, limit: int | None
    ) -> list[Envelope] | Unknown:
        """Like ``Store.read_wal``, or UNKNOWN when envelopes after ``since`` may be older than the tail."""
        tail = self._tails.get(channel_id)
        if tail is None or (tail.floor is not None and (not since or since < tail.floor)):
            return UNKNOWN
        ids = tail.ids
        start = bisect_right(ids, since) if since else 0
        end = bisect_right(ids, until) if until else len(ids)
        if limit is not None:
            end = min(end, start + max(limit, 0))
        return tail.envelopes[start:end]

    def read_tail(self, channel_id: str, limit: int, until: str | None) -> list[Envelope] | Unknown:
        """Like ``Store.read_wal_tail``, or UNKNOWN when the tail does not reach back far enough."""
        tail = self._tails.get(channel_id)
        if tail is None:
            return UNKNOWN
        limit = max(limit, 0)
        end = bisect_right(tail.ids, until) if until else len(tail.ids)
        if end < limit and tail.floor is not None:
            return UNKNOWN
        return tail.envelopes[max(0, end - limit) : end]

    def find_reply(self, channel_id: str, sender_id: str, causation_id: str) -> Envelope | Unknown | None:
        """Like ``Store.find_by_causation``, or UNKNOWN when the cause is older than the tail.

        A reply comes after its cause, so when the cause is above the floor every reply to it
        that has committed is held.
        """
        tail = self._tails.get(channel_id)
        if tail is None or (tail.floor is not None and causation_id <= tail.floor):
            return UNKNOWN
        return tail.replies.get((sender_id, causation_id))

    def get(self, channel_id: str, envelope_id: str) -> Envelope | Unknown | None:
        """The committed envelope with this id, None if there is none, or UNKNOWN (ask SQLite)."""
        tail = self._tails.get(channel_id)
        if tail is None or (tail.floor is not None and envelope_id <= tail.floor):
            return UNKNOWN
        ids = tail.ids
        i = bisect_left(ids, envelope_id)
        return tail.envelopes[i] if i < len(ids) and ids[i] == envelope_id else None
