"""The directory of agents: by id, by name, by capability; discovery with ranking."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..errors import NotFoundError, UsageError
from ..model.identity import Passport
from ..storage.base import AgentRecord

__all__ = ["Registry", "rank_key"]


def rank_key(record: AgentRecord, capability: str) -> tuple[int, float, float, str]:
    """Sort key for discovery: exact claim first, then observed success rate, then latency."""
    resume = record.resume
    claims = [c for c in resume.claimed_capabilities if capability in c.lower()]
    exact = 0 if any(c.lower() == capability for c in claims) else 1
    observed = {k.lower(): v for k, v in resume.observed.items()}
    stats = [s for c in claims if (s := observed.get(c.lower())) is not None and s.success_rate is not None]
    best = max(stats, key=lambda s: (s.success_rate or 0.0, -(s.p50_latency_ms or 1e12)), default=None)
    rate = best.success_rate if best is not None and best.success_rate is not None else 0.5
    latency = float(best.p50_latency_ms) if best is not None and best.p50_latency_ms is not None else 1e12
    return (exact, -rate, latency, record.passport.name)


class Registry:
    """Registered agents. Lookups are dict hits; discovery touches only matching agents."""

    def __init__(self) -> None:
        self._by_id: dict[str, AgentRecord] = {}
        self._by_name: dict[str, str] = {}
        self._by_capability: dict[str, set[str]] = {}
        self.version = 0
        """Bumped on every change, so caches of agent records know when to refresh."""
        self.on_change: list[Callable[[], None]] = []
        """Called after every add or remove (caches keyed on rule objects clear themselves)."""

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, record: AgentRecord) -> None:
        """Insert or replace ``record`` (its passport must carry an agent_id)."""
        agent_id = record.passport.agent_id
        assert agent_id is not None
        self.version += 1
        if agent_id in self._by_id:
            self._unindex(self._by_id[agent_id])
        self._by_id[agent_id] = record
        self._by_name[record.passport.name] = agent_id
        for cap in record.resume.claimed_capabilities:
            self._by_capability.setdefault(cap.lower(), set()).add(agent_id)
        for callback in self.on_change:
            callback()

    def remove(self, agent_id: str) -> AgentRecord:
        """Drop an agent; :class:`NotFoundError` if unknown."""
        record = self.get(agent_id)
        self.version += 1
        self._unindex(record)
        del self._by_id[agent_id]
        for callback in self.on_change:
            callback()
        return record

    def _unindex(self, record: AgentRecord) -> None:
        agent_id = record.passport.agent_id
        if self._by_name.get(record.passport.name) == agent_id:
            del self._by_name[record.passport.name]
        for cap in record.resume.claimed_capabilities:
            ids = self._by_capability.get(cap.lower())
            if ids is not None:
                ids.discard(agent_id or "")
                if not ids:
                    del self._by_capability[cap.lower()]

    def id_for_name(self, name: str) -> str | None:
        """The agent id registered under ``name``, or None."""
        return self._by_name.get(name)

    def find(self, name_or_id: str) -> AgentRecord | None:
        """An agent by id or name, or None."""
        record = self._by_id.get(name_or_id)
        if record is not None:
            return record
        agent_id = self._by_name.get(name_or_id)
        return self._by_id.get(agent_id) if agent_id is not None else None

    def get(self, name_or_id: str) -> AgentRecord:
        """An agent by id or name; :class:`NotFoundError` naming it if unknown."""
        record = self.find(name_or_id)
        if record is None:
            raise NotFoundError(
                f"no agent named or with id {name_or_id!r} is registered on this hub; "
                "list agents to see who is here",
                agent_id=name_or_id,
                reason="unknown_agent",
            )
        return record

    def name_of(self, agent_id: str) -> str:
        """The name of ``agent_id``, or the id itself when unknown."""
        record = self._by_id.get(agent_id)
        return record.passport.name if record is not None else agent_id

    def passports(self, ids: Iterable[str] | None = None) -> list[Passport]:
        """Passports of ``ids`` (all agents when None), skipping unknown ids."""
        if ids is None:
            return [r.passport for r in self._by_id.values()]
        return [self._by_id[i].passport for i in ids if i in self._by_id]

    def holders(self, capability: str) -> list[AgentRecord]:
        """Agents claiming exactly ``capability`` (any case), in no particular order."""
        ids = self._by_capability.get(capability.strip().lower(), ())
        return [self._by_id[i] for i in ids]

    def select(
        self, *, capability: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[AgentRecord]:
        """Agents, optionally with a capability (ranked) or of a kind."""
        if limit < 0:
            raise UsageError(f"limit must be 0 or more, got {limit}")
        records = self.discover(capability, limit=None) if capability else list(self._by_id.values())
        if kind:
            records = [r for r in records if r.passport.effective_kind == kind]
        return records[:limit]

    def discover(self, capability: str, *, limit: int | None = 10) -> list[AgentRecord]:
        """Agents claiming ``capability``, best first.

        An exact claim (case-insensitive) ranks above a claim that merely
        contains the keyword; within each, a better observed success rate,
        then a lower observed p50 latency, wins.
        """
        keyword = capability.strip().lower()
        if not keyword:
            raise UsageError("discover needs a capability keyword, got an empty string")
        ids = set(self._by_capability.get(keyword, ()))
        for cap, holders in self._by_capability.items():
            if keyword in cap and cap != keyword:
                ids |= holders
        records = [self._by_id[i] for i in ids]
        records.sort(key=lambda r: rank_key(r, keyword))
        return records if limit is None else records[:limit]
