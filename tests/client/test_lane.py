"""A lane drops a copy of an envelope it still has queued and recognises one it already did."""

from __future__ import annotations

from hubbub import Envelope
from hubbub.client._lane import DONE_MEMORY, Lane


def envelope(n: int) -> Envelope:
    return Envelope(channel_id="c", sender_id="a", envelope_id=f"e{n}")


def test_a_queued_copy_is_dropped() -> None:
    lane = Lane()
    for n in (1, 2, 1, 2, 3):
        lane.push(envelope(n))
    assert [lane.pop().envelope_id for _ in range(len(lane.items))] == ["e1", "e2", "e3"]


def test_a_copy_of_a_processed_envelope_is_recognised_but_a_nacked_one_is_not() -> None:
    lane = Lane()
    lane.push(envelope(1))
    lane.push(envelope(2))
    lane.mark_done(lane.pop())  # e1 processed
    lane.pop()  # e2 failed: nacked, never marked
    lane.push(envelope(1))
    lane.push(envelope(2))
    assert [lane.seen(lane.pop()) for _ in range(2)] == [True, False]


def test_the_memory_of_processed_envelopes_is_bounded() -> None:
    lane = Lane()
    for n in range(DONE_MEMORY + 1):
        lane.mark_done(envelope(n))
    assert len(lane.done) == DONE_MEMORY
    assert not lane.seen(envelope(0))
    assert lane.seen(envelope(DONE_MEMORY))
