"""``HubClient``: one process's connection to a hub, hosting any number of agents."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, TypeVar

from ..agents.base import Agent
from ..errors import HubbubError, HubTimeoutError, TransportError, UsageError
from ..model.channel import ChannelMetadata
from ..model.delegation import DelegatedTask
from ..model.envelope import Envelope
from ..model.identity import AuthBlock, Passport, Resume
from ..model.rule import Rule
from ..model.turn import TurnContext
from ..transport.link import Link
from ._convert import as_type
from ._views import HubViews
from .agent_client import AgentClient
from .human import DEFAULT_MAX_QUEUED, HumanClient, human_passport

__all__ = ["HubClient"]

log = logging.getLogger("hubbub.client")

_C = TypeVar("_C", bound=AgentClient)
_WAIT_SLICE = 10.0
"""Seconds one ``task_wait`` request may hold (below every link's request timeout)."""


class HubClient(HubViews):
    """Connect once per process; register or attach agents through it.

    ``HubClient(LocalLink(hub))`` in one process; the same API over any other link.
    Over a link that reconnects by itself (``WsLink``), every hosted agent is
    attached again after a reconnect, with the credential it registered or
    attached with, and the hub replays what it had not acked: its lanes carry
    on where they stopped.

    Operator views of the whole hub (every agent, channel, WAL, the audit log)
    are the ``hub_*`` and ``audit_query`` methods (see ``client/_views.py``).
    """

    def __init__(self, link: Link) -> None:
        self.link = link
        self._agents: dict[str, AgentClient] = {}
        self._connected = False
        self._connect_lock = asyncio.Lock()
        self._ids_by_name: dict[str, str] = {}
        self._auth: dict[str, AuthBlock] = {}  # agent id -> credential to re-attach with

    async def connect(self) -> HubClient:
        """Open the link (done for you by the first call that needs it)."""
        async with self._connect_lock:
            if not self._connected:
                on_reconnect = getattr(self.link, "on_reconnect", None)
                if callable(on_reconnect):
                    on_reconnect(self._reattach)
                await self.link.connect(self._on_notify)
                self._connected = True
        return self

    async def __aenter__(self) -> HubClient:
        return await self.connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def request(self, op: str, params: dict[str, Any]) -> Any:
        """Run a control-plane op on the hub (see docs/protocol.md for the ops)."""
        if not self._connected:
            await self.connect()
        return await self.link.request(op, params)

    async def _reattach(self) -> None:
        """After a reconnect: attach every hosted agent again, then replay what each has not acked.

        All attach before any replay, so an agent answering a replayed envelope
        can already reach the others. An agent the hub refuses (unregistered,
        key revoked) is logged and left out.
        """
        attached: list[str] = []
        for agent_id, client in list(self._agents.items()):
            auth = self._auth.get(agent_id, AuthBlock())
            params: dict[str, Any] = {
                "name": client.name,
                "auth_scheme": auth.scheme,
                "auth_claim": auth.claim,
                "hold": True,  # new envelopes wait for the replay below: nothing overtakes the backlog
            }
            if client.handle_turns:
                params["push_turns"] = True
            try:
                await self.link.request("attach", params)
            except TransportError:
                raise
            except HubbubError as exc:
                log.error("could not re-attach %s after reconnecting: %s", client.name, exc)
                continue
            attached.append(agent_id)
        for agent_id in attached:
            try:
                await self.link.request("replay", {"agent_id": agent_id, "since_envelope_id": ""})
            except HubTimeoutError as exc:  # the hub is still replaying; the others' turn now
                log.warning("replay for %s after reconnecting is slow: %s", agent_id, exc)
            except TransportError:
                raise
            except HubbubError as exc:
                log.error("could not replay for %s after reconnecting: %s", agent_id, exc)

    def _on_notify(self, envelope: Envelope, recipient_id: str, turn: TurnContext | None) -> None:
        agent = self._agents.get(recipient_id)
        if agent is not None:
            agent.deliver(envelope, turn)
        else:
            log.debug("delivery for %s, which this client does not host", recipient_id)

    async def receipt(self, envelope: Envelope, status: str, recipient_id: str, reason: str = "") -> None:
        """Ack or nack one delivery (the agent lanes do this for you)."""
        await self.link.receipt(
            envelope.envelope_id,
            "ack" if status == "ack" else "nack",
            recipient_id,
            envelope.channel_id,
            reason,
        )

    # agents

    async def register(
        self,
        agent: Agent | None = None,
        passport: Passport | None = None,
        resume: Resume | None = None,
        *,
        name: str | None = None,
        rule: Rule | None = None,
        skill_md: str | None = None,
        attach_plugin: bool = False,
        handle_turns: bool = True,
        auto_answer_invites: bool = True,
    ) -> AgentClient:
        """Register an agent and start receiving its deliveries.

        The passport defaults to one named after the agent (or ``name``); the
        resume to the agent's ``capabilities`` and ``summary`` if it has them.
        With ``attach_plugin`` the agent gets its :class:`AgentClient` as
        ``agent.network``, so its turns can discover peers and open channels.
        With ``auto_answer_invites=False`` invites reach ``on_envelope`` unanswered.
        """
        if passport is None:
            agent_name = name or getattr(agent, "name", None)
            if not agent_name:
                raise UsageError("register needs a name: pass an agent with .name, a passport, or name=")
            passport = Passport(name=agent_name)
        if resume is None:
            resume = Resume(
                claimed_capabilities=list(getattr(agent, "capabilities", []) or []),
                summary=str(getattr(agent, "summary", "") or ""),
            )
        params: dict[str, Any] = {"passport": passport, "resume": resume, "rule": rule, "skill_md": skill_md}
        if handle_turns and agent is not None:
            params["push_turns"] = True  # its turn contexts come with its deliveries: no request each
        raw = await self.request("register", params)
        registered = as_type(Passport, raw)
        self._auth[registered.agent_id] = passport.auth
        return self._host(
            agent,
            registered,
            attach_plugin=attach_plugin,
            handle_turns=handle_turns,
            auto_answer_invites=auto_answer_invites,
        )

    async def attach(
        self,
        agent: Agent | None,
        name: str,
        *,
        since_envelope_id: str | None = "",
        attach_plugin: bool = False,
        handle_turns: bool = True,
        auto_answer_invites: bool = True,
        auth: AuthBlock | None = None,
    ) -> AgentClient:
        """Act again as an already registered agent; replays what it has not acked.

        ``since_envelope_id=""`` replays everything past its ack cursors; an id
        replays only what is newer; None replays nothing. Over the network,
        ``auth`` carries the credential (the hub never stored it), e.g.
        ``AuthBlock(scheme="api_key", claim={"api_key": key})``.
        """
        params: dict[str, Any] = {"name": name}
        if auth is not None:
            params.update(auth_scheme=auth.scheme, auth_claim=auth.claim)
        if handle_turns and agent is not None:
            params["push_turns"] = True
        if since_envelope_id is not None:
            params["hold"] = True  # new envelopes wait for the replay: nothing overtakes the backlog
        passport = as_type(Passport, await self.request("attach", params))
        if auth is not None:
            self._auth[passport.agent_id] = auth
        client = self._host(
            agent,
            passport,
            attach_plugin=attach_plugin,
            handle_turns=handle_turns,
            auto_answer_invites=auto_answer_invites,
        )
        if since_envelope_id is not None:
            await self.request(
                "replay", {"agent_id": client.agent_id, "since_envelope_id": since_envelope_id}
            )
        return client

    def _host(
        self,
        agent: Agent | None,
        passport: Passport,
        *,
        attach_plugin: bool,
        handle_turns: bool,
        auto_answer_invites: bool = True,
    ) -> AgentClient:
        client = self._adopt(
            AgentClient(
                self, agent, passport, handle_turns=handle_turns, auto_answer_invites=auto_answer_invites
            )
        )
        if attach_plugin and agent is not None:
            agent.network = client  # type: ignore[attr-defined]
        return client

    def _adopt(self, client: _C) -> _C:
        """Route ``client.agent_id``'s deliveries to ``client`` from now on."""
        self._agents[client.agent_id] = client
        self._ids_by_name[client.name] = client.agent_id
        return client

    # humans

    async def register_human(
        self,
        name_or_passport: str | Passport,
        *,
        resume: Resume | None = None,
        rule: Rule | None = None,
        auto_ack_invites: bool = True,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> HumanClient:
        """Register a person (passport ``kind="human"``) and start receiving their deliveries.

        See :class:`HumanClient` for push and pull reading, invites
        (``auto_ack_invites=False``: the human answers them) and ``max_queued``.
        """
        passport = human_passport(name_or_passport)
        params = {"passport": passport, "resume": resume or Resume(), "rule": rule}
        registered = as_type(Passport, await self.request("register", params))
        self._auth[registered.agent_id] = passport.auth
        return self._adopt(
            HumanClient(self, registered, auto_ack_invites=auto_ack_invites, max_queued=max_queued)
        )

    async def attach_human(
        self,
        name: str,
        *,
        auto_ack_invites: bool = True,
        max_queued: int = DEFAULT_MAX_QUEUED,
        since_envelope_id: str | None = "",
    ) -> HumanClient:
        """Act again as an already registered human; replays what they have not acked
        (``since_envelope_id`` as in :meth:`attach`)."""
        known = await self.get_agent(name)
        if known.effective_kind != "human":
            raise UsageError(
                f"{name!r} is registered as kind {known.effective_kind!r}, not 'human'; use attach() for it"
            )
        params = {"name": name, "hold": since_envelope_id is not None}
        passport = as_type(Passport, await self.request("attach", params))
        human = self._adopt(
            HumanClient(self, passport, auto_ack_invites=auto_ack_invites, max_queued=max_queued)
        )
        if since_envelope_id is not None:
            await self.request("replay", {"agent_id": human.agent_id, "since_envelope_id": since_envelope_id})
        return human

    async def agent_id_of(self, name_or_id: str) -> str:
        """The agent id for a name (ids pass through)."""
        known = self._ids_by_name.get(name_or_id)
        if known is not None:
            return known
        if name_or_id in self._agents:
            return name_or_id
        passport = await self.get_agent(name_or_id)
        assert passport.agent_id is not None
        self._ids_by_name[passport.name] = passport.agent_id
        return passport.agent_id

    # reads

    async def get_agent(self, name_or_id: str) -> Passport:
        return as_type(Passport, await self.request("get_agent", {"name_or_id": name_or_id}))  # type: ignore[no-any-return]

    async def list_agents(self, *, capability: str | None = None, limit: int = 50) -> list[Passport]:
        raw = await self.request("list_agents", {"capability": capability, "limit": limit})
        return as_type(list[Passport], raw)  # type: ignore[no-any-return]

    async def discover(self, capability: str, *, limit: int = 10) -> list[Passport]:
        """Agents claiming ``capability``, best first."""
        raw = await self.request("discover", {"capability": capability, "limit": limit})
        return as_type(list[Passport], raw)  # type: ignore[no-any-return]

    async def get_channel(self, channel_id: str) -> ChannelMetadata:
        return as_type(ChannelMetadata, await self.request("get_channel", {"channel_id": channel_id}))  # type: ignore[no-any-return]

    async def close_channel(self, channel_id: str, reason: str = "closed") -> ChannelMetadata:
        raw = await self.request("close_channel", {"channel_id": channel_id, "reason": reason})
        return as_type(ChannelMetadata, raw)  # type: ignore[no-any-return]

    async def read_wal(
        self, channel_id: str, *, since: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[Envelope]:
        """A channel's envelopes after ``since``, oldest first."""
        raw = await self.request(
            "read_wal", {"channel_id": channel_id, "since": since, "until": until, "limit": limit}
        )
        return as_type(list[Envelope], raw)  # type: ignore[no-any-return]

    async def get_task(self, task_id: str) -> DelegatedTask:
        """A delegated task's record (``not_found`` if there is none)."""
        return as_type(DelegatedTask, await self.request("task_status", {"task_id": task_id}))  # type: ignore[no-any-return]

    async def wait_task(self, task_id: str, timeout: float = 30.0) -> DelegatedTask:
        """The task once it is finished, or as it stands after ``timeout`` seconds.

        Waits in slices of at most ``_WAIT_SLICE`` seconds per request, so a long wait
        never runs into the link's own request timeout.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise UsageError(f"timeout must be a number of seconds, 0 or more, got {timeout!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = max(0.0, deadline - loop.time())
            raw = await self.request("task_wait", {"task_id": task_id, "timeout": min(left, _WAIT_SLICE)})
            task: DelegatedTask = as_type(DelegatedTask, raw)
            if task.finished or left <= _WAIT_SLICE:
                return task

    async def list_tasks(
        self,
        *,
        state: str | None = None,
        requester_id: str | None = None,
        worker_id: str | None = None,
        limit: int = 100,
    ) -> list[DelegatedTask]:
        """Delegated tasks, newest first, filtered by state, requester and worker (ids)."""
        params = {"state": state, "requester_id": requester_id, "worker_id": worker_id, "limit": limit}
        return as_type(list[DelegatedTask], await self.request("task_list", params))  # type: ignore[no-any-return]

    async def hub_status(self) -> dict[str, Any]:
        return dict(await self.request("hub_status", {}))

    async def aclose(self) -> None:
        """Stop every hosted agent and close the link."""
        for client in list(self._agents.values()):
            await client.aclose()
        self._agents.clear()
        self._auth.clear()
        if self._connected:
            await self.link.aclose()
            self._connected = False
