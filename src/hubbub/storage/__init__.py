"""Storage behind one interface: ``Store``; ``MemoryStore`` for tests and throwaway hubs,
``SqliteStore`` the embedded default."""

from .base import AgentRecord, Store
from .knowledge import KnowledgeStore, MemoryKnowledgeStore
from .knowledge_disk import DiskKnowledgeStore
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = [
    "AgentRecord",
    "DiskKnowledgeStore",
    "KnowledgeStore",
    "MemoryKnowledgeStore",
    "MemoryStore",
    "SqliteStore",
    "Store",
]
