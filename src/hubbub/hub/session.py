"""One connection's view of the hub: control-plane ops with per-connection authorization.

Transports (in-process ``LocalLink``, WebSocket) create a :class:`Session` per
connection and feed it ops by name. A connection acts only as the agents bound
to it (by ``register`` or ``attach``): an envelope's sender, an agent-scoped
op's ``agent_id`` and a channel read's participant must be one of them.
Params may be plain JSON values (from the wire) or the typed records
themselves (in process); results are typed records the transport encodes.
The session holds the connection's bindings and the identity ops; the other ops
live in modules of their own (``_channel_ops``, ``_delegation_ops``,
``_checkpoint_ops``, ``_ops_admin``, ``_ag2_tasks``) as ``op(session, params)``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..errors import AccessDeniedError, ProtocolError
from ..model.channel import ChannelMetadata
from ..model.envelope import EV_PACKET, EV_TEXT, Envelope
from ..model.identity import Passport, Resume
from ..model.rule import Rule
from ..model.task import TaskEvent
from ..model.turn import TurnContext
from ..protocol.ops import AG2_OPS
from . import _ag2_tasks, _channel_ops, _checkpoint_ops, _delegation_ops, _ops_admin
from ._params import as_type as _as
from ._params import count as _count
from ._params import opt_bool as _opt_bool
from ._params import opt_str as _opt_str
from ._params import req_str as _str
from ._params import str_list as _str_list
from .core import Hub
from .delivery import Endpoint

log = logging.getLogger("hubbub.hub")

__all__ = ["Session"]

_TURN_EVENTS = frozenset((EV_TEXT, EV_PACKET))

Op = Callable[["Session", dict[str, Any]], Awaitable[Any]]


class Session:
    """The hub side of one connection."""

    def __init__(self, hub: Hub, endpoint: Endpoint, *, trusted: bool = False) -> None:
        self.hub = hub
        self.endpoint = endpoint
        self.trusted = trusted
        """In-process callers may attach to any identity; remote ones present its credential."""
        self.bound: set[str] = set()
        self.pushed_turns: set[str] = set()
        """Bound agents whose deliveries carry their turn context (``push_turns`` at register or
        attach): the transport attaches :meth:`turn_for` to each one's texts and packets."""

    def call(self, op: str, params: dict[str, Any]) -> Awaitable[Any]:
        """Run control-plane ``op``: await the result; raises a :class:`HubbubError` the transport
        reports (at once, for an unknown op or bad params). Not a coroutine itself: one frame less
        on every request."""
        handler = _OPS.get(op)
        if handler is None:
            if op in AG2_OPS:
                raise ProtocolError(
                    f"op {op!r} is not served by this hub: hubbub keeps no ag2-style task records "
                    "(mirrored tasks feed Resume.observed through "
                    "observe_task / update_task; delegated tasks are read with task_status / task_list)"
                )
            raise ProtocolError(f"unknown op {op!r}; known ops: {', '.join(sorted(_OPS))}")
        if not isinstance(params, dict):
            raise ProtocolError(f"params of op {op!r} must be an object, got {type(params).__name__}")
        return handler(self, params)

    async def receipt(
        self,
        envelope_id: str,
        status: str,
        recipient_id: str,
        channel_id: str,
        reason: str = "",
    ) -> None:
        """An ack advances ``recipient_id``'s cursor; a nack leaves it (the envelope is replayed).

        Only an envelope of that channel addressed to that recipient can be acked:
        a receipt for anything else would move the cursor past what it never got, so the
        store is asked (a transport that knows it delivered the envelope itself calls
        :meth:`receipt_delivered` instead).
        """
        self._require_bound(recipient_id, "recipient_id")
        if not await self._was_delivered(envelope_id, recipient_id, channel_id):
            raise ProtocolError(
                f"receipt for envelope {envelope_id!r} in channel {channel_id!r}: it was never delivered "
                f"to {recipient_id} (check envelope_id, channel_id and recipient_id)",
                channel_id=channel_id or None,
                agent_id=recipient_id,
                reason="unknown_delivery",
            )
        self._take_receipt(envelope_id, status, recipient_id, channel_id, reason)

    def receipt_delivered(
        self, envelope_id: str, status: str, recipient_id: str, channel_id: str, reason: str = ""
    ) -> None:
        """:meth:`receipt` for an envelope the transport handed to ``recipient_id`` itself: now."""
        self._require_bound(recipient_id, "recipient_id")
        self._take_receipt(envelope_id, status, recipient_id, channel_id, reason)

    def _take_receipt(
        self, envelope_id: str, status: str, recipient_id: str, channel_id: str, reason: str
    ) -> None:
        if status == "ack":
            self.hub.acked(recipient_id, channel_id, envelope_id)
        else:
            self.hub.nack(recipient_id, channel_id, envelope_id, reason)

    async def _was_delivered(self, envelope_id: str, recipient_id: str, channel_id: str) -> bool:
        if not channel_id:
            return False
        envelope = await self.hub.store.get_envelope(channel_id, envelope_id)
        return envelope is not None and self.hub.dispatcher.replayable(envelope, recipient_id)

    def bind(self, agent_id: str, *, push_turns: bool = False) -> None:
        self.bound.add(agent_id)
        if push_turns:
            self.pushed_turns.add(agent_id)
        else:
            self.pushed_turns.discard(agent_id)
        self.hub.bind(agent_id, self.endpoint)

    def turn_for(self, envelope: Envelope, recipient_id: str) -> TurnContext | None:
        """The turn context to deliver with ``envelope`` (just committed) to ``recipient_id``, if it
        asked for them and the hub can tell from memory; else None (its client asks if need be)."""
        if (
            recipient_id not in self.pushed_turns
            or envelope.event_type not in _TURN_EVENTS
            or envelope.sender_id == recipient_id
        ):
            return None
        try:
            return self.hub.turn_context_now(envelope, recipient_id)
        except Exception:  # never let one turn's view stop a durable envelope's delivery
            log.exception(
                "turn context for %s in %s failed; delivered without it", recipient_id, envelope.channel_id
            )
            return None

    def close(self) -> None:
        """The connection is gone: stop delivering to its agents."""
        for agent_id in self.bound:
            self.hub.unbind(agent_id, self.endpoint)
        self.bound.clear()
        self.pushed_turns.clear()

    def _require_bound(self, agent_id: Any, param: str = "agent_id") -> str:
        if agent_id is None or agent_id == "":
            raise ProtocolError(f"param {param!r} is required: the id of an agent bound to this connection")
        if not isinstance(agent_id, str):
            raise ProtocolError(
                f"param {param!r} must be a string (an agent id), got {type(agent_id).__name__}"
            )
        if agent_id not in self.bound:
            raise AccessDeniedError(
                f"this connection does not act as agent {agent_id!r}; register or attach it first",
                agent_id=agent_id,
                reason="not_bound",
            )
        return agent_id

    async def _require_member(self, channel_id: str) -> ChannelMetadata:
        """The channel's metadata, if one of this connection's agents takes part in it."""
        record = self.hub.channels.find(channel_id)
        if record is not None:
            members: frozenset[str] | set[str] = record.members
            metadata = record.metadata
        else:  # unknown, or closed and no longer in memory
            metadata = await self.hub.fetch_channel(channel_id)
            members = set(metadata.participant_ids())
        if not (self.bound & members):
            raise AccessDeniedError(
                f"none of this connection's agents takes part in channel {channel_id}",
                channel_id=channel_id,
                reason="not_a_participant",
            )
        return metadata

    # ops

    async def _register(self, p: dict[str, Any]) -> Passport:
        passport = _as(Passport, p.get("passport"), "passport")
        resume = _as(Resume, p.get("resume") or {}, "resume")
        rule = _as(Rule, p["rule"], "rule") if p.get("rule") is not None else None
        push = _opt_bool(p, "push_turns")
        registered = await self.hub.register(passport, resume, rule=rule, skill_md=_opt_str(p, "skill_md"))
        assert registered.agent_id is not None
        self.bind(registered.agent_id, push_turns=push)
        return registered

    async def _attach(self, p: dict[str, Any]) -> Passport:
        name = _str(p, "name")
        push = _opt_bool(p, "push_turns")
        if self.trusted:
            passport = self.hub.get_agent(name)
        else:
            claim = p.get("auth_claim") or {}
            if not isinstance(claim, dict):
                raise ProtocolError(f"param 'auth_claim' must be an object, got {type(claim).__name__}")
            passport = await self.hub.authenticate(name, str(p.get("auth_scheme") or "none"), claim)
        assert passport.agent_id is not None
        self.bind(passport.agent_id, push_turns=push)
        delivery = self.hub.delivery
        if _opt_bool(p, "hold"):  # a replay follows: new envelopes wait for it (hub/delivery.py)
            delivery.hold(passport.agent_id)
        elif (holding := delivery.holdings.get(passport.agent_id)) is not None:
            delivery.release(holding)  # attached again, without a replay to wait for
        return passport

    async def _replay(self, p: dict[str, Any]) -> int:
        agent_id = self._require_bound(p.get("agent_id"))
        since = p.get("since_envelope_id")
        if since is not None and not isinstance(since, str):
            raise ProtocolError(
                f"param 'since_envelope_id' must be an envelope id, or \"\" for everything not acked, "
                f"got {since!r}"
            )
        return await self.hub.replay(agent_id, since=since or None)

    async def _get_agent(self, p: dict[str, Any]) -> Passport:
        return self.hub.get_agent(_str(p, "name_or_id"))

    async def _find_agent_id(self, p: dict[str, Any]) -> str | None:
        return self.hub.registry.id_for_name(_str(p, "name"))

    async def _names_for(self, p: dict[str, Any]) -> dict[str, str]:
        agent_ids = _str_list(p, "agent_ids") if p.get("agent_ids") is not None else []
        return {a: self.hub.registry.name_of(a) for a in agent_ids}

    async def _get_resume(self, p: dict[str, Any]) -> Resume:
        return self.hub.get_resume(_str(p, "agent_id"))

    async def _get_rule(self, p: dict[str, Any]) -> Rule:
        return self.hub.get_rule(_str(p, "agent_id"))

    async def _get_skill(self, p: dict[str, Any]) -> str | None:
        return self.hub.registry.get(_str(p, "agent_id")).skill_md

    async def _list_agents(self, p: dict[str, Any]) -> list[Passport]:
        """ag2's filters too: ``query`` (a substring of the resume's summary, any case) and
        ``sort_by="name"``."""
        limit = _count(p, "limit", 50)
        query = p.get("query")
        if query is not None and not isinstance(query, str):
            raise ProtocolError(f"param 'query' must be a string, got {query!r}")
        passports = self.hub.list_agents(
            capability=_opt_str(p, "capability"),
            kind=_opt_str(p, "kind"),
            limit=len(self.hub.registry) if query else limit,
        )
        if query:
            needle = query.lower()
            registry = self.hub.registry
            passports = [
                x for x in passports if needle in registry.get(x.agent_id or x.name).resume.summary.lower()
            ]
        if p.get("sort_by") == "name":
            passports.sort(key=lambda x: x.name)
        return passports[:limit]

    async def _discover(self, p: dict[str, Any]) -> list[Passport]:
        return self.hub.discover(_str(p, "capability"), limit=_count(p, "limit", 10))

    async def _set_resume(self, p: dict[str, Any]) -> None:
        await self.hub.set_resume(
            self._require_bound(p.get("agent_id")), _as(Resume, p.get("resume"), "resume")
        )

    async def _set_skill(self, p: dict[str, Any]) -> None:
        agent_id = self._require_bound(p.get("agent_id"))
        skill_md = p.get("skill_md")
        if skill_md is not None and not isinstance(skill_md, str):
            raise ProtocolError(f"param 'skill_md' must be a string or null, got {skill_md!r}")
        record = self.hub.registry.get(agent_id)
        updated = msgspec.structs.replace(record, skill_md=skill_md)
        # Registry first (no await since the read), so a track record folded meanwhile survives.
        self.hub.registry.add(updated)
        await self.hub.store.put_agent(updated)
        self.hub.governance.audit(
            "skill_set", actor=agent_id, agent_id=agent_id, data={"removed": skill_md is None}
        )

    async def _set_rule(self, p: dict[str, Any]) -> None:
        await self.hub.set_rule(self._require_bound(p.get("agent_id")), _as(Rule, p.get("rule"), "rule"))

    async def _unregister(self, p: dict[str, Any]) -> None:
        agent_id = self._require_bound(p.get("agent_id"))
        await self.hub.unregister(agent_id)
        self.bound.discard(agent_id)

    async def _task_event(self, p: dict[str, Any]) -> TaskEvent:
        agent_id = self._require_bound(p.get("agent_id"))
        capabilities = p.get("capabilities")
        if capabilities is not None and (
            not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities)
        ):
            raise ProtocolError(f"param 'capabilities' must be a list of strings, got {capabilities!r}")
        duration = p.get("duration_ms")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
            raise ProtocolError(f"param 'duration_ms' must be a number, got {duration!r}")
        error = p.get("error")
        if error is not None and not isinstance(error, str):
            raise ProtocolError(f"param 'error' must be a string, got {error!r}")
        return await self.hub.record_task_event(
            agent_id,
            _str(p, "task_id"),
            _str(p, "kind"),
            capabilities=capabilities,
            duration_ms=duration,
            error=error,
        )

    async def _hub_status(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.hub.status()


_OPS: dict[str, Op] = {
    "register": Session._register,
    "attach": Session._attach,
    "replay": Session._replay,
    "get_agent": Session._get_agent,
    "find_agent_id": Session._find_agent_id,
    "names_for": Session._names_for,
    "get_resume": Session._get_resume,
    "get_rule": Session._get_rule,
    "get_skill": Session._get_skill,
    "list_agents": Session._list_agents,
    "discover": Session._discover,
    "set_resume": Session._set_resume,
    "set_skill": Session._set_skill,
    "set_rule": Session._set_rule,
    "unregister": Session._unregister,
    "create_channel": _channel_ops.create_channel,
    "get_channel": _channel_ops.get_channel,
    "list_channels": _channel_ops.list_channels,
    "close_channel": _channel_ops.close_channel,
    "post_envelope": _channel_ops.post_envelope,
    "read_wal": _channel_ops.read_wal,
    "find_envelope_by_causation": _channel_ops.find_by_causation,
    "can_send": _channel_ops.can_send,
    "pending_turns_for": _channel_ops.pending_turns_for,
    "report_turn_failure": _channel_ops.report_turn_failure,
    "observe_task": _ag2_tasks.observe_task,
    "update_task": _ag2_tasks.update_task,
    "record_observation": _ag2_tasks.record_observation,
    "fire_task_event": _ag2_tasks.fire_task_event,
    "turn_context": _channel_ops.turn_context,
    "post_reply": _channel_ops.post_reply,
    "hub_status": Session._hub_status,
    "task_event": Session._task_event,
    "hub_agents": _ops_admin.hub_agents,
    "hub_channels": _ops_admin.hub_channels,
    "hub_wal": _ops_admin.hub_wal,
    "audit_query": _ops_admin.audit_query,
    "delegate": _delegation_ops.delegate,
    "task_status": _delegation_ops.task_status,
    "task_wait": _delegation_ops.task_wait,
    "task_list": _delegation_ops.task_list,
    "task_cancel": _delegation_ops.task_cancel,
    "broadcast": _delegation_ops.broadcast,
    "checkpoint_task": _checkpoint_ops.checkpoint_task,
    "read_task_checkpoint": _checkpoint_ops.read_task_checkpoint,
    "checkpoint_put": _checkpoint_ops.checkpoint_put,
    "checkpoint_get": _checkpoint_ops.checkpoint_get,
    "checkpoint_list": _checkpoint_ops.checkpoint_list,
    "checkpoint_delete": _checkpoint_ops.checkpoint_delete,
}
