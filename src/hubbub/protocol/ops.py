"""Control-plane operation names: the ``op`` of a :class:`~hubbub.protocol.frames.RequestFrame`.

:data:`AG2_OPS` are the operations ``ag2==1.2.1``'s hub serves, with the
same names and params, so an unmodified AG2 client works against hubbub.
:data:`HUBBUB_OPS` are hubbub's own. Each constant's docstring lists its
``params`` (``?`` marks optional ones) and what ``result`` holds. Agent-
scoped ops act only as an agent bound to the calling connection.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AG2_OPS",
    "ATTACH",
    "AUDIT_QUERY",
    "BROADCAST",
    "DELEGATE",
    "POST_REPLY",
    "REPLAY",
    "CAN_SEND",
    "CHECKPOINT_DELETE",
    "CHECKPOINT_GET",
    "CHECKPOINT_LIST",
    "CHECKPOINT_PUT",
    "CHECKPOINT_TASK",
    "CLOSE_CHANNEL",
    "CREATE_CHANNEL",
    "DISCOVER",
    "FIND_AGENT_ID",
    "FIND_ENVELOPE_BY_CAUSATION",
    "FIRE_TASK_EVENT",
    "GET_AGENT",
    "GET_CHANNEL",
    "GET_RESUME",
    "GET_RULE",
    "GET_SKILL",
    "GET_TASK",
    "HUBBUB_OPS",
    "HUB_AGENTS",
    "HUB_CHANNELS",
    "HUB_STATUS",
    "HUB_WAL",
    "LIST_AGENTS",
    "LIST_CHANNELS",
    "LIST_TASKS",
    "NAMES_FOR",
    "OBSERVE_TASK",
    "OPS",
    "PENDING_TURNS_FOR",
    "POST_ENVELOPE",
    "READ_TASK_CHECKPOINT",
    "READ_WAL",
    "RECORD_OBSERVATION",
    "REGISTER",
    "REPORT_TURN_FAILURE",
    "SET_RESUME",
    "SET_RULE",
    "SET_SKILL",
    "TASK_CANCEL",
    "TASK_EVENT",
    "TASK_LIST",
    "TASK_STATUS",
    "TASK_WAIT",
    "TURN_CONTEXT",
    "UNREGISTER",
    "UPDATE_TASK",
]

# Identity and registry.
REGISTER: Final = "register"
"""``{passport, resume, rule?, skill_md?}`` → the stamped public passport; binds the caller to it."""
GET_AGENT: Final = "get_agent"
"""``{name_or_id}`` → public passport."""
GET_RESUME: Final = "get_resume"
"""``{agent_id}`` → resume."""
GET_SKILL: Final = "get_skill"
"""``{agent_id}`` → skill markdown or ``None``."""
GET_RULE: Final = "get_rule"
"""``{agent_id}`` → rule."""
FIND_AGENT_ID: Final = "find_agent_id"
"""``{name}`` → agent id or ``None``."""
NAMES_FOR: Final = "names_for"
"""``{agent_ids}`` → ``{agent_id: name}``."""
LIST_AGENTS: Final = "list_agents"
"""``{capability?, query?, kind?, sort_by?, limit?=50}`` → list of public passports. ``query`` keeps
agents whose resume summary contains it (any case); ``sort_by="name"`` orders by name, else the
capability's ranking (or registration order)."""
SET_RESUME: Final = "set_resume"
"""``{agent_id, resume}`` → ``None``."""
SET_SKILL: Final = "set_skill"
"""``{agent_id, skill_md?}`` (absent or ``None`` removes it) → ``None``; audited as ``skill_set``."""
SET_RULE: Final = "set_rule"
"""``{agent_id, rule}`` → ``None``."""
UNREGISTER: Final = "unregister"
"""``{agent_id}`` → ``None``."""

# Channels and envelopes.
CREATE_CHANNEL: Final = "create_channel"
"""``{creator_id, manifest_type, participants, manifest_version?=1, required_acks?, ttl?, knobs?,
intent?, labels?}`` → channel metadata."""
GET_CHANNEL: Final = "get_channel"
"""``{channel_id}`` → channel metadata."""
LIST_CHANNELS: Final = "list_channels"
"""``{agent_id?, limit?=50}`` (no agent: every agent bound here) → list of channel metadata."""
CLOSE_CHANNEL: Final = "close_channel"
"""``{channel_id, reason?}`` → channel metadata; an absent or empty reason is ``"explicit_close"``."""
POST_ENVELOPE: Final = "post_envelope"
"""``{envelope}`` → the stamped ``envelope_id`` (the first one again for a repeated idempotency key)."""
READ_WAL: Final = "read_wal"
"""``{channel_id, since?=0, until?}`` → list of envelopes."""
FIND_ENVELOPE_BY_CAUSATION: Final = "find_envelope_by_causation"
"""``{channel_id, sender_id, causation_id}`` → envelope or ``None``."""
CAN_SEND: Final = "can_send"
"""``{channel_id, sender_id, event_type?}`` → bool: whether the adapter would take the send now."""
PENDING_TURNS_FOR: Final = "pending_turns_for"
"""``{agent_id}`` → list of ``{channel_id, triggering_envelope_id, expected_at}``: the turns the
channels still expect from that agent (``expected_at`` is the trigger's ``created_at``)."""
REPORT_TURN_FAILURE: Final = "report_turn_failure"
"""``{channel_id, agent_id, envelope_id, error?}`` → ``None``: audited as ``turn_failed`` and given
to listeners' ``on_turn_failed``; unlike a nack, nothing is redelivered."""

# Tasks.
GET_TASK: Final = "get_task"
"""``{task_id}`` → task metadata. Not served yet (``protocol_error``): hubbub keeps no ag2-style
task record."""
LIST_TASKS: Final = "list_tasks"
"""``{agent_id?, channel_id?, state?, limit?=50}`` → list of task metadata visible to the caller.
Not served yet (``protocol_error``)."""
OBSERVE_TASK: Final = "observe_task"
"""``{metadata}`` (an ag2 ``TaskMetadata``) → ``None``: the owner's mirrored task starts, tagged
with ``spec.capability`` (see :mod:`hubbub.hub._ag2_tasks`)."""
UPDATE_TASK: Final = "update_task"
"""``{task_id, state?, progress?, result?, error?}`` → ``None``: a terminal ``state`` finishes the
mirrored task (``completed`` succeeds, the others fail) and feeds ``Resume.observed``."""
RECORD_OBSERVATION: Final = "record_observation"
"""``{owner_id, capability, outcome, latency_ms?, task_id?}`` → ``None``: accepted, changes nothing
(the outcome was counted when ``update_task`` finished the task)."""
FIRE_TASK_EVENT: Final = "fire_task_event"
"""``{task_id, kind, payload?}`` → ``None``: an audit record ``task_event`` (reason: ``kind``)."""
CHECKPOINT_TASK: Final = "checkpoint_task"
"""``{task_id, state}`` → ``None``: stores ``state`` (a JSON object) as the task's checkpoint,
durably, replacing the last one. The caller acts as the agents bound to its connection; see
``checkpoint_put`` for who may."""
READ_TASK_CHECKPOINT: Final = "read_task_checkpoint"
"""``{task_id}`` → the last checkpoint's ``state`` or ``None`` if the task has none."""

# hubbub's own.
TURN_CONTEXT: Final = "turn_context"
"""``{channel_id, agent_id, envelope_id}`` → the envelopes that agent sees for its turn at that
envelope, projected through its view policy."""
DISCOVER: Final = "discover"
"""``{capability, limit?}`` → ranked list of public passports (claimed match, then observed record)."""
HUB_STATUS: Final = "hub_status"
"""``{}`` → counts and health of the hub (agents, channels, connections, store)."""
ATTACH: Final = "attach"
"""``{name}`` → the passport of an already registered agent, now bound to this connection."""
REPLAY: Final = "replay"
"""``{agent_id, since_envelope_id?}`` → how many unacked envelopes were delivered again."""
POST_REPLY: Final = "post_reply"
"""``{channel_id, agent_id, causation_id, reply}`` → the id of the envelope the channel's adapter
shaped from ``reply`` (an AgentReply); idempotent per (agent, causation_id)."""
TASK_EVENT: Final = "task_event"
"""``{agent_id, task_id, kind, capabilities?, duration_ms?, error?}`` → the accepted task event: one
step (``started``, ``succeeded``, ``failed``) of a sub-task the agent mirrors; results feed the
resume's ``observed`` track record per capability."""

# Operator views of the whole hub (hub/_ops_admin.py). On a hub that checks credentials, all but
# hub_agents need a connection with at least one agent bound (registered or attached with its key).
HUB_AGENTS: Final = "hub_agents"
"""``{capability?, kind?, limit?=50}`` → list of ``AgentInfo`` ``{passport, resume, connected,
open_channels}``, ranked by ``capability`` when given (like ``list_agents``), else by registration."""
HUB_CHANNELS: Final = "hub_channels"
"""``{state?, type?, agent?, limit?=50}`` → channel metadata of the whole hub, newest first;
``agent`` (a name or id) keeps that agent's channels."""
HUB_WAL: Final = "hub_wal"
"""``{channel_id, since?, limit?, tail?}`` → envelopes of any channel, oldest first: after ``since``
(at most ``limit``), or the last ``tail`` ones."""
AUDIT_QUERY: Final = "audit_query"
"""``{kind?, agent_id?, channel_id?, since?, until?, limit?=100, tail?=false}`` → audit records, oldest
first; ``agent_id`` may be a name; with ``tail`` the latest ``limit`` ones."""

# Delegated tasks and broadcast (hubbub's own; see docs/tasks.md).
DELEGATE: Final = "delegate"
"""``{agent_id, capability, input, target?, ttl?=60, priority?=0, idempotency_key?, max_retries?=2}`` →
the task (a DelegatedTask, PENDING): have another agent do ``capability`` on ``input``. Agent-scoped
(``agent_id`` is the requester)."""
TASK_STATUS: Final = "task_status"
"""``{task_id}`` → the task."""
TASK_WAIT: Final = "task_wait"
"""``{task_id, timeout}`` → the task once finished, or as it stands when ``timeout`` seconds pass."""
TASK_LIST: Final = "task_list"
"""``{state?, requester_id?, worker_id?, limit?=100}`` → list of tasks, newest first."""
TASK_CANCEL: Final = "task_cancel"
"""``{agent_id, task_id}`` → the CANCELLED task; only its requester may. Agent-scoped."""
BROADCAST: Final = "broadcast"
"""``{agent_id, text, capability?}`` → ``{"recipients": int}``: one text to every connected agent
(claiming ``capability``, if given). Agent-scoped."""

# Task checkpoints (hubbub's own; hub/checkpoints.py). ``agent_id`` is optional: without it the
# caller acts as every agent bound to its connection. A delegated task's checkpoint is its requester's
# and its worker's; any other task id's is the agent's that saved its first checkpoint.
CHECKPOINT_PUT: Final = "checkpoint_put"
"""``{task_id, state? | blob?, agent_id?}`` → ``CheckpointInfo`` ``{task_id, owner_id, version, size,
kind, saved_at}``: replace the task's checkpoint with ``state`` (a JSON object) or ``blob`` (bytes,
base64 in JSON); returns once it is durable. Over the hub's size limit: ``protocol_error``
(reason ``checkpoint_too_large``)."""
CHECKPOINT_GET: Final = "checkpoint_get"
"""``{task_id, agent_id?}`` → the latest ``Checkpoint`` (the info plus ``state`` or ``blob``), or
``None`` if the task has none."""
CHECKPOINT_LIST: Final = "checkpoint_list"
"""``{agent_id?}`` → list of ``CheckpointInfo``: every checkpoint the caller may read, by task id."""
CHECKPOINT_DELETE: Final = "checkpoint_delete"
"""``{task_id, agent_id?}`` → the deleted checkpoint's ``CheckpointInfo``; ``not_found`` (reason
``no_checkpoint``) if the task has none."""

AG2_OPS: frozenset[str] = frozenset(
    {
        REGISTER,
        GET_AGENT,
        GET_RESUME,
        GET_SKILL,
        GET_RULE,
        FIND_AGENT_ID,
        NAMES_FOR,
        LIST_AGENTS,
        SET_RESUME,
        SET_SKILL,
        SET_RULE,
        UNREGISTER,
        CREATE_CHANNEL,
        GET_CHANNEL,
        LIST_CHANNELS,
        CLOSE_CHANNEL,
        POST_ENVELOPE,
        READ_WAL,
        FIND_ENVELOPE_BY_CAUSATION,
        CAN_SEND,
        PENDING_TURNS_FOR,
        REPORT_TURN_FAILURE,
        GET_TASK,
        LIST_TASKS,
        OBSERVE_TASK,
        UPDATE_TASK,
        RECORD_OBSERVATION,
        FIRE_TASK_EVENT,
        CHECKPOINT_TASK,
        READ_TASK_CHECKPOINT,
    }
)
"""The operations an unmodified AG2 client may send."""

HUBBUB_OPS: frozenset[str] = frozenset(
    {
        TURN_CONTEXT,
        DISCOVER,
        HUB_STATUS,
        ATTACH,
        REPLAY,
        POST_REPLY,
        TASK_EVENT,
        HUB_AGENTS,
        HUB_CHANNELS,
        HUB_WAL,
        AUDIT_QUERY,
        DELEGATE,
        TASK_STATUS,
        TASK_WAIT,
        TASK_LIST,
        TASK_CANCEL,
        BROADCAST,
        CHECKPOINT_PUT,
        CHECKPOINT_GET,
        CHECKPOINT_LIST,
        CHECKPOINT_DELETE,
    }
)
"""Operations only hubbub clients send."""

OPS: frozenset[str] = AG2_OPS | HUBBUB_OPS
"""Every operation the hub serves; any other ``op`` gets a ``protocol_error`` response."""
