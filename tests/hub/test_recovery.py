"""A hub on SQLite resumes exactly after a restart, including from the states a crash can leave.

Crash states are made by hand: the WAL cut after some envelope (as if the commits
after it were lost) with the channel record and snapshot as they could be then.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hubbub import (
    EV_CHANNEL_CLOSED,
    EV_CHANNEL_INVITE_ACK,
    EV_CHANNEL_INVITE_REJECT,
    EV_CHANNEL_OPENED,
    EV_TEXT,
    AccessBlock,
    AccessDeniedError,
    ChannelClosedError,
    ChannelMetadata,
    ChannelState,
    ConversationAdapter,
    Envelope,
    FunctionAgent,
    Hub,
    HubClient,
    InboxBlock,
    InboxFull,
    LimitsBlock,
    LocalLink,
    Passport,
    Resume,
    Rule,
    SqliteStore,
    UsageError,
)
from hubbub.hub.recovery import DROP_PREFIX
from hubbub.hub.snapshots import SNAPSHOT_PREFIX
from tests.conftest import TIME_UNIT
from tests.hub._waiting import audit_records, wait_until


class Counted(ConversationAdapter):
    """A conversation that counts its folds."""

    manifest = msgspec.structs.replace(ConversationAdapter.manifest, type="counted", expectations=[])
    folds = 0

    def fold(self, state: Any, envelope: Envelope) -> Any:
        Counted.folds += 1
        return super().fold(state, envelope)


class Stateless(Counted):
    """The same, without ``state_type``: a restart must refold it from the start."""

    manifest = msgspec.structs.replace(Counted.manifest, type="stateless")
    state_type = None


async def started(path: Path, **options: Any) -> Hub:
    options.setdefault("invite_ack_timeout", 5 * TIME_UNIT)
    hub = Hub(await SqliteStore.open(path), **options)
    hub.register_adapter(Counted())
    hub.register_adapter(Stateless())
    return await hub.start()


async def settled(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


async def say(hub: Hub, channel_id: str, sender: str, text: str) -> str:
    envelope = Envelope(channel_id=channel_id, event_data={"text": text})
    return await hub.post_envelope(envelope, sender_id=hub.get_agent(sender).agent_id)


async def crash_state(path: Path, channel_id: str, keep_through: str, metadata: ChannelMetadata) -> None:
    """As if the crash lost every commit after ``keep_through``: the WAL cut there, the record
    ``metadata`` as last stored, no snapshot."""
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM wal WHERE channel_id = ? AND envelope_id > ?", (channel_id, keep_through))
        length = conn.execute("SELECT count(*) FROM wal WHERE channel_id = ?", (channel_id,)).fetchone()[0]
        conn.execute(
            "UPDATE wal_channels SET length = ?, last_id = ? WHERE channel_id = ?",
            (length, keep_through, channel_id),
        )
    store = await SqliteStore.open(path)
    await store.put_channel(metadata)
    await settled(store.delete_kv(SNAPSHOT_PREFIX + channel_id))
    await store.aclose()


def as_created(meta: ChannelMetadata) -> ChannelMetadata:
    invitees = [p for p in meta.participant_ids() if p != meta.creator_id]
    return msgspec.structs.replace(
        meta,
        state=ChannelState.PENDING,
        pending_acks=invitees,
        rejected_by=[],
        close_reason="",
        closed_at=None,
    )


async def two_agents(hub: Hub, client: HubClient) -> None:
    await client.register(name="alice")
    await client.register(name="bob")


# the lifecycle a crash can leave behind the WAL


@pytest.mark.parametrize("snapshot", [True, False], ids=["close-snapshot", "no-snapshot"])
async def test_a_record_behind_the_wal_is_rederived(tmp_path: Path, snapshot: bool) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        meta = await hub.create_channel(hub.get_agent("alice").agent_id or "", "conversation", ["bob"])
        active = msgspec.structs.replace(meta)
        await say(hub, meta.channel_id, "alice", "hello")
        closed = await hub.close_channel(meta.channel_id, "done")
        closing = (await hub.read_wal(meta.channel_id))[-1]
    await hub.aclose()
    assert closing.event_type == EV_CHANNEL_CLOSED
    assert closed.closed_at == closing.created_at  # the record takes its time from the envelope
    store = await SqliteStore.open(path)
    await store.put_channel(active)  # the crash came before the closed record was written
    if not snapshot:
        await settled(store.delete_kv(SNAPSHOT_PREFIX + meta.channel_id))
    await store.aclose()

    again = await started(path)
    try:
        assert again.get_channel(meta.channel_id) == closed
        assert (await again.store.load_channels())[0] == closed
        with pytest.raises(ChannelClosedError):
            await say(again, meta.channel_id, "alice", "still there?")
    finally:
        await again.aclose()


async def test_every_ack_without_opened_opens_the_channel_at_start(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        meta = await hub.create_channel(hub.get_agent("alice").agent_id or "", "conversation", ["bob"])
        wal = await hub.read_wal(meta.channel_id)
    await hub.aclose()
    ack = next(e for e in wal if e.event_type == EV_CHANNEL_INVITE_ACK)
    await crash_state(path, meta.channel_id, ack.envelope_id, as_created(meta))

    again = await started(path)
    try:
        record = again.get_channel(meta.channel_id)
        assert (record.state, record.pending_acks) == (ChannelState.ACTIVE, [])
        after = await again.read_wal(meta.channel_id, since=ack.envelope_id)
        assert [e.event_type for e in after] == [EV_CHANNEL_OPENED]
        assert (await again.store.load_channels())[0] == record
        await say(again, meta.channel_id, "alice", "works")
    finally:
        await again.aclose()


async def test_a_reject_without_closed_closes_the_channel_at_start(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await client.register(name="alice")
        await client.register(name="bob", auto_answer_invites=False)
        bob_id = hub.get_agent("bob").agent_id or ""

        async def reject(invite: Envelope) -> None:
            answer = Envelope(channel_id=invite.channel_id, event_type=EV_CHANNEL_INVITE_REJECT)
            await hub.post_envelope(answer, sender_id=bob_id)

        client._agents[bob_id].on_envelope(reject)
        with pytest.raises(AccessDeniedError, match="rejected"):
            await hub.create_channel(hub.get_agent("alice").agent_id or "", "conversation", ["bob"])
        [meta] = hub.list_channels()
        wal = await hub.read_wal(meta.channel_id)
    await hub.aclose()
    rejected = next(e for e in wal if e.event_type == EV_CHANNEL_INVITE_REJECT)
    await crash_state(path, meta.channel_id, rejected.envelope_id, as_created(meta))

    again = await started(path)
    try:
        record = again.get_channel(meta.channel_id)
        assert (record.state, record.close_reason, record.rejected_by) == (
            ChannelState.CLOSED,
            "invite_rejected",
            [bob_id],
        )
        [closing] = await again.read_wal(meta.channel_id, since=rejected.envelope_id)
        assert (closing.event_type, closing.created_at) == (EV_CHANNEL_CLOSED, record.closed_at)
    finally:
        await again.aclose()


async def test_an_auto_close_cut_off_by_the_crash_happens_at_start(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        meta = await hub.create_channel(hub.get_agent("alice").agent_id or "", "consulting", ["bob"])
        active = msgspec.structs.replace(meta)
        await say(hub, meta.channel_id, "alice", "2+2?")
        answer = await say(hub, meta.channel_id, "bob", "4")
        assert hub.get_channel(meta.channel_id).state is ChannelState.CLOSED
    await hub.aclose()
    await crash_state(path, meta.channel_id, answer, active)

    again = await started(path)
    try:
        record = again.get_channel(meta.channel_id)
        assert (record.state, record.close_reason) == (ChannelState.CLOSED, "consulting_complete")
        [closing] = await again.read_wal(meta.channel_id, since=answer)
        assert closing.event_type == EV_CHANNEL_CLOSED
    finally:
        await again.aclose()


# snapshots


async def test_restart_folds_only_the_wal_after_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path, snapshot_every=10)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        alice = hub.get_agent("alice").agent_id or ""
        channels = [
            (await hub.create_channel(alice, kind, ["bob"])).channel_id for kind in ("counted", "stateless")
        ]
        for n in range(25):
            for channel_id in channels:
                await say(hub, channel_id, "alice" if n % 2 else "bob", f"#{n}")
        states = [hub.channels.get(c).state for c in channels]
        lengths = [len(await hub.read_wal(c)) for c in channels]
    await hub.aclose()

    Counted.folds = 0
    again = await started(path, snapshot_every=10)
    try:
        assert [again.channels.get(c).state for c in channels] == states
        assert [again.channels.get(c).texts for c in channels] == [25, 25]
        # Invite, ack, opened, 25 texts; snapshots after the 10th and the 20th envelope.
        assert lengths == [28, 28]
        assert Counted.folds == (28 - 20) + 28
        await say(again, channels[0], "alice", "on we go")
        assert again.channels.get(channels[0]).state.turns == 26
    finally:
        await again.aclose()


async def test_an_unreadable_snapshot_means_a_full_refold_not_wrong_state(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path, snapshot_every=5)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        meta = await hub.create_channel(hub.get_agent("alice").agent_id or "", "counted", ["bob"])
        for n in range(12):
            await say(hub, meta.channel_id, "bob", f"#{n}")
        state = hub.channels.get(meta.channel_id).state
    await hub.aclose()
    store = await SqliteStore.open(path)
    assert SNAPSHOT_PREFIX + meta.channel_id in await store.scan_kv(SNAPSHOT_PREFIX)
    await settled(store.put_kv(SNAPSHOT_PREFIX + meta.channel_id, b"\xc1 not msgpack"))
    await store.aclose()

    Counted.folds = 0
    again = await started(path, snapshot_every=5)
    try:
        assert again.channels.get(meta.channel_id).state == state
        assert Counted.folds == 15  # invite, ack, opened and 12 texts
    finally:
        await again.aclose()


async def test_a_closed_channel_is_not_folded_at_all(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        meta = await hub.create_channel(hub.get_agent("alice").agent_id or "", "counted", ["bob"])
        await say(hub, meta.channel_id, "bob", "one")
        await hub.close_channel(meta.channel_id)
        state = hub.channels.get(meta.channel_id).state
    await hub.aclose()

    Counted.folds = 0
    again = await started(path)
    try:
        assert again.channels.get(meta.channel_id).state == state  # from the closing snapshot
        assert Counted.folds == 0
    finally:
        await again.aclose()


# inboxes, expectations, tasks


async def test_inbox_counts_and_dropped_deliveries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    full = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=2)))
    dropping = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=1, overflow="drop_newest")))
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await client.register(name="alice")
        bob = await client.register(name="bob", rule=full)
        carol = await client.register(name="carol", rule=dropping)
        alice = hub.get_agent("alice").agent_id or ""
        to_bob = (await hub.create_channel(alice, "conversation", ["bob"])).channel_id
        to_carol = (await hub.create_channel(alice, "conversation", ["carol"])).channel_id
        for agent, channel_id in ((bob, to_bob), (carol, to_carol)):
            last = (await hub.read_wal(channel_id))[-1].envelope_id
            await wait_until(lambda a=agent, c=channel_id, e=last: hub.delivery.cursor(a.agent_id, c) == e)
            await agent.aclose()  # from now on nobody acks for bob and carol
        await say(hub, to_bob, "alice", "one")
        await say(hub, to_bob, "alice", "two")
        with pytest.raises(InboxFull):
            await say(hub, to_bob, "alice", "three")
        kept = await say(hub, to_carol, "alice", "kept")
        await say(hub, to_carol, "alice", "dropped")
    await hub.aclose()

    again = await started(path)
    try:
        assert again.governance.inbox.count(bob.agent_id) == 2
        assert again.governance.inbox.count(carol.agent_id) == 1
        with pytest.raises(InboxFull):
            await say(again, to_bob, "alice", "three")
        async with HubClient(LocalLink(again)) as client:
            carol_again = await client.attach(None, "carol", since_envelope_id=None)
            got: list[str] = []
            carol_again.on_envelope(lambda e: got.append(e.envelope_id))
            assert await carol_again.replay() == 1
            await wait_until(lambda: got == [kept])
            await wait_until(lambda: again.governance.inbox.count(carol.agent_id) == 0)
            bob_again = await client.attach(None, "bob")
            await wait_until(lambda: again.governance.inbox.count(bob.agent_id) == 0)
            await say(again, to_bob, "alice", "three")
            await bob_again.aclose()
            await carol_again.aclose()
    finally:
        await again.aclose()


async def test_inbox_counts_are_exact_when_snapshots_cover_pending_envelopes(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    deep = Rule(limits=LimitsBlock(inbox=InboxBlock(max_pending=100)))
    hub = await started(path, snapshot_every=4)
    async with HubClient(LocalLink(hub)) as client:
        await client.register(name="alice")
        bob = await client.register(name="bob", rule=deep)
        meta = await hub.create_channel(hub.get_agent("alice").agent_id or "", "conversation", ["bob"])
        last = (await hub.read_wal(meta.channel_id))[-1].envelope_id
        await wait_until(lambda: hub.delivery.cursor(bob.agent_id, meta.channel_id) == last)
        await bob.aclose()
        # Concurrent posts: snapshots are taken while earlier ones are still on their way.
        sent = await asyncio.gather(*(say(hub, meta.channel_id, "alice", f"#{n}") for n in range(10)))
        sent += [await say(hub, meta.channel_id, "alice", "last")]
    await hub.aclose()

    again = await started(path, snapshot_every=4)
    try:
        assert SNAPSHOT_PREFIX + meta.channel_id in await again.store.scan_kv(SNAPSHOT_PREFIX)
        assert again.governance.inbox.count(bob.agent_id) == 11
        assert again.governance.inbox.count(hub.get_agent("alice").agent_id or "") == 0
        async with HubClient(LocalLink(again)) as client:
            bob_again = await client.attach(None, "bob", since_envelope_id=None)
            got: list[str] = []
            bob_again.on_envelope(lambda e: got.append(e.envelope_id))
            assert await bob_again.replay() == 11
            await wait_until(lambda: sorted(got) == sorted(sent))
            await wait_until(lambda: again.governance.inbox.count(bob.agent_id) == 0)
            await bob_again.aclose()
    finally:
        await again.aclose()


def reply_within(seconds: float) -> dict[str, Any]:
    return {
        "expectations": [{"name": "reply_within", "on_violation": "audit", "params": {"seconds": seconds}}]
    }


async def test_an_expectation_due_across_a_restart_fires_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        alice = hub.get_agent("alice").agent_id or ""
        meta = await hub.create_channel(alice, "conversation", ["bob"], knobs=reply_within(0.3 * TIME_UNIT))
        unanswered = await say(hub, meta.channel_id, "alice", "anyone?")
    await hub.aclose()  # before it was due

    def about(text_id: str) -> Any:
        return lambda r: r.data.get("trigger_envelope_id") == text_id

    for restart in range(2):
        again = await started(path)
        try:
            if restart == 0:  # the restored watch still knows the unanswered text
                await audit_records(again, "expectation_violated", where=about(unanswered))
            # A later text's violation fires after any the restart still owed.
            later = await say(again, meta.channel_id, "alice", f"hello? {restart}")
            await audit_records(again, "expectation_violated", where=about(later))
            assert len(await again.audit.query(kind="expectation_violated")) == 2 + restart
        finally:
            await again.aclose()


async def test_open_tasks_and_their_ttls_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    ttl = Rule(limits=LimitsBlock(task_ttl_default=f"{round(500 * TIME_UNIT)}ms"))
    hub = await started(path)
    ada = (await hub.register(Passport(name="ada"), Resume(), rule=ttl)).agent_id or ""
    await hub.record_task_event(ada, "open", "started", capabilities=["math"])
    await hub.record_task_event(ada, "done", "started", capabilities=["math"])
    await hub.record_task_event(ada, "done", "succeeded", duration_ms=5)
    await hub.aclose()

    again = await started(path)
    try:
        assert again.tasks.open_tasks(ada) == ["open"]
        await wait_until(lambda: again.get_resume(ada).observed["math"].expired == 1)
        assert again.tasks.open_tasks(ada) == []
        assert again.get_resume(ada).observed["math"].completed == 1
    finally:
        await again.aclose()
    third = await started(path)
    try:
        assert third.tasks.open_tasks(ada) == []
        assert await third.store.scan_kv("task/") == {}
    finally:
        await third.aclose()


async def test_posts_after_a_restart_get_later_ids(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        meta = await hub.create_channel(hub.get_agent("alice").agent_id or "", "conversation", ["bob"])
        first = await say(hub, meta.channel_id, "alice", "one")
    await hub.aclose()
    again = await started(path)
    try:
        assert await say(again, meta.channel_id, "alice", "two") > first
        assert [e.event_type for e in await again.read_wal(meta.channel_id)][-2:] == [EV_TEXT, EV_TEXT]
    finally:
        await again.aclose()


def test_snapshot_every_must_be_a_positive_int() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UsageError, match="snapshot_every"):
            Hub(snapshot_every=bad)  # type: ignore[arg-type]


async def test_the_closing_snapshot_counts_the_reply_that_closed_the_channel(tmp_path: Path) -> None:
    """The reply that auto-closes a consulting channel is still on its way when the closing
    snapshot is taken: the snapshot must leave it pending for the asker, or a restart forgets it."""
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        asker = await client.register(name="asker")
        await client.register(FunctionAgent(lambda turn: "an answer", name="expert"))
        channel = await asker.open("consulting", "expert")
        last = (await hub.read_wal(channel.id))[-1].envelope_id
        await wait_until(lambda: hub.delivery.cursor(asker.agent_id, channel.id) == last)
        await asker.aclose()  # the asker is gone: the reply stays pending for it
        await say(hub, channel.id, "asker", "a question")
        await wait_until(lambda: hub.channels.get(channel.id).metadata.is_terminal())
        # Closed as the reply was accepted; the reply counts once it is durable and delivered.
        await wait_until(lambda: hub.governance.inbox.count(asker.agent_id) == 1)
    await hub.aclose()

    again = await started(path)
    try:
        assert again.governance.inbox.count(asker.agent_id) == 1
    finally:
        await again.aclose()


class ReadCounting(SqliteStore):
    """Counts the WAL reads a start-up makes, per channel."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: dict[str, int] = {}

    async def read_wal(self, channel_id: str, **bounds: Any) -> list[Envelope]:
        self.reads[channel_id] = self.reads.get(channel_id, 0) + 1
        return await super().read_wal(channel_id, **bounds)

    async def read_wal_tail(self, channel_id: str, limit: int, *, until: str | None = None) -> list[Envelope]:
        self.reads[channel_id] = self.reads.get(channel_id, 0) + 1
        return await super().read_wal_tail(channel_id, limit, until=until)


async def test_a_closed_channel_everyone_acked_costs_no_read_at_start(tmp_path: Path) -> None:
    """Start-up reads a closed channel's WAL only for a participant that has some of it pending."""
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        asker = await client.register(name="asker", handle_turns=False)
        expert = await client.register(FunctionAgent(lambda turn: "an answer", name="expert"))
        done = await asker.open("consulting", "expert", first="a question")
        await done.wait_closed(timeout=5 * TIME_UNIT)
        last = (await hub.read_wal(done.id))[-1].envelope_id
        await wait_until(
            lambda: all(hub.delivery.cursor(a.agent_id, done.id) == last for a in (asker, expert))
        )
    await hub.aclose()

    store = ReadCounting(path)
    again = Hub(store, invite_ack_timeout=5 * TIME_UNIT)
    await again.start()
    try:
        assert store.reads.get(done.id, 0) == 0
        assert again.channels.get(done.id).metadata.state is ChannelState.CLOSED
        assert again.governance.inbox.count(asker.agent_id) == 0
    finally:
        await again.aclose()


async def test_a_dropped_delivery_of_a_retired_channel_is_forgotten_at_start(tmp_path: Path) -> None:
    """A retired channel's cursors are deleted, so its dropped-delivery records could never be
    matched against them again: start-up deletes those of channels it did not load (the ones of
    loaded channels stay: see the test above)."""
    path = tmp_path / "hub.db"
    hub = await started(path)
    async with HubClient(LocalLink(hub)) as client:
        carol = await client.register(name="carol")
    key = f"{DROP_PREFIX}{carol.agent_id}/a-retired-channel/e1"
    await settled(hub.store.put_kv(key, b""))
    await hub.aclose()

    again = await started(path)
    try:
        assert (carol.agent_id, "e1") not in again.governance.inbox.dropped
        assert await again.store.scan_kv(DROP_PREFIX) == {}
    finally:
        await again.aclose()


async def test_resumes_rules_and_skills_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    strict = Rule(access=AccessBlock(inbound_from=["alice"]))
    hub = await started(path)
    ada = await hub.register(
        Passport(name="ada"), Resume(claimed_capabilities=["math"], summary="sums"), skill_md="# Ada\nadds"
    )
    await hub.register(Passport(name="alice"))
    await hub.register(Passport(name="mallory"))
    await hub.set_rule(ada.agent_id or "", strict)
    await hub.set_resume(ada.agent_id or "", Resume(claimed_capabilities=["math", "logic"], summary="thinks"))
    before = hub.registry.get("ada")
    await hub.aclose()

    again = await started(path)
    try:
        after = again.registry.get("ada")
        assert (after.passport, after.resume, after.rule, after.skill_md) == (
            before.passport,
            before.resume,
            before.rule,
            "# Ada\nadds",
        )
        assert [a.name for a in again.discover("logic")] == ["ada"]
        mallory = again.get_agent("mallory").agent_id or ""
        with pytest.raises(AccessDeniedError, match="inbound_from"):  # the rule still holds
            await again.lifecycle.open(mallory, "conversation", ["ada"])
        alice = again.get_agent("alice").agent_id or ""
        admitted = await again.lifecycle.open(alice, "conversation", ["ada"])
        assert admitted.metadata.state is ChannelState.PENDING
    finally:
        await again.aclose()


async def test_channel_ttls_and_invite_timeouts_resume_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    hub = await started(path, invite_ack_timeout=0.5 * TIME_UNIT)
    async with HubClient(LocalLink(hub)) as client:
        await two_agents(hub, client)
        await hub.register(Passport(name="carol"))  # never connected: nobody answers its invite
        alice = hub.get_agent("alice").agent_id or ""
        short = await hub.create_channel(alice, "conversation", ["bob"], ttl=0.5 * TIME_UNIT)
        record = await hub.lifecycle.open(alice, "conversation", ["carol"])
    await hub.aclose()  # before either was due

    again = await started(path, invite_ack_timeout=0.5 * TIME_UNIT)
    try:
        assert again.get_channel(short.channel_id).state is ChannelState.ACTIVE
        assert again.get_channel(record.id).state is ChannelState.PENDING
        await wait_until(lambda: again.get_channel(short.channel_id).state is ChannelState.EXPIRED)
        await wait_until(lambda: again.get_channel(record.id).state is ChannelState.CLOSED)
        assert again.get_channel(short.channel_id).close_reason == "ttl_expired"
        assert again.get_channel(record.id).close_reason == "invite_timeout"
    finally:
        await again.aclose()
