"""A nack redelivers with backoff until an ack, or dead-letters after ``max_delivery_attempts``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hubbub import EV_TEXT, Envelope, FunctionAgent, Hub, HubClient, HubListener, LocalLink, UsageError
from hubbub.agents.base import Turn
from tests.conftest import TIME_UNIT
from tests.hub._waiting import audit_records, wait_until

BACKOFF = (0.01 * TIME_UNIT, 0.04 * TIME_UNIT)


def flaky(fail_times: int) -> tuple[Callable[[Turn], str], list[str]]:
    """An agent function that raises on its first ``fail_times`` turns, then answers."""
    prompts: list[str] = []

    def answer(turn: Turn) -> str:
        prompts.append(turn.prompt)
        if len(prompts) <= fail_times:
            raise RuntimeError(f"failure {len(prompts)}")
        return "42"

    return answer, prompts


class DispatchFailures(HubListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def on_dispatch_failed(self, envelope: Envelope, recipient_id: str, reason: str) -> None:
        self.seen.append((envelope.envelope_id, recipient_id, reason))


def test_backoff_doubles_up_to_the_cap() -> None:
    hub = Hub(nack_backoff=(0.5, 3.0))
    assert [hub.redelivery.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    with pytest.raises(UsageError):
        Hub(nack_backoff=(0.0, 1.0))
    with pytest.raises(UsageError):
        Hub(max_delivery_attempts=0)


async def test_nacked_turn_is_redelivered_and_answered_once() -> None:
    async with Hub(nack_backoff=BACKOFF) as hub, HubClient(LocalLink(hub)) as client:
        fn, prompts = flaky(2)
        alice = await client.register(name="alice", handle_turns=False)
        bob = await client.register(FunctionAgent(fn, name="bob"))
        channel = await alice.open("consulting", "bob")
        await channel.send("the answer?")
        final = await channel.wait_closed(timeout=5 * TIME_UNIT)
        assert final.close_reason == "consulting_complete"
        assert prompts == ["the answer?"] * 3
        texts = [e for e in await hub.read_wal(channel.id) if e.event_type == EV_TEXT]
        assert [(e.sender_id, e.text) for e in texts] == [
            (alice.agent_id, "the answer?"),
            (bob.agent_id, "42"),
        ]
        failed = await audit_records(hub, "turn_failed", count=2, agent_id=bob.agent_id)
        assert [r.reason for r in failed] == ["RuntimeError('failure 1')", "RuntimeError('failure 2')"]
        assert await hub.audit.query(kind="dead_letter") == []
        await wait_until(lambda: len(hub.redelivery) == 0, what="attempt counters dropped on ack")


async def test_dead_letter_after_max_attempts() -> None:
    failures = DispatchFailures()
    async with (
        Hub(nack_backoff=BACKOFF, max_delivery_attempts=3) as hub,
        HubClient(LocalLink(hub)) as client,
    ):
        hub.register_listener(failures)
        fn, prompts = flaky(1000)
        alice = await client.register(name="alice", handle_turns=False)
        bob = await client.register(FunctionAgent(fn, name="bob"))
        channel = await alice.open("consulting", "bob")
        question = await channel.send("the answer?")
        [record] = await audit_records(hub, "dead_letter")
        assert (record.kind, record.agent_id, record.channel_id, record.reason, record.data) == (
            "dead_letter",
            bob.agent_id,
            channel.id,
            "RuntimeError('failure 3')",
            {"envelope_id": question, "attempts": 3},
        )
        await wait_until(lambda: bool(failures.seen), what="on_dispatch_failed")
        assert failures.seen == [
            (question, bob.agent_id, "dead-lettered after 3 nacks: RuntimeError('failure 3')")
        ]
        # No fourth delivery is coming: nothing is scheduled and no counter is left.
        assert not hub.redelivery.scheduled(bob.agent_id, question)
        assert prompts == ["the answer?"] * 3
        assert len(hub.redelivery) == 0
        assert await hub.replay(bob.agent_id) == 0
        assert len(await hub.audit.query(kind="dead_letter")) == 1


async def test_ack_of_the_envelope_cancels_redelivery() -> None:
    backoff = (0.3 * TIME_UNIT, 0.3 * TIME_UNIT)
    async with Hub(nack_backoff=backoff) as hub, HubClient(LocalLink(hub)) as client:
        fn, prompts = flaky(1)
        alice = await client.register(name="alice", handle_turns=False)
        bob = await client.register(FunctionAgent(fn, name="bob"))
        channel = await alice.open("consulting", "bob")
        question = await channel.send("the answer?")
        await audit_records(hub, "turn_failed", agent_id=bob.agent_id)
        assert hub.redelivery.attempts == {(bob.agent_id, question): 1}
        assert hub.redelivery.scheduled(bob.agent_id, question)
        await client.receipt(await _envelope(hub, channel.id, question), "ack", bob.agent_id)
        assert hub.redelivery.attempts == {}
        assert not hub.redelivery.scheduled(bob.agent_id, question)  # the ack cancelled it
        assert prompts == ["the answer?"]


async def test_ack_of_a_later_envelope_cancels_redelivery() -> None:
    backoff = (0.3 * TIME_UNIT, 0.3 * TIME_UNIT)
    async with Hub(nack_backoff=backoff) as hub, HubClient(LocalLink(hub)) as client:
        alice = await client.register(name="alice", handle_turns=False)
        bob = await client.register(name="bob", handle_turns=False)
        seen: list[str] = []

        @bob.on_envelope
        def first_fails(envelope: Envelope) -> None:
            if envelope.event_type == EV_TEXT:
                seen.append(envelope.text)
                if envelope.text == "one":
                    raise RuntimeError("cannot")

        channel = await alice.open("conversation", "bob")
        first = await channel.send("one")
        await audit_records(hub, "turn_failed", agent_id=bob.agent_id)
        assert hub.redelivery.attempts == {(bob.agent_id, first): 1}
        assert hub.redelivery.scheduled(bob.agent_id, first)
        second = await channel.send("two")
        await wait_until(lambda: hub.delivery.cursor(bob.agent_id, channel.id) == second, what="ack of two")
        assert hub.redelivery.attempts == {}
        assert not hub.redelivery.scheduled(bob.agent_id, first)  # the later ack cancelled it
        assert seen == ["one", "two"]


async def _envelope(hub: Hub, channel_id: str, envelope_id: str) -> Envelope:
    envelope = await hub.store.get_envelope(channel_id, envelope_id)
    assert envelope is not None
    return envelope
