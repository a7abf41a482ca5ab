"""The task book: mirrored task events, their rules, and the track record they fold into the resume."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from hubbub import (
    AccessDeniedError,
    Hub,
    HubClient,
    LimitsBlock,
    LocalLink,
    NotFoundError,
    ObservedStat,
    Passport,
    ProtocolError,
    Resume,
    Rule,
    UsageError,
)
from hubbub.hub.listeners import HubListener
from hubbub.model import TaskEvent
from hubbub.model.audit import AuditRecord
from hubbub.storage.memory import MemoryStore
from tests.conftest import TIME_UNIT


class Recorder(HubListener):
    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self.audit: list[AuditRecord] = []
        self.changed = asyncio.Event()

    def on_task_event(self, event: TaskEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def on_governance_event(self, record: AuditRecord) -> None:
        if record.kind.startswith("task_"):
            self.audit.append(record)


async def add_agent(hub: Hub, name: str, *claims: str, rule: Rule | None = None) -> str:
    passport = await hub.register(Passport(name=name), Resume(claimed_capabilities=list(claims)), rule=rule)
    assert passport.agent_id is not None
    return passport.agent_id


async def run_task(
    hub: Hub, agent_id: str, task_id: str, kind: str, duration_ms: int, *caps: str
) -> TaskEvent:
    await hub.record_task_event(agent_id, task_id, "started", capabilities=list(caps))
    error = "boom" if kind == "failed" else None
    return await hub.record_task_event(agent_id, task_id, kind, duration_ms=duration_ms, error=error)


# ── folding outcomes into Resume.observed ───────────────────────────────────


async def test_outcomes_fold_into_observed_with_exact_counts_and_p50(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "summarize")
    await run_task(hub, ada, "t1", "succeeded", 30, "summarize")
    await run_task(hub, ada, "t2", "succeeded", 10, "summarize")
    await run_task(hub, ada, "t3", "failed", 5, "summarize")
    await run_task(hub, ada, "t4", "succeeded", 20, "summarize")
    assert hub.get_resume(ada).observed == {
        "summarize": ObservedStat(n=4, completed=3, failed=1, expired=0, p50_latency_ms=20)
    }
    # Even count: the lower middle value (nearest rank), always a real observation.
    await run_task(hub, ada, "t5", "succeeded", 40, "summarize")
    stat = hub.get_resume(ada).observed["summarize"]
    assert (stat.n, stat.completed, stat.failed, stat.p50_latency_ms) == (5, 4, 1, 20)
    assert stat.success_rate == 0.8
    assert hub.tasks.open_tasks(ada) == []


async def test_failures_do_not_enter_the_latency(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "summarize")
    await run_task(hub, ada, "f1", "failed", 1, "summarize")
    assert hub.get_resume(ada).observed["summarize"] == ObservedStat(n=1, failed=1, p50_latency_ms=None)
    await run_task(hub, ada, "ok", "succeeded", 500, "summarize")
    await run_task(hub, ada, "f2", "failed", 2, "summarize")
    assert hub.get_resume(ada).observed["summarize"].p50_latency_ms == 500


async def test_p50_covers_only_the_last_100_successes(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    for i in range(1, 151):
        await run_task(hub, ada, f"t{i}", "succeeded", i, "cap")
    stat = hub.get_resume(ada).observed["cap"]
    assert stat.n == 150
    assert stat.p50_latency_ms == 100  # window holds 51..150


async def test_tags_are_lowercased_deduplicated_and_extended_by_the_result(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "summarize", "translate")
    await hub.record_task_event(ada, "t", "started", capabilities=["Summarize", " summarize ", "translate"])
    event = await hub.record_task_event(
        ada, "t", "succeeded", capabilities=["legal", "translate"], duration_ms=7
    )
    assert event.capabilities == ["summarize", "translate", "legal"]
    observed = hub.get_resume(ada).observed
    assert sorted(observed) == ["legal", "summarize", "translate"]
    assert all(s == ObservedStat(n=1, completed=1, p50_latency_ms=7) for s in observed.values())


async def test_untagged_task_changes_no_stats(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    event = await run_task(hub, ada, "t", "succeeded", 3)
    assert event.capabilities == []
    assert hub.get_resume(ada).observed == {}


async def test_hub_measures_the_duration_when_the_client_sends_none(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    await hub.record_task_event(ada, "t", "started", capabilities=["cap"])
    event = await hub.record_task_event(ada, "t", "succeeded")
    assert isinstance(event.duration_ms, int)
    assert 0 <= event.duration_ms < 5000 * TIME_UNIT
    assert hub.get_resume(ada).observed["cap"].p50_latency_ms == event.duration_ms


async def test_failed_without_error_text_gets_a_default_and_long_errors_are_cut(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    await hub.record_task_event(ada, "a", "started")
    assert (await hub.record_task_event(ada, "a", "failed")).error == "failed without an error message"
    await hub.record_task_event(ada, "b", "started")
    assert (await hub.record_task_event(ada, "b", "failed", error="x" * 5000)).error == "x" * 2000


# ── the track record is the hub's ───────────────────────────────────────────


async def test_set_resume_keeps_the_observed_record(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "summarize")
    await run_task(hub, ada, "t", "succeeded", 12, "summarize")
    forged = {"summarize": ObservedStat(n=100, completed=100, p50_latency_ms=1)}
    await hub.set_resume(ada, Resume(claimed_capabilities=["summarize", "translate"], observed=forged))
    resume = hub.get_resume(ada)
    assert resume.claimed_capabilities == ["summarize", "translate"]
    assert resume.observed == {"summarize": ObservedStat(n=1, completed=1, p50_latency_ms=12)}


async def test_register_starts_without_a_track_record(hub: Hub) -> None:
    forged = {"summarize": ObservedStat(n=100, completed=100)}
    passport = await hub.register(
        Passport(name="faker"), Resume(claimed_capabilities=["summarize"], observed=forged)
    )
    assert passport.agent_id is not None
    assert hub.get_resume(passport.agent_id).observed == {}


async def test_observed_record_is_stored_and_survives_a_restart() -> None:
    store = MemoryStore()
    async with Hub(store) as first:
        ada = await add_agent(first, "ada", "summarize")
        await run_task(first, ada, "t", "succeeded", 42, "summarize")
        stored = {r.passport.name: r.resume.observed for r in await store.load_agents()}
        assert stored == {"ada": {"summarize": ObservedStat(n=1, completed=1, p50_latency_ms=42)}}
    second = Hub(store)
    await second.start()
    try:
        expected = ObservedStat(n=1, completed=1, p50_latency_ms=42)
        assert second.get_resume(ada).observed == {"summarize": expected}
    finally:
        await second.aclose()


async def test_discovery_breaks_equal_success_rates_by_p50_latency(hub: Hub) -> None:
    slow = await add_agent(hub, "aaa-slow", "summarize")
    fast = await add_agent(hub, "zzz-fast", "summarize")
    await run_task(hub, slow, "s", "succeeded", 900, "summarize")
    await run_task(hub, fast, "f", "succeeded", 90, "summarize")
    assert [p.name for p in hub.discover("summarize")] == ["zzz-fast", "aaa-slow"]


# ── transitions and bad input ───────────────────────────────────────────────


async def test_result_for_a_task_never_started(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    with pytest.raises(NotFoundError) as err:
        await hub.record_task_event(ada, "ghost", "succeeded", duration_ms=1)
    assert err.value.reason == "unknown_task"
    assert "ada has no open task 'ghost'" in str(err.value)
    assert hub.get_resume(ada).observed == {}


async def test_a_second_result_is_refused_and_counts_nothing(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    await run_task(hub, ada, "t", "succeeded", 5, "cap")
    with pytest.raises(UsageError) as err:
        await hub.record_task_event(ada, "t", "failed", error="late")
    assert err.value.reason == "task_already_finished"
    assert "task 't' of ada already succeeded" in str(err.value)
    assert hub.get_resume(ada).observed["cap"] == ObservedStat(n=1, completed=1, p50_latency_ms=5)


async def test_an_open_task_id_cannot_be_started_again_but_a_finished_one_can(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    await hub.record_task_event(ada, "t", "started", capabilities=["cap"])
    with pytest.raises(UsageError) as err:
        await hub.record_task_event(ada, "t", "started")
    assert err.value.reason == "task_id_in_use"
    assert "ada already has an open task 't'" in str(err.value)
    await hub.record_task_event(ada, "t", "succeeded", duration_ms=1)
    await run_task(hub, ada, "t", "failed", 1, "cap")
    assert hub.get_resume(ada).observed["cap"] == ObservedStat(n=2, completed=1, failed=1, p50_latency_ms=1)


async def test_max_concurrent_tasks_is_enforced_and_follows_set_rule(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap", rule=Rule(limits=LimitsBlock(max_concurrent_tasks=2)))
    await hub.record_task_event(ada, "a", "started")
    await hub.record_task_event(ada, "b", "started")
    with pytest.raises(AccessDeniedError) as err:
        await hub.record_task_event(ada, "c", "started")
    assert err.value.reason == "max_concurrent_tasks"
    assert err.value.agent_id == ada
    assert "ada already runs 2 tasks" in str(err.value)
    assert "limits.max_concurrent_tasks=2" in str(err.value)
    assert hub.tasks.open_tasks(ada) == ["a", "b"]
    await hub.record_task_event(ada, "a", "succeeded")
    await hub.record_task_event(ada, "c", "started")
    await hub.set_rule(ada, Rule(limits=LimitsBlock(max_concurrent_tasks=0)))
    for i in range(5):
        await hub.record_task_event(ada, f"more{i}", "started")
    assert len(hub.tasks.open_tasks(ada)) == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_id": "", "kind": "started"}, "task_id must be a string of 1 to 200 characters"),
        ({"task_id": "x" * 201, "kind": "started"}, "task_id must be a string of 1 to 200 characters"),
        ({"task_id": "t", "kind": "done"}, "kind must be 'started', 'succeeded' or 'failed', got 'done'"),
        ({"task_id": "t", "kind": "expired"}, "'expired' is decided by the hub"),
        ({"task_id": "t", "kind": "started", "capabilities": "cap"}, "must be a list of strings"),
        ({"task_id": "t", "kind": "started", "capabilities": [""]}, "tags must be 1 to 128 characters"),
        ({"task_id": "t", "kind": "started", "capabilities": [f"c{i}" for i in range(17)]}, "at most 16"),
        ({"task_id": "t", "kind": "started", "duration_ms": -1}, "0 or more, got -1"),
        ({"task_id": "t", "kind": "started", "duration_ms": True}, "0 or more, got True"),
    ],
)
async def test_bad_task_events_are_refused_with_the_field_named(
    hub: Hub, kwargs: dict[str, object], message: str
) -> None:
    ada = await add_agent(hub, "ada", "cap")
    with pytest.raises(UsageError) as err:
        await hub.record_task_event(ada, **kwargs)  # type: ignore[arg-type]
    assert message in str(err.value)
    assert hub.tasks.open_tasks(ada) == []


async def test_task_event_for_an_unknown_agent(hub: Hub) -> None:
    with pytest.raises(NotFoundError):
        await hub.record_task_event("nobody", "t", "started")


# ── expiry, listeners, audit, unregister ────────────────────────────────────


async def test_a_task_open_past_its_ttl_expires_once_and_counts_as_expired(hub: Hub) -> None:
    recorder = Recorder()
    hub.register_listener(recorder)
    ttl = f"{round(50 * TIME_UNIT)}ms"
    ada = await add_agent(hub, "ada", "cap", rule=Rule(limits=LimitsBlock(task_ttl_default=ttl)))
    await hub.record_task_event(ada, "slow", "started", capabilities=["cap"])
    async with asyncio.timeout(5 * TIME_UNIT):
        while not any(e.kind == "expired" for e in recorder.events):
            recorder.changed.clear()
            await recorder.changed.wait()
    expired = recorder.events[-1]
    assert (expired.task_id, expired.capabilities) == ("slow", ["cap"])
    seconds = round(50 * TIME_UNIT) / 1000
    assert expired.error == f"still open after its TTL of {seconds:g}s (limits.task_ttl_default)"
    assert hub.get_resume(ada).observed["cap"] == ObservedStat(n=1, expired=1)
    assert hub.tasks.open_tasks(ada) == []
    with pytest.raises(UsageError, match="already expired"):
        await hub.record_task_event(ada, "slow", "succeeded")


async def test_a_finished_task_does_not_expire_later(hub: Hub) -> None:
    recorder = Recorder()
    hub.register_listener(recorder)
    ttl = f"{round(30 * TIME_UNIT)}ms"
    ada = await add_agent(hub, "ada", "cap", rule=Rule(limits=LimitsBlock(task_ttl_default=ttl)))
    armed = len(hub._deadlines)
    await hub.record_task_event(ada, "quick", "started", capabilities=["cap"])
    assert len(hub._deadlines) == armed + 1
    await hub.record_task_event(ada, "quick", "succeeded", duration_ms=1)
    assert len(hub._deadlines) == armed
    await hub.listeners.flush()
    assert [e.kind for e in recorder.events] == ["started", "succeeded"]


async def test_listeners_and_the_audit_log_see_every_task_event(hub: Hub) -> None:
    recorder = Recorder()
    hub.register_listener(recorder)
    ada = await add_agent(hub, "ada", "cap", rule=Rule(limits=LimitsBlock(max_concurrent_tasks=1)))
    await run_task(hub, ada, "ok", "succeeded", 8, "cap")
    await hub.record_task_event(ada, "bad", "started", capabilities=["cap"])
    with pytest.raises(AccessDeniedError):
        await hub.record_task_event(ada, "third", "started")
    await hub.record_task_event(ada, "bad", "failed", error="model refused", duration_ms=3)
    await hub.listeners.flush()
    assert [(e.task_id, e.kind, e.duration_ms, e.error) for e in recorder.events] == [
        ("ok", "started", None, None),
        ("ok", "succeeded", 8, None),
        ("bad", "started", None, None),
        ("bad", "failed", 3, "model refused"),
    ]
    assert all(e.agent_id == ada and e.capabilities == ["cap"] and e.at for e in recorder.events)
    assert [(r.kind, r.reason, r.data["task_id"]) for r in recorder.audit] == [
        ("task_terminated", "succeeded", "ok"),
        ("task_denied", "max_concurrent_tasks", "third"),
        ("task_terminated", "failed", "bad"),
    ]
    stored = await hub.audit.query(kind="task_terminated", agent_id=ada)
    assert [r.data["task_id"] for r in stored] == ["ok", "bad"]


async def test_unregister_forgets_open_tasks(hub: Hub) -> None:
    ada = await add_agent(hub, "ada", "cap")
    armed = len(hub._deadlines)
    await hub.record_task_event(ada, "t", "started")
    assert len(hub.tasks) == 1
    await hub.unregister(ada)
    assert len(hub.tasks) == 0
    assert len(hub._deadlines) == armed


# ── the task_event op ───────────────────────────────────────────────────────


async def test_task_event_op_acts_only_as_a_bound_agent(hub: Hub, client: HubClient) -> None:
    ada = await client.register(name="ada", handle_turns=False)
    raw = await client.request(
        "task_event", {"agent_id": ada.agent_id, "task_id": "t", "kind": "started", "capabilities": ["cap"]}
    )
    event = msgspec.convert(raw, TaskEvent)  # a record in process, a JSON object over the wire
    assert event == TaskEvent(
        agent_id=ada.agent_id, task_id="t", kind="started", capabilities=["cap"], at=event.at
    )
    async with HubClient(LocalLink(hub)) as other:
        with pytest.raises(AccessDeniedError) as err:
            await other.request("task_event", {"agent_id": ada.agent_id, "task_id": "t", "kind": "succeeded"})
        assert err.value.reason == "not_bound"
    assert hub.tasks.open_tasks(ada.agent_id) == ["t"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"task_id": "t", "kind": "started", "capabilities": "cap"}, "'capabilities' must be a list"),
        ({"task_id": "t", "kind": "succeeded", "duration_ms": "5"}, "'duration_ms' must be a number"),
        ({"task_id": "t", "kind": "failed", "error": 3}, "'error' must be a string"),
        ({"kind": "started"}, "'task_id' must be a non-empty string"),
        ({"task_id": "t"}, "'kind' must be a non-empty string"),
    ],
)
async def test_task_event_op_refuses_malformed_params(
    client: HubClient, params: dict[str, object], message: str
) -> None:
    ada = await client.register(name="ada", handle_turns=False)
    with pytest.raises(ProtocolError, match=message):
        await client.request("task_event", {"agent_id": ada.agent_id, **params})
