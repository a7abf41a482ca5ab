"""Channel adapters: pure turn-taking rules, one per channel type."""

from .base import AdapterResult, AgentReply, ChannelAdapter, ExpectedTurn, Finish, Handoff
from .broadcast import BroadcastAdapter
from .consulting import ConsultingAdapter
from .conversation import ConversationAdapter
from .discussion import DiscussionAdapter
from .registry import AdapterRegistry
from .workflow import WorkflowAdapter

__all__ = [
    "AdapterRegistry",
    "AdapterResult",
    "AgentReply",
    "BroadcastAdapter",
    "ChannelAdapter",
    "ConsultingAdapter",
    "ConversationAdapter",
    "DiscussionAdapter",
    "ExpectedTurn",
    "Finish",
    "Handoff",
    "WorkflowAdapter",
]
