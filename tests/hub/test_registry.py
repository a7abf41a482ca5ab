"""The agent directory: lookups by name and id, and ranked discovery."""

from __future__ import annotations

import pytest

from hubbub.errors import NotFoundError, UsageError
from hubbub.hub.registry import Registry
from hubbub.model import ObservedStat, Passport, PassportKind, Resume, Rule
from hubbub.storage.base import AgentRecord


def record(
    name: str,
    *claims: str,
    observed: dict[str, ObservedStat] | None = None,
    kind: PassportKind | None = None,
) -> AgentRecord:
    return AgentRecord(
        passport=Passport(name=name, agent_id=f"id-{name}", kind=kind),
        resume=Resume(claimed_capabilities=list(claims), observed=observed or {}),
        rule=Rule(),
    )


def names(records: list[AgentRecord]) -> list[str]:
    return [r.passport.name for r in records]


@pytest.fixture
def registry() -> Registry:
    return Registry()


# ── lookups ─────────────────────────────────────────────────────────────────


def test_add_then_find_and_get_by_name_and_by_id(registry: Registry) -> None:
    rec = record("translator", "translate")
    registry.add(rec)
    assert len(registry) == 1
    assert registry.find("translator") is rec
    assert registry.find("id-translator") is rec
    assert registry.get("translator") is rec
    assert registry.get("id-translator") is rec
    assert registry.id_for_name("translator") == "id-translator"
    assert registry.name_of("id-translator") == "translator"


def test_unknown_agent(registry: Registry) -> None:
    registry.add(record("translator"))
    assert registry.find("ghost") is None
    assert registry.id_for_name("ghost") is None
    assert registry.name_of("id-ghost") == "id-ghost"
    with pytest.raises(NotFoundError) as info:
        registry.get("ghost")
    assert "'ghost'" in info.value.message
    assert info.value.agent_id == "ghost"
    assert info.value.reason == "unknown_agent"


def test_remove_forgets_name_id_and_capabilities(registry: Registry) -> None:
    registry.add(record("translator", "translate"))
    registry.add(record("writer", "write"))
    removed = registry.remove("id-translator")
    assert removed.passport.name == "translator"
    assert len(registry) == 1
    assert registry.find("translator") is None
    assert registry.find("id-translator") is None
    assert registry.discover("translate") == []
    with pytest.raises(NotFoundError, match="id-translator"):
        registry.remove("id-translator")


def test_re_adding_an_agent_replaces_its_name_and_claims(registry: Registry) -> None:
    registry.add(record("translator", "translate"))
    renamed = AgentRecord(
        passport=Passport(name="polyglot", agent_id="id-translator"),
        resume=Resume(claimed_capabilities=["interpret"]),
        rule=Rule(),
    )
    registry.add(renamed)
    assert len(registry) == 1
    assert registry.find("translator") is None
    assert registry.get("polyglot") is renamed
    assert registry.discover("translate") == []
    assert registry.discover("interpret") == [renamed]


def test_passports(registry: Registry) -> None:
    registry.add(record("a"))
    registry.add(record("b"))
    assert sorted(p.name for p in registry.passports()) == ["a", "b"]
    assert [p.name for p in registry.passports(["id-b", "id-ghost", "id-a"])] == ["b", "a"]


# ── discovery ───────────────────────────────────────────────────────────────


def test_exact_claim_beats_a_keyword_substring_claim(registry: Registry) -> None:
    # The substring claimer has the better record and the earlier name; the exact claim still wins.
    registry.add(
        record("aaa-partial", "legal-translate", observed={"translate": ObservedStat(n=10, completed=10)})
    )
    registry.add(record("zzz-exact", "translate"))
    assert names(registry.discover("translate")) == ["zzz-exact", "aaa-partial"]


def test_among_exact_claimers_higher_success_rate_first(registry: Registry) -> None:
    registry.add(record("poor", "translate", observed={"translate": ObservedStat(n=10, completed=2)}))
    registry.add(record("good", "translate", observed={"translate": ObservedStat(n=10, completed=9)}))
    registry.add(record("fair", "translate", observed={"translate": ObservedStat(n=10, completed=6)}))
    assert names(registry.discover("translate")) == ["good", "fair", "poor"]


def test_equal_success_rate_then_lower_p50_latency_first(registry: Registry) -> None:
    stat = {
        "slow": ObservedStat(n=10, completed=9, p50_latency_ms=900),
        "fast": ObservedStat(n=10, completed=9, p50_latency_ms=100),
        "unknown": ObservedStat(n=10, completed=9),
    }
    for name, s in stat.items():
        registry.add(record(name, "cap", observed={"cap": s}))
    assert names(registry.discover("cap")) == ["fast", "slow", "unknown"]


def test_success_rate_outranks_latency(registry: Registry) -> None:
    registry.add(
        record("fast-flaky", "cap", observed={"cap": ObservedStat(n=10, completed=5, p50_latency_ms=10)})
    )
    registry.add(
        record("slow-sure", "cap", observed={"cap": ObservedStat(n=10, completed=9, p50_latency_ms=5000)})
    )
    assert names(registry.discover("cap")) == ["slow-sure", "fast-flaky"]


def test_discover_is_case_insensitive(registry: Registry) -> None:
    registry.add(record("a", "Translate"))
    registry.add(record("b", "LEGAL-TRANSLATION"))
    assert names(registry.discover("TRANSLAT")) == ["a", "b"]
    assert names(registry.discover("  TransLate ")) == ["a"]
    assert names(registry.discover("Legal-Translation")) == ["b"]


def test_observed_record_ranks_substring_claimers_too(registry: Registry) -> None:
    # discover's docstring: "within each [group], a better observed success rate ... wins".
    registry.add(
        record("a-weak", "summarize-legal", observed={"summarize-legal": ObservedStat(n=10, completed=1)})
    )
    registry.add(
        record("b-strong", "summarize-news", observed={"summarize-news": ObservedStat(n=10, completed=9)})
    )
    assert names(registry.discover("summar")) == ["b-strong", "a-weak"]


def test_observed_record_counts_when_the_claim_was_written_in_another_case(registry: Registry) -> None:
    registry.add(record("a-weak", "Translate", observed={"Translate": ObservedStat(n=10, completed=1)}))
    registry.add(record("b-strong", "Translate", observed={"Translate": ObservedStat(n=10, completed=9)}))
    assert names(registry.discover("translate")) == ["b-strong", "a-weak"]


def test_discover_limit_and_no_match(registry: Registry) -> None:
    for i in range(5):
        registry.add(record(f"agent-{i}", "cap"))
    assert names(registry.discover("cap", limit=2)) == ["agent-0", "agent-1"]
    assert len(registry.discover("cap", limit=None)) == 5
    assert registry.discover("nothing-like-it") == []


@pytest.mark.parametrize("keyword", ["", "   "])
def test_empty_keyword_is_a_usage_error(registry: Registry, keyword: str) -> None:
    with pytest.raises(UsageError, match="discover needs a capability keyword"):
        registry.discover(keyword)


# ── select ──────────────────────────────────────────────────────────────────


def test_select_by_kind(registry: Registry) -> None:
    registry.add(record("bot", "cap"))
    registry.add(record("explicit-bot", kind="agent"))
    registry.add(record("person", "cap", kind="human"))
    registry.add(record("far-away", kind="remote_agent"))
    assert sorted(names(registry.select(kind="agent"))) == ["bot", "explicit-bot"]
    assert names(registry.select(kind="human")) == ["person"]
    assert names(registry.select(kind="remote_agent")) == ["far-away"]
    assert len(registry.select()) == 4


def test_select_by_capability_and_kind_keeps_the_ranking(registry: Registry) -> None:
    registry.add(record("person", "cap", kind="human"))
    registry.add(record("bot-b", "cap", observed={"cap": ObservedStat(n=4, completed=4)}))
    registry.add(record("bot-a", "capable"))
    assert names(registry.select(capability="cap")) == ["bot-b", "person", "bot-a"]
    assert names(registry.select(capability="cap", kind="agent")) == ["bot-b", "bot-a"]


def test_select_limit(registry: Registry) -> None:
    for i in range(3):
        registry.add(record(f"agent-{i}"))
    assert len(registry.select(limit=2)) == 2
    assert registry.select(limit=0) == []
    with pytest.raises(UsageError, match="limit must be 0 or more, got -1"):
        registry.select(limit=-1)
