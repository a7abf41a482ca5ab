"""The cache of recently committed envelopes: it answers exactly as SQLite would, or says it cannot."""

from __future__ import annotations

from hubbub import Envelope
from hubbub.model.ids import MonotonicIds
from hubbub.storage._sqlite_recent import UNKNOWN, RecentEnvelopes

ids = MonotonicIds()


def envelopes(channel_id: str, count: int) -> list[Envelope]:
    return [Envelope(channel_id=channel_id, sender_id="a", envelope_id=ids()) for _ in range(count)]


def test_a_channel_new_since_open_is_served_whole() -> None:
    recent = RecentEnvelopes({})
    wal = envelopes("A", 6)
    recent.add(wal)
    assert recent.read("A", None, None, None) == wal
    assert recent.read("A", wal[1].envelope_id, wal[4].envelope_id, None) == wal[2:5]
    assert recent.read("A", wal[1].envelope_id, None, 2) == wal[2:4]
    assert recent.read("A", wal[5].envelope_id, None, 10) == []
    assert recent.read_tail("A", 4, None) == wal[2:]
    assert recent.read_tail("A", 10, wal[2].envelope_id) == wal[:3]
    assert recent.get("A", wal[3].envelope_id) is wal[3]
    assert recent.get("A", "0" * 26) is None
    assert recent.read("B", None, None, None) is UNKNOWN


def test_a_channel_stored_before_open_is_served_only_past_its_last_id() -> None:
    older = envelopes("A", 3)
    recent = RecentEnvelopes({"A": older[-1].envelope_id})
    newer = envelopes("A", 3)
    recent.add(newer)
    assert recent.read("A", older[-1].envelope_id, None, None) == newer
    assert recent.read("A", newer[0].envelope_id, None, 1) == newer[1:2]
    assert recent.read("A", older[0].envelope_id, None, None) is UNKNOWN
    assert recent.read("A", None, None, 2) is UNKNOWN
    assert recent.read_tail("A", 3, None) == newer
    assert recent.read_tail("A", 4, None) is UNKNOWN
    assert recent.get("A", newer[1].envelope_id) is newer[1]
    assert recent.get("A", older[1].envelope_id) is UNKNOWN


def test_trimming_raises_the_floor() -> None:
    recent = RecentEnvelopes({}, keep=4)
    wal = envelopes("A", 7)
    recent.add(wal)
    assert recent.read("A", None, None, None) == wal  # 7 < 2 * keep: nothing trimmed yet
    more = envelopes("A", 1)
    recent.add(more)
    wal += more
    assert recent.read("A", wal[3].envelope_id, None, None) == wal[4:]
    assert recent.read("A", wal[2].envelope_id, None, None) is UNKNOWN
    assert recent.get("A", wal[3].envelope_id) is UNKNOWN
    assert recent.read_tail("A", 4, None) == wal[4:]
    assert recent.read_tail("A", 5, None) is UNKNOWN


def test_the_least_recently_written_channel_is_evicted_first() -> None:
    recent = RecentEnvelopes({}, keep=8, most=6)
    a, b = envelopes("A", 3), envelopes("B", 3)
    recent.add(a)
    recent.add(b)
    recent.add(more_b := envelopes("B", 1))
    assert recent.read("A", None, None, None) is UNKNOWN
    assert recent.read("B", None, None, None) == b + more_b
    later = envelopes("A", 2)
    recent.add(later)
    assert recent.read("A", a[-1].envelope_id, None, None) == later
    assert recent.read("A", a[0].envelope_id, None, None) is UNKNOWN


def reply(to: Envelope, sender: str) -> Envelope:
    cause = to.envelope_id
    return Envelope(channel_id=to.channel_id, sender_id=sender, envelope_id=ids(), causation_id=cause)


def test_replies_are_found_by_their_cause_while_the_cause_is_held() -> None:
    recent = RecentEnvelopes({}, keep=4)
    [question] = envelopes("A", 1)
    first, second = reply(question, "b"), reply(question, "b")
    recent.add([question, first, second, reply(question, "c")])
    assert recent.find_reply("A", "b", question.envelope_id) is first  # the first one, as SQLite finds
    assert recent.find_reply("A", "a", question.envelope_id) is None  # held, and there is none
    assert recent.find_reply("B", "b", question.envelope_id) is UNKNOWN
    recent.add(envelopes("A", 4))  # 8 held: trimmed back to 4, the question and its replies leave
    assert recent.find_reply("A", "b", question.envelope_id) is UNKNOWN


def test_a_cause_stored_before_open_is_left_to_sqlite() -> None:
    [older] = envelopes("A", 1)
    recent = RecentEnvelopes({"A": older.envelope_id})
    recent.add([reply(older, "b")])
    assert recent.find_reply("A", "b", older.envelope_id) is UNKNOWN
