"""AdapterRegistry: the built-in channel types, custom ones, and developer mistakes."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.adapters import (
    AdapterRegistry,
    AdapterResult,
    AgentReply,
    BroadcastAdapter,
    ChannelAdapter,
    ConsultingAdapter,
    ConversationAdapter,
    DiscussionAdapter,
    ExpectedTurn,
    WorkflowAdapter,
)
from hubbub.adapters.views import FullTranscript, ViewPolicy
from hubbub.errors import NotFoundError, UsageError
from hubbub.model import ChannelManifest, ChannelMetadata, Envelope

from ._channel import Channel, make_metadata


class EchoAdapter:
    """The smallest custom channel type: anyone speaks, the count is the state."""

    manifest = ChannelManifest(type="echo")

    def validate_create(self, metadata: ChannelMetadata) -> None:
        return None

    def initial_state(self, metadata: ChannelMetadata) -> int:
        return 0

    def fold(self, state: Any, envelope: Envelope) -> int:
        return int(state) + 1

    def validate_send(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> None:
        return None

    def on_accepted(self, metadata: ChannelMetadata, state: Any, envelope: Envelope) -> AdapterResult:
        return AdapterResult()

    def expected_next(self, metadata: ChannelMetadata, state: Any) -> ExpectedTurn | None:
        return None

    def default_view(self, metadata: ChannelMetadata, participant_id: str) -> ViewPolicy:
        return FullTranscript()

    def turn_input(self, envelope: Envelope) -> str | None:
        return envelope.text

    def reply_envelope(
        self, metadata: ChannelMetadata, state: Any, sender_id: str, reply: AgentReply
    ) -> Envelope | None:
        return None


class EchoV2(EchoAdapter):
    manifest = ChannelManifest(type="echo", version=2)


def test_builtin_types() -> None:
    registry = AdapterRegistry()
    assert registry.types() == ["broadcast", "consulting", "conversation", "discussion", "workflow"]
    assert isinstance(registry.get("broadcast"), BroadcastAdapter)
    assert isinstance(registry.get("consulting"), ConsultingAdapter)
    assert isinstance(registry.get("conversation"), ConversationAdapter)
    assert isinstance(registry.get("discussion"), DiscussionAdapter)
    assert isinstance(registry.get("workflow"), WorkflowAdapter)


def test_builtin_adapters_satisfy_the_protocol() -> None:
    registry = AdapterRegistry()
    for type_ in registry.types():
        adapter = registry.get(type_)
        assert isinstance(adapter, ChannelAdapter)
        assert adapter.manifest.type == type_
        assert adapter.manifest.version == 1


def test_empty_registry() -> None:
    assert AdapterRegistry(builtins=False).types() == []


def test_unknown_type_is_not_found_and_lists_the_known_types() -> None:
    registry = AdapterRegistry()
    with pytest.raises(NotFoundError) as info:
        registry.get("debate")
    assert "unknown channel type 'debate' (version 1)" in info.value.message
    assert "known types: broadcast, consulting, conversation, discussion, workflow" in info.value.message
    assert info.value.reason == "unknown_channel_type"


def test_unknown_version_is_not_found() -> None:
    with pytest.raises(NotFoundError, match=r"unknown channel type 'consulting' \(version 2\)"):
        AdapterRegistry().get("consulting", 2)


def test_duplicate_registration_is_refused() -> None:
    registry = AdapterRegistry()
    original = registry.get("consulting")
    with pytest.raises(UsageError) as info:
        registry.register(ConsultingAdapter())
    assert info.value.message == (
        "channel type 'consulting' version 1 is already registered; pass replace=True to swap it"
    )
    assert registry.get("consulting") is original


def test_replace_swaps_the_adapter() -> None:
    registry = AdapterRegistry()
    replacement = ConsultingAdapter()
    registry.register(replacement, replace=True)
    assert registry.get("consulting") is replacement


def test_custom_adapter_registers_and_is_returned() -> None:
    registry = AdapterRegistry()
    echo = EchoAdapter()
    assert isinstance(echo, ChannelAdapter)
    registry.register(echo)
    assert registry.get("echo") is echo
    assert registry.types() == ["broadcast", "consulting", "conversation", "discussion", "echo", "workflow"]


def test_custom_adapter_runs_a_channel() -> None:
    echo = EchoAdapter()
    channel = Channel(echo, make_metadata(echo, ["a", "b", "c"]))
    for sender in ("c", "a", "c"):
        assert channel.send(sender) == AdapterResult()
    assert channel.state == 3


def test_versions_of_one_type_live_side_by_side() -> None:
    registry = AdapterRegistry(builtins=False)
    v1, v2 = EchoAdapter(), EchoV2()
    registry.register(v1)
    registry.register(v2)
    assert registry.get("echo") is v1
    assert registry.get("echo", 2) is v2
    assert registry.types() == ["echo"]


class MissingMethods:
    manifest = ChannelManifest(type="half")

    def fold(self, state: Any, envelope: Envelope) -> Any:
        return state


@pytest.mark.parametrize(
    "thing",
    [object(), "consulting", MissingMethods(), None],
    ids=["object", "str", "missing-methods", "None"],
)
def test_registering_a_non_adapter_is_a_usage_error(thing: Any) -> None:
    registry = AdapterRegistry()
    with pytest.raises(UsageError) as info:
        registry.register(thing)
    assert info.value.message.startswith(f"{type(thing).__name__} is not a ChannelAdapter")
    assert "validate_send" in info.value.message


def test_registering_the_class_instead_of_an_instance_is_a_usage_error() -> None:
    # A common slip: register(EchoAdapter) for register(EchoAdapter()). The class has every
    # attribute the protocol names, so isinstance() passes; the hub would later call unbound methods.
    registry = AdapterRegistry(builtins=False)
    with pytest.raises(UsageError, match="EchoAdapter"):
        registry.register(EchoAdapter)  # type: ignore[arg-type]
    assert registry.types() == []
