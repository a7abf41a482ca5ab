"""Who an agent is (``Passport``) and what it claims and has shown it can do (``Resume``).

Field names match the records AG2's network clients exchange.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "PASSPORT_KINDS",
    "AgentInfo",
    "AuthBlock",
    "CostProfile",
    "ObservedStat",
    "Passport",
    "PassportKind",
    "Resume",
    "ResumeExample",
]

PassportKind = Literal["agent", "human", "remote_agent"]
PASSPORT_KINDS: tuple[str, ...] = ("agent", "human", "remote_agent")


class CostProfile(msgspec.Struct, kw_only=True):
    """Optional billing and routing hints."""

    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    latency_tier: str | None = None


class AuthBlock(msgspec.Struct, kw_only=True):
    """How the hub checks this identity when a connection claims it."""

    scheme: str = "none"
    issuer: str | None = None
    audience: str | None = None
    key_fingerprint: str | None = None
    claim: dict[str, Any] = msgspec.field(default_factory=dict)


class Passport(msgspec.Struct, kw_only=True):
    """Stable identity. The hub stamps ``agent_id`` and ``created_at`` at registration.

    ``name`` is unique within a hub and is what rules' globs match against.
    """

    name: str
    owner: str = ""
    provider: str | None = None
    model: str | None = None
    cost: CostProfile | None = None
    region: str | None = None
    auth: AuthBlock = msgspec.field(default_factory=AuthBlock)
    kind: PassportKind | None = None
    hub_id: str | None = None
    version: int = 1
    agent_id: str | None = None
    created_at: str = ""

    @property
    def effective_kind(self) -> PassportKind:
        """``kind``, with None read as ``"agent"``."""
        return self.kind or "agent"


class ResumeExample(msgspec.Struct, kw_only=True):
    """A past piece of work an agent points to."""

    title: str
    outcome: str = ""
    task_id: str | None = None
    channel_id: str | None = None
    when: str | None = None
    note: str = ""


class ObservedStat(msgspec.Struct, kw_only=True):
    """The hub's own track record of one capability, folded from task outcomes."""

    n: int = 0
    completed: int = 0
    failed: int = 0
    expired: int = 0
    p50_latency_ms: int | None = None

    @property
    def success_rate(self) -> float | None:
        """Completed over finished, or None before the first outcome."""
        return self.completed / self.n if self.n else None


class Resume(msgspec.Struct, kw_only=True):
    """Claimed capabilities and domains, plus what the hub has observed."""

    claimed_capabilities: list[str] = msgspec.field(default_factory=list)
    domains: list[str] = msgspec.field(default_factory=list)
    summary: str = ""
    examples: list[ResumeExample] = msgspec.field(default_factory=list)
    observed: dict[str, ObservedStat] = msgspec.field(default_factory=dict)
    version: int = 1
    last_updated: str = ""


class AgentInfo(msgspec.Struct, kw_only=True):
    """An operator's view of one registered agent (op ``hub_agents``): who it is, what it claims and
    has shown, whether a connection is bound to it now, and how many open channels it is in."""

    passport: Passport
    resume: Resume
    connected: bool = False
    open_channels: int = 0
