"""Which adapter runs which channel type: ``(type, version)`` → adapter."""

from __future__ import annotations

from ..errors import NotFoundError, UsageError
from .base import ChannelAdapter
from .broadcast import BroadcastAdapter
from .consulting import ConsultingAdapter
from .conversation import ConversationAdapter
from .discussion import DiscussionAdapter
from .workflow import WorkflowAdapter

__all__ = ["AdapterRegistry"]


class AdapterRegistry:
    """The channel types a hub knows; starts with the five built-ins."""

    def __init__(self, *, builtins: bool = True) -> None:
        self._adapters: dict[tuple[str, int], ChannelAdapter] = {}
        if builtins:
            for adapter in (
                BroadcastAdapter(),
                ConsultingAdapter(),
                ConversationAdapter(),
                DiscussionAdapter(),
                WorkflowAdapter(),
            ):
                self.register(adapter)

    def register(self, adapter: ChannelAdapter, *, replace: bool = False) -> None:
        """Add a channel type. Channels already open keep the adapter they started with."""
        if isinstance(adapter, type):
            raise UsageError(f"register an instance, not the class: register_adapter({adapter.__name__}())")
        if not isinstance(adapter, ChannelAdapter):
            raise UsageError(
                f"{type(adapter).__name__} is not a ChannelAdapter: it needs a manifest and the methods "
                "validate_create, initial_state, fold, validate_send, on_accepted, expected_next, "
                "default_view, turn_input and reply_envelope"
            )
        key = (adapter.manifest.type, adapter.manifest.version)
        if key in self._adapters and not replace:
            raise UsageError(
                f"channel type {key[0]!r} version {key[1]} is already registered; "
                "pass replace=True to swap it"
            )
        self._adapters[key] = adapter

    def get(self, type_: str, version: int = 1) -> ChannelAdapter:
        """The adapter for a channel type, or :class:`NotFoundError` listing the known types."""
        try:
            return self._adapters[(type_, version)]
        except KeyError:
            known = ", ".join(sorted({t for t, _ in self._adapters}))
            raise NotFoundError(
                f"unknown channel type {type_!r} (version {version}); known types: {known}. "
                "Register a custom type with Hub.register_adapter()",
                reason="unknown_channel_type",
            ) from None

    def types(self) -> list[str]:
        """Registered type names."""
        return sorted({t for t, _ in self._adapters})
