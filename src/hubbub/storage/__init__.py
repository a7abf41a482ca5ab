"""Storage behind one interface: ``Store``; ``MemoryStore`` for tests and throwaway hubs,
``SqliteStore`` the embedded default."""

from .base import AgentRecord, Store
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = ["AgentRecord", "MemoryStore", "SqliteStore", "Store"]
