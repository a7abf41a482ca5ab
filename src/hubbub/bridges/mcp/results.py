"""What the MCP tools return: pydantic models, so the SDK publishes an output schema per tool
and sends each result as structured content (and as JSON text for clients that read only text).

Builders turn hubbub's records into these; names are resolved for the reader
(an assistant asks "who", not "which id"), ids are kept for follow-up calls.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...model.channel import ChannelMetadata
from ...model.delegation import TERMINAL_STATES, DelegatedTask
from ...model.envelope import Envelope
from ...model.identity import ObservedStat, Passport, Resume

__all__ = [
    "AgentInfo",
    "AgentList",
    "BroadcastResult",
    "ChannelInfo",
    "ChannelRead",
    "EnvelopeInfo",
    "HubStatus",
    "ObservedInfo",
    "TaskInfo",
    "TaskList",
    "agent_info",
    "channel_info",
    "envelope_info",
    "task_info",
]


class HubStatus(BaseModel):
    """The hub's counters, and who this MCP server acts as."""

    model_config = ConfigDict(extra="allow")

    hub_id: str = Field(description="The hub's id")
    started_at: str | None = Field(None, description="When the hub started (ISO time)")
    agents: int = Field(description="Registered agents")
    connected: int = Field(0, description="Agents connected to the hub now")
    channels: int = Field(description="Channels the hub holds, in any state")
    channels_by_state: dict[str, int] = Field(default_factory=dict, description="Channel count per state")
    tasks: int = Field(0, description="Delegated tasks the hub holds in memory, in any state")
    tasks_by_state: dict[str, int] = Field(default_factory=dict, description="Task count per state")
    adapters: list[str] = Field(default_factory=list, description="Channel types the hub serves")
    hub_url: str = Field(description="Where this MCP server reaches the hub")
    acting_as: str = Field(description="The agent name this MCP server acts as on the hub")


class ObservedInfo(BaseModel):
    """The hub's track record of one capability, from finished tasks."""

    tasks: int = Field(description="Tasks finished")
    completed: int
    failed: int
    expired: int
    success_rate: float | None = Field(None, description="completed / tasks, None before the first")
    p50_latency_ms: int | None = None


class AgentInfo(BaseModel):
    """One registered agent."""

    name: str
    agent_id: str
    kind: str = Field(description="agent, human or remote_agent")
    capabilities: list[str] = Field(description="What the agent claims it can do")
    domains: list[str] = Field(default_factory=list)
    summary: str = ""
    owner: str = ""
    provider: str | None = None
    model: str | None = None
    observed: dict[str, ObservedInfo] = Field(
        default_factory=dict, description="The hub's track record per capability"
    )
    registered_at: str = ""


class AgentList(BaseModel):
    """Agents, best match first when searched by capability."""

    agents: list[AgentInfo]
    count: int


class ChannelInfo(BaseModel):
    """A channel's lifecycle record."""

    channel_id: str
    type: str = Field(description="consulting, conversation, discussion, workflow or a custom type")
    state: str = Field(description="pending, active, closing, closed or expired")
    creator: str
    participants: list[str] = Field(description="Participant names, initiator first")
    created_at: str
    expires_at: str | None = None
    closed_at: str | None = None
    close_reason: str = ""


class EnvelopeInfo(BaseModel):
    """One event in a channel, as the hub stamped it."""

    envelope_id: str = Field(description="Time-sortable id; pass the last one as `since` to read on")
    sender: str = Field(description="Sender name")
    sender_id: str
    event_type: str
    text: str = Field(description="The text of a message, empty for other events")
    event_data: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    audience: list[str] | None = Field(None, description="Recipient names, None for everyone")
    task_id: str | None = None
    causation_id: str | None = None


class ChannelRead(BaseModel):
    """A page of a channel's log, oldest first."""

    channel: ChannelInfo
    envelopes: list[EnvelopeInfo]
    next_since: str | None = Field(
        None, description="Pass as `since` to read what follows (the last envelope id read so far)"
    )
    more: bool = Field(description="Whether more envelopes follow this page already")


def _observed(stat: ObservedStat) -> ObservedInfo:
    return ObservedInfo(
        tasks=stat.n,
        completed=stat.completed,
        failed=stat.failed,
        expired=stat.expired,
        success_rate=stat.success_rate,
        p50_latency_ms=stat.p50_latency_ms,
    )


def agent_info(passport: Passport, resume: Resume) -> AgentInfo:
    return AgentInfo(
        name=passport.name,
        agent_id=passport.agent_id or "",
        kind=passport.effective_kind,
        capabilities=list(resume.claimed_capabilities),
        domains=list(resume.domains),
        summary=resume.summary,
        owner=passport.owner,
        provider=passport.provider,
        model=passport.model,
        observed={cap: _observed(stat) for cap, stat in resume.observed.items()},
        registered_at=passport.created_at,
    )


def channel_info(meta: ChannelMetadata, names: dict[str, str]) -> ChannelInfo:
    ordered = sorted(meta.participants, key=lambda p: p.order)
    return ChannelInfo(
        channel_id=meta.channel_id,
        type=meta.manifest.type,
        state=meta.state.value,
        creator=names.get(meta.creator_id, meta.creator_id),
        participants=[names.get(p.agent_id, p.agent_id) for p in ordered],
        created_at=meta.created_at,
        expires_at=meta.expires_at,
        closed_at=meta.closed_at,
        close_reason=meta.close_reason,
    )


def envelope_info(envelope: Envelope, names: dict[str, str]) -> EnvelopeInfo:
    audience = envelope.audience
    return EnvelopeInfo(
        envelope_id=envelope.envelope_id,
        sender=names.get(envelope.sender_id, envelope.sender_id),
        sender_id=envelope.sender_id,
        event_type=envelope.event_type,
        text=envelope.text,
        event_data=dict(envelope.event_data),
        created_at=envelope.created_at,
        audience=None if audience is None else [names.get(a, a) for a in audience],
        task_id=envelope.task_id,
        causation_id=envelope.causation_id,
    )


class TaskInfo(BaseModel):
    """A delegated task as the hub keeps it."""

    task_id: str
    capability: str
    state: str = Field(description="PENDING, ASSIGNED, IN_PROGRESS, COMPLETED, FAILED, CANCELLED or TIMEOUT")
    done: bool = Field(description="Whether the task finished (COMPLETED, FAILED, CANCELLED or TIMEOUT)")
    result: Any = Field(None, description="The worker's answer, once COMPLETED")
    error: str | None = Field(None, description="Why it FAILED, was CANCELLED or hit its TIMEOUT")
    requester: str = Field(description="Name of the agent that delegated it")
    worker: str | None = Field(None, description="Name of the agent doing it (None while PENDING)")
    input: Any = Field(None, description="What was asked")
    channel_id: str | None = Field(None, description="The task's channel (read it with read_channel)")
    attempts: int = Field(description="Workers tried so far")
    max_retries: int
    priority: int
    ttl: float = Field(description="Seconds from creation to the deadline")
    idempotency_key: str | None = None
    requester_id: str
    worker_id: str | None = None
    created_at: str
    updated_at: str
    deadline_at: str


class TaskList(BaseModel):
    """Delegated tasks, newest first."""

    tasks: list[TaskInfo]
    count: int


class BroadcastResult(BaseModel):
    """How many agents a broadcast reached."""

    recipients: int = Field(description="Agents the message was sent to")
    capability: str | None = Field(None, description="The capability recipients were chosen by, if any")


def task_info(task: DelegatedTask, names: dict[str, str]) -> TaskInfo:
    worker = task.worker_id
    return TaskInfo(
        task_id=task.task_id,
        capability=task.capability,
        state=task.state,
        done=task.state in TERMINAL_STATES,
        result=task.result,
        error=task.error,
        requester=names.get(task.requester_id, task.requester_id),
        worker=None if worker is None else names.get(worker, worker),
        input=task.input,
        channel_id=task.channel_id,
        attempts=task.attempts,
        max_retries=task.max_retries,
        priority=task.priority,
        ttl=task.ttl,
        idempotency_key=task.idempotency_key,
        requester_id=task.requester_id,
        worker_id=worker,
        created_at=task.created_at,
        updated_at=task.updated_at,
        deadline_at=task.deadline_at,
    )
