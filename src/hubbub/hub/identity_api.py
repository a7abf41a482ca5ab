"""The :class:`~hubbub.hub.core.Hub` methods for identity and discovery: register, authenticate,
resumes and rules, the task events that feed the track record, listings (kept here so the
facade stays small)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import AuthError, UsageError
from ..model._time import iso_now
from ..model.identity import Passport, Resume
from ..model.ids import make_id
from ..model.rule import Rule, validate_rule
from ..model.task import TaskEvent
from ..storage.base import AgentRecord, Store

if TYPE_CHECKING:
    from ..auth import AuthRegistry
    from .delivery import Delivery
    from .governance import Governance
    from .listeners import Listeners
    from .registry import Registry
    from .tasks import TaskBook

__all__ = ["IdentityApi"]


class IdentityApi:
    """Mixed into :class:`~hubbub.hub.core.Hub`."""

    store: Store
    auth: AuthRegistry
    registry: Registry
    delivery: Delivery
    governance: Governance
    listeners: Listeners
    tasks: TaskBook

    async def register(
        self,
        passport: Passport,
        resume: Resume | None = None,
        *,
        rule: Rule | None = None,
        skill_md: str | None = None,
    ) -> Passport:
        """Add an agent; returns its passport with ``agent_id`` and ``created_at`` stamped."""
        if not passport.name or not isinstance(passport.name, str):
            raise UsageError("a passport needs a non-empty name")
        if self.registry.id_for_name(passport.name) is not None:
            raise UsageError(
                f"an agent named {passport.name!r} is already registered; pick another name, "
                "or attach to the existing identity with HubClient.attach()",
                reason="name_taken",
            )
        self.governance.check_register(passport)
        await self.auth.check(passport, passport.auth.scheme, passport.auth.claim)
        # The claim proved the right to this identity; keep the scheme, never the secret.
        stamped = msgspec.structs.replace(
            passport,
            agent_id=make_id(),
            created_at=iso_now(),
            auth=msgspec.structs.replace(passport.auth, claim={}),
        )
        record = AgentRecord(
            passport=stamped,
            # observed is the hub's track record: a new agent starts without one.
            resume=msgspec.structs.replace(resume or Resume(), observed={}, last_updated=iso_now()),
            rule=validate_rule(rule or Rule()),
            skill_md=skill_md,
        )
        await self.store.put_agent(record)
        self.registry.add(record)
        self._agent_event("registered", stamped)
        return stamped

    def _agent_event(self, kind: str, passport: Passport, **data: Any) -> None:
        if self.listeners.wants("on_agent_event"):
            self.listeners.emit("on_agent_event", kind, passport)
        if kind in ("registered", "unregistered", "resume_set", "rule_set"):
            audit_kind = kind if kind.endswith("_set") else f"agent_{kind}"
            self.governance.audit(audit_kind, actor=passport.agent_id, agent_id=passport.agent_id, data=data)

    async def authenticate(self, name: str, scheme: str, claim: Mapping[str, Any]) -> Passport:
        """The passport of ``name`` if ``claim`` under ``scheme`` proves the right to act as it."""
        passport = self.registry.get(name).passport
        if passport.auth.scheme != scheme:
            raise AuthError(
                f"{name} is registered with auth scheme {passport.auth.scheme!r}, not {scheme!r}",
                agent_id=passport.agent_id,
                reason="scheme_mismatch",
            )
        await self.auth.check(passport, scheme, claim)
        return passport

    async def unregister(self, agent_id: str) -> None:
        """Remove an agent from the directory (its channels and WAL stay)."""
        record = self.registry.remove(self.registry.get(agent_id).passport.agent_id or agent_id)
        assert record.passport.agent_id is not None
        if self.delivery.endpoint_of(record.passport.agent_id) is not None:
            self.delivery.unbind(record.passport.agent_id)
            self._agent_event("disconnected", record.passport)
        self.tasks.forget(record.passport.agent_id)
        await self.store.delete_agent(record.passport.agent_id)
        self._agent_event("unregistered", record.passport)

    def get_agent(self, name_or_id: str) -> Passport:
        """An agent's passport by name or id."""
        return self.registry.get(name_or_id).passport

    def get_resume(self, agent_id: str) -> Resume:
        return self.registry.get(agent_id).resume

    def get_rule(self, agent_id: str) -> Rule:
        return self.registry.get(agent_id).rule

    async def set_resume(self, agent_id: str, resume: Resume) -> None:
        """Replace what ``agent_id`` claims. ``resume.observed`` is ignored: the hub's track
        record (folded from task outcomes, see :meth:`record_task_event`) stays as it is."""
        record = self.registry.get(agent_id)
        updated = msgspec.structs.replace(
            record,
            resume=msgspec.structs.replace(resume, observed=record.resume.observed, last_updated=iso_now()),
        )
        # Registry first, with no await since the read, so a task outcome folded
        # meanwhile is not overwritten by this record.
        self.registry.add(updated)
        await self.store.put_agent(updated)

    async def set_rule(self, agent_id: str, rule: Rule) -> None:
        record = self.registry.get(agent_id)
        updated = msgspec.structs.replace(record, rule=validate_rule(rule))
        # Registry first (no await since the read), so a track record folded meanwhile survives.
        self.registry.add(updated)
        await self.store.put_agent(updated)
        self._agent_event("rule_set", updated.passport, rule=msgspec.to_builtins(updated.rule))

    async def record_task_event(
        self,
        agent_id: str,
        task_id: str,
        kind: str,
        *,
        capabilities: list[str] | None = None,
        duration_ms: float | None = None,
        error: str | None = None,
    ) -> TaskEvent:
        """One step (``started``, ``succeeded``, ``failed``) of a task ``agent_id`` mirrors.

        Results update ``Resume.observed`` per capability tag, which discovery
        ranks by; listeners get ``on_task_event``. See :class:`~hubbub.hub.tasks.TaskBook`
        for the rules and errors.
        """
        return await self.tasks.record(
            agent_id, task_id, kind, capabilities=capabilities, duration_ms=duration_ms, error=error
        )

    def list_agents(
        self, *, capability: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[Passport]:
        """Passports, optionally only those claiming ``capability`` (best first)."""
        return [r.passport for r in self.registry.select(capability=capability, kind=kind, limit=limit)]

    def discover(self, capability: str, *, limit: int = 10) -> list[Passport]:
        """Agents claiming ``capability``, ranked: exact claim, success rate, latency."""
        return [r.passport for r in self.registry.discover(capability, limit=limit)]
