"""The tools that act: delegate a task and get its result, list and cancel tasks, broadcast.

They act as the bridge's operator identity: it is the requester of every
delegation and the sender of every broadcast. ``delegate_task`` returns as
soon as the hub has the task (its id, state PENDING or later); the work goes
on in the hub, and ``get_task_result`` waits for it for at most
``wait_seconds``.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from ...model.delegation import DelegatedTask, TaskState
from ._tooling import READ_ONLY, Limit, hub_tool
from .bridge import MAX_WAIT_SECONDS, HubBridge
from .results import BroadcastResult, TaskInfo, TaskList, task_info

__all__ = ["add_task_tools"]

_ACTS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
_CANCELS = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


def add_task_tools(server: MCPServer, bridge: HubBridge) -> None:
    """Add delegate_task, get_task_result, list_tasks, cancel_task and broadcast_message."""

    async def describe(tasks: list[DelegatedTask]) -> list[TaskInfo]:
        ids = [t.requester_id for t in tasks] + [t.worker_id or "" for t in tasks]
        names = await bridge.names(ids)
        return [task_info(t, names) for t in tasks]

    async def delegate_task(
        capability: Annotated[str, Field(description="What the work needs, e.g. 'summarize'")],
        input: Annotated[
            str | dict[str, Any], Field(description="The job: text, or a JSON object for structured work")
        ],
        target: Annotated[
            str | None, Field(description="A specific agent (name) to ask; default: the best capable one")
        ] = None,
        ttl: Annotated[float, Field(gt=0, le=86400, description="Seconds until the task times out")] = 60.0,
        priority: Annotated[int, Field(description="Higher runs first")] = 0,
        idempotency_key: Annotated[
            str | None,
            Field(description="Retrying with the same key returns the first task instead of a new one"),
        ] = None,
        max_retries: Annotated[
            int, Field(ge=0, le=10, description="Other agents to try if the worker goes away")
        ] = 2,
    ) -> TaskInfo:
        """Hand a job to an agent with `capability` (or to `target`). Returns at once with the task
        id; call get_task_result(task_id, wait_seconds) for the result."""
        operator = await bridge.operator()
        task = await bridge.call(
            operator.delegate(
                capability,
                input,
                target=target,
                ttl=ttl,
                priority=priority,
                idempotency_key=idempotency_key,
                max_retries=max_retries,
            )
        )
        [info] = await describe([task])
        return info

    async def get_task_result(
        task_id: Annotated[str, Field(description="The id delegate_task returned")],
        wait_seconds: Annotated[
            float,
            Field(
                ge=0,
                le=MAX_WAIT_SECONDS,
                description="Wait up to this long for the task to finish (0: answer at once)",
            ),
        ] = 0.0,
    ) -> TaskInfo:
        """A task's state, and its result once done. With wait_seconds it waits at most that long for
        the task to finish, then answers with where it stands (check `done`)."""
        client = await bridge.hub()
        if wait_seconds > 0:
            task = await bridge.call(client.wait_task(task_id, timeout=wait_seconds), wait=wait_seconds)
        else:
            task = await bridge.call(client.get_task(task_id))
        [info] = await describe([task])
        return info

    async def list_tasks(
        state: Annotated[TaskState | None, Field(description="Only tasks in this state")] = None,
        requester: Annotated[str | None, Field(description="Only tasks delegated by this agent")] = None,
        worker: Annotated[str | None, Field(description="Only tasks done by this agent")] = None,
        limit: Limit = 50,
    ) -> TaskList:
        """Delegated tasks on the hub, optionally by state, requester or worker (names or ids)."""
        client = await bridge.hub()
        requester_id = await bridge.call(client.agent_id_of(requester)) if requester else None
        worker_id = await bridge.call(client.agent_id_of(worker)) if worker else None
        tasks = await bridge.call(
            client.list_tasks(state=state, requester_id=requester_id, worker_id=worker_id, limit=limit)
        )
        infos = await describe(tasks)
        return TaskList(tasks=infos, count=len(infos))

    async def cancel_task(
        task_id: Annotated[str, Field(description="A task this server delegated")],
    ) -> TaskInfo:
        """Cancel a task this server delegated that has not finished; its channel is closed."""
        operator = await bridge.operator()
        task = await bridge.call(operator.cancel_task(task_id))
        [info] = await describe([task])
        return info

    async def broadcast_message(
        text: Annotated[str, Field(min_length=1, description="The message")],
        capability: Annotated[
            str | None, Field(description="Only agents claiming this capability; default: every agent")
        ] = None,
    ) -> BroadcastResult:
        """Send a text message to every agent on the hub, or to those with `capability`."""
        operator = await bridge.operator()
        recipients = await bridge.call(operator.broadcast(text, capability=capability))
        return BroadcastResult(recipients=recipients, capability=capability)

    hub_tool(server, delegate_task, annotations=_ACTS)
    hub_tool(server, get_task_result, annotations=READ_ONLY)
    hub_tool(server, list_tasks, annotations=READ_ONLY)
    hub_tool(server, cancel_task, annotations=_CANCELS)
    hub_tool(server, broadcast_message, annotations=_ACTS)
