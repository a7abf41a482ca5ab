"""Clients: ``HubClient`` per process, ``AgentClient`` per agent, ``Channel`` per channel,
``HumanClient`` per person, ``TaskMirror`` for an agent's track record."""

from .agent_client import AgentClient, EnvelopeCallback
from .channel import Channel
from .hub_client import HubClient
from .human import HumanClient
from .task_mirror import TaskMirror, TrackedTask

__all__ = [
    "AgentClient",
    "Channel",
    "EnvelopeCallback",
    "HubClient",
    "HumanClient",
    "TaskMirror",
    "TrackedTask",
]
