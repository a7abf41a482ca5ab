"""Arbiters decide before the hub acts: register, open, send, dispatch. The first Deny wins.

An arbiter's methods are synchronous and must not do I/O: they run on the
post path. Return None to allow, or a :class:`Deny` naming the rule. The
default :class:`RuleBasedArbiter` enforces each agent's :class:`Rule`.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import NamedTuple

from ..errors import AccessDeniedError, HubbubError
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope
from ..model.identity import Passport
from ..storage.base import AgentRecord

__all__ = ["Deny", "GlobCache", "HubArbiter", "RuleBasedArbiter"]


class Deny(NamedTuple):
    """A refusal: ``reason`` says why in words, ``rule`` names what refused (e.g. ``access.outbound_to``)."""

    reason: str
    rule: str = "arbiter"
    error: type[HubbubError] = AccessDeniedError


class HubArbiter:
    """Base arbiter: allows everything. Override the checks you need."""

    def authorize_register(self, passport: Passport) -> Deny | None:
        """Before an agent joins the directory."""
        return None

    def authorize_open(
        self, creator: AgentRecord, channel_type: str, invitees: list[AgentRecord]
    ) -> Deny | None:
        """Before a channel is created."""
        return None

    def authorize_send(
        self, sender: AgentRecord, envelope: Envelope, channel: ChannelMetadata
    ) -> Deny | None:
        """Before an envelope is accepted into a channel."""
        return None

    def authorize_dispatch(self, sender_name: str, recipient: AgentRecord, envelope: Envelope) -> Deny | None:
        """Before an accepted envelope is delivered to one recipient (a Deny skips that delivery).

        Invites pass here too (their sender is the channel's creator): an arbiter that
        hides a recipient from everything also hides its invites, and the open times out.
        """
        return None


class GlobCache:
    """``fnmatch`` over agent names and channel types, remembered per (pattern list, value).

    Keyed by the identity of the rule's pattern list, which lives as long as
    the rule: call :meth:`clear` whenever rules change.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], bool] = {}

    def clear(self) -> None:
        self._cache.clear()

    def match(self, patterns: list[str], value: str) -> bool:
        key = (id(patterns), value)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 65_536:
                self._cache.clear()
            hit = self._cache[key] = any(fnmatchcase(value, p) for p in patterns)
        return hit


class RuleBasedArbiter(HubArbiter):
    """Enforces access lists, channel-type allowlists, channel caps and delegation depth.

    Rates and inbox caps are counters, kept by the hub's governance; this
    arbiter holds no state but its glob cache.
    """

    def __init__(self, open_channels: Callable[[str], int]) -> None:
        self.globs = GlobCache()
        self._open_channels = open_channels

    def authorize_open(
        self, creator: AgentRecord, channel_type: str, invitees: list[AgentRecord]
    ) -> Deny | None:
        access = creator.rule.access
        name = creator.passport.name
        if not self.globs.match(access.channel_types.initiate, channel_type):
            return Deny(
                f"{name} may not open {channel_type} channels (allowed: {access.channel_types.initiate})",
                "access.channel_types.initiate",
            )
        for invitee in invitees:
            other = invitee.passport.name
            if not self.globs.match(access.outbound_to, other):
                return Deny(
                    f"{name} may not reach {other} (outbound_to: {access.outbound_to})", "access.outbound_to"
                )
            if not self.globs.match(invitee.rule.access.inbound_from, name):
                return Deny(
                    f"{other} does not accept inbound from {name} "
                    f"(its inbound_from: {invitee.rule.access.inbound_from})",
                    "access.inbound_from",
                )
            if not self.globs.match(invitee.rule.access.channel_types.accept, channel_type):
                return Deny(
                    f"{other} does not accept {channel_type} channels "
                    f"(its accept list: {invitee.rule.access.channel_types.accept})",
                    "access.channel_types.accept",
                )
        for record in (creator, *invitees):
            cap = record.rule.limits.max_concurrent_channels
            agent_id = record.passport.agent_id or ""
            if cap and self._open_channels(agent_id) >= cap:
                return Deny(
                    f"{record.passport.name} already takes part in {cap} open channels "
                    "(limits.max_concurrent_channels); close one first",
                    "limits.max_concurrent_channels",
                )
        return None

    def authorize_send(
        self, sender: AgentRecord, envelope: Envelope, channel: ChannelMetadata
    ) -> Deny | None:
        limits = sender.rule.limits
        if limits.delegation_depth and envelope.depth > limits.delegation_depth:
            return Deny(
                f"envelope depth {envelope.depth} is past {sender.passport.name}'s delegation_depth "
                f"{limits.delegation_depth}",
                "limits.delegation_depth",
            )
        return None

    def outbound_allowed(self, sender: AgentRecord, recipient_name: str) -> bool:
        """Whether ``sender``'s ``outbound_to`` lets it address ``recipient_name``."""
        return self.globs.match(sender.rule.access.outbound_to, recipient_name)

    def authorize_dispatch(self, sender_name: str, recipient: AgentRecord, envelope: Envelope) -> Deny | None:
        if self.globs.match(recipient.rule.access.inbound_from, sender_name):
            return None
        return Deny(
            f"{recipient.passport.name} does not accept inbound from {sender_name}",
            "access.inbound_from",
        )
