"""A lane drops a copy of an envelope it still has queued and recognises one it already did,
however many it processed before an ack got through."""

from __future__ import annotations

from hubbub import Envelope
from hubbub.client._lane import Lane


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


def envelope_id(n: int) -> str:
    return f"e{n:05d}"


def test_everything_processed_is_recognised_until_an_ack_covers_it() -> None:
    lane = Lane()
    batch = [Envelope(channel_id="c", sender_id="a", envelope_id=envelope_id(n)) for n in range(5000)]
    for e in batch:  # the link is down: no ack gets through
        lane.mark_done(e)
    assert lane.owes_ack
    assert lane.high is batch[-1]
    assert all(lane.seen(e) for e in batch)  # a replay of all of them runs nothing again
    lane.acked_to(envelope_id(4000))
    assert len(lane.done) == 999  # what the ack covers is forgotten...
    assert lane.seen(batch[10])  # ...and still recognised: the hub never sends it again
    assert lane.owes_ack
    lane.acked_to(envelope_id(4999))
    assert not lane.owes_ack
    assert not lane.done


def test_a_copy_of_what_an_ack_covered_means_that_ack_must_go_again() -> None:
    lane = Lane()
    first = Envelope(channel_id="c", sender_id="a", envelope_id=envelope_id(1))
    lane.mark_done(first)
    lane.acked_to(first.envelope_id)  # sent, and (the lane believed) taken
    assert not lane.owes_ack
    assert lane.seen(first)
    lane.mark_done(first)  # the hub sent it again: its cursor is behind
    assert lane.owes_ack
    assert lane.high is first
    lane.acked_to(first.envelope_id)
    assert not lane.owes_ack


def test_a_lane_for_copies_of_an_ended_channel_only_acks() -> None:
    closing = Envelope(channel_id="c", sender_id="a", envelope_id=envelope_id(9))
    lane = Lane(closing)
    assert lane.ended
    assert lane.seen(Envelope(channel_id="c", sender_id="a", envelope_id=envelope_id(3)))
    assert not lane.owes_ack
