"""Storage behind one interface: ``Store``; ``MemoryStore`` for tests and throwaway hubs."""

from .base import AgentRecord, Store
from .memory import MemoryStore

__all__ = ["AgentRecord", "MemoryStore", "Store"]
