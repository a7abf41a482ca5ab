"""Every built-in adapter's state survives a snapshot: encode, decode, fold on, same result."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from hubbub.adapters import ConsultingAdapter, ConversationAdapter, DiscussionAdapter, WorkflowAdapter
from hubbub.adapters.base import ChannelAdapter
from hubbub.adapters.transitions import TransitionGraph

from ._channel import Channel, make_metadata

GRAPH = TransitionGraph.round_robin(["a", "b", "c"], max_turns=9).to_dict()
CASES: list[tuple[ChannelAdapter, list[str], dict[str, Any], list[str]]] = [
    (ConsultingAdapter(), ["a", "b"], {}, ["a"]),
    (ConversationAdapter(), ["a", "b"], {}, ["a", "b", "b"]),
    (DiscussionAdapter(), ["a", "b", "c"], {}, ["a", "b", "c", "a"]),
    (WorkflowAdapter(), ["a", "b", "c"], {"graph": GRAPH, "context_vars": {"k": 1}}, ["a", "b"]),
]


@pytest.mark.parametrize(("adapter", "agents", "knobs", "speakers"), CASES, ids=lambda c: type(c).__name__)
def test_state_round_trips_and_folds_on_identically(
    adapter: ChannelAdapter, agents: list[str], knobs: dict[str, Any], speakers: list[str]
) -> None:
    channel = Channel(adapter, make_metadata(adapter, agents, knobs=knobs))
    for speaker in speakers:
        channel.send(speaker, f"from {speaker}")
    state_type = adapter.state_type  # type: ignore[attr-defined]
    restored = msgspec.json.decode(msgspec.json.encode(channel.state), type=state_type)
    assert restored == channel.state
    nxt = channel.expected()
    if nxt is not None:
        following = channel.wal[-1]
        follow = msgspec.structs.replace(following, sender_id=nxt[0], envelope_id="f" * 32)
        assert adapter.fold(restored, follow) == adapter.fold(channel.state, follow)
