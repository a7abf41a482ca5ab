"""Clients: ``HubClient`` per process, ``AgentClient`` per agent, ``Channel`` per channel."""

from .agent_client import AgentClient, EnvelopeCallback
from .channel import Channel
from .hub_client import HubClient

__all__ = ["AgentClient", "Channel", "EnvelopeCallback", "HubClient"]
