"""Governance on the hot path: arbiters, rate limits and inbox caps, in O(1) per check.

* Arbiters (the rule-based one first, then the user's) answer before
  register, open, send and each delivery; the first :class:`Deny` wins.
* Rates are token buckets per agent (``limits.rate``: ``per_minute``
  sustained, ``burst`` at once); a refused send says when to retry.
* Inboxes count, per recipient, the substantive envelopes addressed to it
  and not yet acked. At ``limits.inbox.max_pending`` the ``overflow`` policy
  applies: ``reject`` refuses the send with :class:`InboxFull`,
  ``drop_newest`` skips that recipient, ``drop_oldest`` discards its oldest
  unacked envelope. Crossing the high-water mark (default 80%) fires
  ``on_inbox_pressure`` once per crossing. Invites and channel events are
  never counted, so they always get through.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import InboxFull, RateLimitedError
from ..model.audit import AuditRecord, make_audit_record
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope
from ..model.identity import Passport
from ..model.rule import InboxBlock, RateBlock
from ..storage.base import AgentRecord
from .arbiter import Deny, HubArbiter, RuleBasedArbiter
from .listeners import Listeners

__all__ = ["Governance", "Inbox", "RateLimiter"]


class _Bucket:
    __slots__ = ("capacity", "per_second", "rate", "stamp", "tokens")

    def __init__(self, rate: RateBlock, now: float) -> None:
        self.rate = rate
        self.capacity = float(rate.burst or 1)
        self.per_second = rate.per_minute / 60.0
        self.tokens = self.capacity
        self.stamp = now


class RateLimiter:
    """One token bucket per agent, rebuilt when the agent's rate changes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._clock = clock

    def take(self, agent_id: str, rate: RateBlock) -> float | None:
        """Spend one token; None if there was one, else the seconds until there will be."""
        if not rate.per_minute:
            return None
        now = self._clock()
        bucket = self._buckets.get(agent_id)
        if bucket is None or (bucket.rate is not rate and bucket.rate != rate):
            bucket = self._buckets[agent_id] = _Bucket(rate, now)
        tokens = bucket.tokens + (now - bucket.stamp) * bucket.per_second
        if tokens > bucket.capacity:
            tokens = bucket.capacity
        bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return None
        bucket.tokens = tokens
        return (1.0 - tokens) / bucket.per_second


class Inbox:
    """Unacked substantive envelopes per recipient, freed by acks (cumulative per channel)."""

    def __init__(self) -> None:
        self.pending: dict[str, int] = {}
        self._queues: dict[tuple[str, str], deque[str]] = {}
        self._channels_of: dict[str, set[str]] = {}
        self._pressured: set[str] = set()
        self.dropped: set[tuple[str, str]] = set()
        """(agent_id, envelope_id) pairs an overflow policy or dispatch rule discarded; replay skips them."""
        self.on_drop: Callable[[str, str, str], None] | None = None
        """Called with (agent_id, channel_id, envelope_id) for each new mark (the hub persists them)."""

    def mark_dropped(self, agent_id: str, channel_id: str, envelope_id: str) -> None:
        """``agent_id`` will never get ``envelope_id``: no replay, no inbox count."""
        self.dropped.add((agent_id, envelope_id))
        if self.on_drop is not None:
            self.on_drop(agent_id, channel_id, envelope_id)

    def count(self, agent_id: str) -> int:
        return self.pending.get(agent_id, 0)

    def oldest(self, agent_id: str, channel_id: str) -> str | None:
        """The oldest envelope of the channel still pending for ``agent_id``, or None."""
        queue = self._queues.get((agent_id, channel_id))
        return queue[0] if queue else None

    def tracked(self) -> int:
        """(agent, channel) pairs holding unacked envelopes (a pair is forgotten once all are acked)."""
        return len(self._queues)

    def pending_channels(self) -> set[str]:
        """Channels holding an envelope some agent has not acked yet."""
        return {channel_id for (_, channel_id), queue in self._queues.items() if queue}

    def forget_channel(self, channel_id: str) -> int:
        """Stop counting the channel's unacked envelopes (its WAL was compacted away: they can no
        longer be delivered or acked); returns how many slots that frees."""
        freed = 0
        for key in [key for key in self._queues if key[1] == channel_id]:
            agent_id = key[0]
            count = len(self._queues.pop(key))
            self._channels_of.get(agent_id, set()).discard(channel_id)
            if count:
                self.pending[agent_id] -= count
                freed += count
        return freed

    def add(self, agent_id: str, channel_id: str, envelope_id: str) -> int:
        """Count one more pending envelope; returns the new count."""
        key = (agent_id, channel_id)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._channels_of.setdefault(agent_id, set()).add(channel_id)
        queue.append(envelope_id)
        count = self.pending[agent_id] = self.pending.get(agent_id, 0) + 1
        return count

    def ack(self, agent_id: str, channel_id: str, envelope_id: str) -> int:
        """Free every pending envelope of the channel up to ``envelope_id``; returns how many."""
        key = (agent_id, channel_id)
        queue = self._queues.get(key)
        freed = 0
        while queue and queue[0] <= envelope_id:
            queue.popleft()
            freed += 1
        if freed:
            self.pending[agent_id] -= freed
            if not queue:  # nothing left to count: forget the pair (a hub sees channels by the million)
                del self._queues[key]
                self._channels_of[agent_id].discard(channel_id)
        return freed

    def drop_oldest(self, agent_id: str) -> str | None:
        """Discard the agent's oldest pending envelope (ids sort by time across channels)."""
        oldest: tuple[str, str] | None = None
        for channel_id in self._channels_of.get(agent_id, ()):
            queue = self._queues[(agent_id, channel_id)]
            if queue and (oldest is None or queue[0] < oldest[1]):
                oldest = (channel_id, queue[0])
        if oldest is None:
            return None
        key = (agent_id, oldest[0])
        queue = self._queues[key]
        queue.popleft()
        if not queue:
            del self._queues[key]
            self._channels_of[agent_id].discard(oldest[0])
        self.pending[agent_id] -= 1
        self.mark_dropped(agent_id, oldest[0], oldest[1])
        return oldest[1]

    def crossed_high_water(self, agent_id: str, inbox: InboxBlock) -> bool:
        """True exactly once each time the count rises to the high-water mark."""
        mark = inbox.high_water if inbox.high_water is not None else (inbox.max_pending * 8 + 9) // 10
        if not mark:
            return False
        count = self.pending.get(agent_id, 0)
        if count >= mark:
            if agent_id in self._pressured:
                return False
            self._pressured.add(agent_id)
            return True
        self._pressured.discard(agent_id)
        return False


class Governance:
    """Arbiters, rates and inboxes, consulted by the hub's post path and lifecycle."""

    def __init__(
        self,
        listeners: Listeners,
        open_channels: Callable[[str], int],
        record: Callable[[AuditRecord], None],
    ) -> None:
        self._listeners = listeners
        self._record = record
        self.rule_arbiter = RuleBasedArbiter(open_channels)
        self._custom: list[HubArbiter] = []
        self.rates = RateLimiter()
        self.inbox = Inbox()

    def rules_changed(self) -> None:
        """An agent was added, removed or got a new rule: forget cached glob matches."""
        self.rule_arbiter.globs.clear()

    def add_arbiter(self, arbiter: HubArbiter) -> None:
        """Consult ``arbiter`` after the rule-based one."""
        self._custom.append(arbiter)

    def audit(self, kind: str, **fields: Any) -> None:
        """Write an audit record (placed now: it commits with this turn's envelopes) and emit it
        to the listeners."""
        record = make_audit_record(kind, **fields)
        self._record(record)
        if self._listeners.wants("on_governance_event"):
            self._listeners.emit("on_governance_event", record)

    @staticmethod
    def _raise(deny: Deny, *, agent_id: str | None, channel_id: str | None = None) -> None:
        raise deny.error(
            f"denied by {deny.rule}: {deny.reason}",
            agent_id=agent_id,
            channel_id=channel_id,
            reason=deny.rule,
        )

    def check_register(self, passport: Passport) -> None:
        for arbiter in self._custom:
            deny = arbiter.authorize_register(passport)
            if deny is not None:
                self.audit(
                    "register_denied", actor=passport.name, reason=deny.rule, data={"why": deny.reason}
                )
                self._raise(deny, agent_id=None)

    def open_denial(
        self, creator: AgentRecord, channel_type: str, invitees: list[AgentRecord]
    ) -> Deny | None:
        """What :meth:`check_open` would refuse, without raising or auditing (to pick among agents)."""
        for arbiter in (self.rule_arbiter, *self._custom):
            deny = arbiter.authorize_open(creator, channel_type, invitees)
            if deny is not None:
                return deny
        return None

    def check_open(self, creator: AgentRecord, channel_type: str, invitees: list[AgentRecord]) -> None:
        for arbiter in (self.rule_arbiter, *self._custom):
            deny = arbiter.authorize_open(creator, channel_type, invitees)
            if deny is not None:
                self.audit(
                    "open_denied",
                    actor=creator.passport.agent_id,
                    agent_id=creator.passport.agent_id,
                    reason=deny.rule,
                    data={"why": deny.reason, "channel_type": channel_type},
                )
                self._raise(deny, agent_id=creator.passport.agent_id)

    def check_send(
        self, sender: AgentRecord, envelope: Envelope, channel: ChannelMetadata, recipients: list[AgentRecord]
    ) -> list[str]:
        """Raise if the send is refused; else return recipients an overflow policy will skip.

        The rate token is spent last, so a refused send costs none.
        """
        deny = self.rule_arbiter.authorize_send(sender, envelope, channel)
        if deny is None and envelope.audience is not None:
            for recipient in recipients:
                if not self.rule_arbiter.outbound_allowed(sender, recipient.passport.name):
                    deny = Deny(
                        f"{sender.passport.name} may not address {recipient.passport.name} "
                        f"(outbound_to: {sender.rule.access.outbound_to})",
                        "access.outbound_to",
                    )
                    break
        for arbiter in self._custom:
            if deny is not None:
                break
            deny = arbiter.authorize_send(sender, envelope, channel)
        if deny is not None:
            self._raise(deny, agent_id=sender.passport.agent_id, channel_id=channel.channel_id)
        skip: list[str] = []
        pending = self.inbox.pending
        for recipient in recipients:
            inbox = recipient.rule.limits.inbox
            agent_id = recipient.passport.agent_id or ""
            if pending.get(agent_id, 0) < inbox.max_pending:
                continue
            if inbox.overflow == "reject":
                raise InboxFull(
                    f"{recipient.passport.name}'s inbox holds {inbox.max_pending} unacked envelopes "
                    "(limits.inbox.max_pending); retry once it acks",
                    agent_id=agent_id,
                    channel_id=channel.channel_id,
                    reason="limits.inbox.max_pending",
                )
            if inbox.overflow == "drop_newest":
                skip.append(agent_id)
        rate = sender.rule.limits.rate
        retry_after = self.rates.take(sender.passport.agent_id or "", rate) if rate.per_minute else None
        if retry_after is not None:
            raise RateLimitedError(
                f"{sender.passport.name} is past its rate of {rate.per_minute}/min "
                f"(burst {rate.burst or 1}); retry after {retry_after:.2f}s",
                retry_after=retry_after,
                agent_id=sender.passport.agent_id,
                channel_id=channel.channel_id,
                reason="limits.rate",
            )
        return skip

    @property
    def has_custom_arbiters(self) -> bool:
        return bool(self._custom)

    def admit(self, sender_name: str, recipient: AgentRecord, envelope: Envelope) -> Deny | None:
        """Whether ``recipient`` may receive ``envelope`` from ``sender_name`` (dispatch arbiters)."""
        deny = self.rule_arbiter.authorize_dispatch(sender_name, recipient, envelope)
        if deny is None:
            for arbiter in self._custom:
                deny = arbiter.authorize_dispatch(sender_name, recipient, envelope)
                if deny is not None:
                    break
        return deny

    def count_pending(self, recipient: AgentRecord, envelope: Envelope) -> None:
        """Count a delivered substantive envelope against the recipient's inbox."""
        agent_id = recipient.passport.agent_id or ""
        inbox = recipient.rule.limits.inbox
        if inbox.overflow == "drop_oldest" and self.inbox.count(agent_id) >= inbox.max_pending:
            dropped = self.inbox.drop_oldest(agent_id)
            self.audit(
                "inbox_overflow",
                agent_id=agent_id,
                channel_id=envelope.channel_id,
                reason="drop_oldest",
                data={"dropped": dropped},
            )
        count = self.inbox.add(agent_id, envelope.channel_id, envelope.envelope_id)
        mark = inbox.high_water if inbox.high_water is not None else (inbox.max_pending * 8 + 9) // 10
        if mark and count >= mark and self.inbox.crossed_high_water(agent_id, inbox):
            self._listeners.emit("on_inbox_pressure", agent_id, count, inbox.max_pending)

    def on_ack(self, agent_id: str, channel_id: str, envelope_id: str, inbox: InboxBlock) -> None:
        if self.inbox.ack(agent_id, channel_id, envelope_id):
            self.inbox.crossed_high_water(agent_id, inbox)
