"""From a durable envelope to each recipient: dispatch arbiters, inbox accounting, endpoints.

A recipient whose rules refuse the sender (``inbound_from``, or a custom
arbiter's ``authorize_dispatch``) is skipped and the skip audited; so is one
whose inbox overflow policy drops the envelope. Skipped envelopes are never
replayed to that recipient. Substantive envelopes count against each
recipient's inbox until acked, whether or not it is connected right now.
"""

from __future__ import annotations

from ..model.envelope import Envelope
from ..storage.base import AgentRecord
from .delivery import Delivery, recipients_of
from .governance import Governance
from .listeners import Listeners
from .registry import Registry

__all__ = ["Dispatcher"]


class Dispatcher:
    """Hands envelopes to recipients' endpoints under governance."""

    def __init__(
        self, registry: Registry, governance: Governance, delivery: Delivery, listeners: Listeners
    ) -> None:
        self._registry = registry
        self._governance = governance
        self._delivery = delivery
        self._listeners = listeners

    def dispatch(self, envelope: Envelope, participants: list[str]) -> int:
        """Deliver an envelope the hub wrote (lifecycle, notices) to every participant it addresses."""
        find = self._registry.find
        recipients = [r for r in map(find, recipients_of(envelope, participants)) if r is not None]
        return self.deliver(envelope, find(envelope.sender_id), recipients, substantive=False)

    def deliver(
        self,
        envelope: Envelope,
        sender: AgentRecord | None,
        recipients: list[AgentRecord],
        *,
        substantive: bool,
        skip: list[str] | None = None,
    ) -> int:
        """Deliver to every admitted recipient; returns how many were handed to an endpoint."""
        sent = 0
        endpoints, holdings = self._delivery.endpoints, self._delivery.holdings
        check_all = self._governance.has_custom_arbiters or skip is not None
        match = self._governance.rule_arbiter.globs.match
        for recipient in recipients:
            recipient_id = recipient.passport.agent_id or ""
            if sender is not None:
                inbound = recipient.rule.access.inbound_from
                needs_check = check_all or not match(inbound, sender.passport.name)
                if needs_check and not self._admitted(sender, recipient, envelope, skip):
                    continue
            if substantive:
                self._governance.count_pending(recipient, envelope)
            endpoint = endpoints.get(recipient_id)
            if endpoint is not None:
                holding = holdings.get(recipient_id) if holdings else None
                if holding is None or not holding.take(envelope):
                    endpoint.deliver(envelope, recipient_id)
                sent += 1
        return sent

    def _admitted(
        self, sender: AgentRecord, recipient: AgentRecord, envelope: Envelope, skip: list[str] | None
    ) -> bool:
        recipient_id = recipient.passport.agent_id or ""
        deny = self._governance.admit(sender.passport.name, recipient, envelope)
        if deny is None and not (skip and recipient_id in skip):
            return True
        reason = deny.rule if deny is not None else "limits.inbox.overflow=drop_newest"
        why = deny.reason if deny is not None else f"{recipient.passport.name}'s inbox is full"
        self._governance.inbox.mark_dropped(recipient_id, envelope.channel_id, envelope.envelope_id)
        self._governance.audit(
            "delivery_skipped" if deny is not None else "inbox_overflow",
            actor=sender.passport.agent_id,
            agent_id=recipient_id,
            channel_id=envelope.channel_id,
            reason=reason,
            data={"envelope_id": envelope.envelope_id, "why": why},
        )
        if self._listeners.wants("on_dispatch_failed"):
            self._listeners.emit("on_dispatch_failed", envelope, recipient_id, why)
        return False

    def replayable(self, envelope: Envelope, agent_id: str) -> bool:
        """Whether a replay should deliver ``envelope`` to ``agent_id`` again."""
        if envelope.sender_id == agent_id:
            return False
        if envelope.audience is not None and agent_id not in envelope.audience:
            return False
        return (agent_id, envelope.envelope_id) not in self._governance.inbox.dropped
