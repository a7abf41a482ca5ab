"""Agents: the ``Agent`` protocol, the ``Turn`` it gets, and function agents."""

from .base import Agent, Turn, as_reply
from .current import current_agent
from .function import FunctionAgent, InvitePolicy, function_agent

__all__ = ["Agent", "FunctionAgent", "InvitePolicy", "Turn", "as_reply", "current_agent", "function_agent"]
