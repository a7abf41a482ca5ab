"""Storage behind one interface: ``Store``; ``MemoryStore`` for tests and throwaway hubs,
``SqliteStore`` the embedded default."""

from .base import AgentRecord, Store
from .knowledge import KnowledgeStore, MemoryKnowledgeStore
from .knowledge_disk import DiskKnowledgeStore
from .memory import MemoryStore
from .retention import CompactionReport, RetentionPolicy
from .sqlite import SqliteStore

__all__ = [
    "AgentRecord",
    "CompactionReport",
    "DiskKnowledgeStore",
    "KnowledgeStore",
    "MemoryKnowledgeStore",
    "MemoryStore",
    "RetentionPolicy",
    "SqliteStore",
    "Store",
]
