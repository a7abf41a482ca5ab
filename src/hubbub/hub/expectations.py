"""Expectations: timing contracts per channel, driven by deadlines, never by rescanning WALs.

Built-in expectations (``params={"seconds": N}``):

* ``acks_within`` — every invitee acks within N s of creation (while PENDING);
* ``reply_within`` — the latest text is followed by another within N s (its
  addressees are the violators; each unanswered text fires once);
* ``max_silence`` — an active channel carries some text at least every N s;
* ``turn_within`` — whoever the adapter expects next acts within N s.

They come from the channel type's manifest, can be replaced per type
(:meth:`Expectations.set_for_type`) and per channel (knob ``expectations``:
a list of ``{"name", "on_violation", "params", "applies_to"}``). The post path
only updates a few fields per channel (:meth:`watch`); one deadline per
channel, at the earliest due time, wakes :meth:`_tick`, which evaluates and
re-arms. Each violation fires once: it is audited, sent to listeners
(``on_expectation_fired``), then handled: ``audit`` (nothing more),
``notify_channel`` (an ``EV_EXPECTATION_VIOLATED`` envelope in the channel) or
``auto_close``; ``register_handler`` adds more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..errors import UsageError
from ..model._time import from_iso, iso_now
from ..model.channel import ChannelState, Expectation
from ..model.envelope import EV_CHANNEL_OPENED, EV_EXPECTATION_VIOLATED, EV_PACKET, EV_TEXT, Envelope
from ..model.ids import id_time_ns
from .channel_record import ChannelRecord
from .channels import Channels
from .deadlines import Deadlines
from .delivery import recipients_of
from .governance import Governance
from .listeners import Listeners

__all__ = ["BUILTIN_EXPECTATIONS", "Expectations", "Violation", "ViolationHandler"]

log = logging.getLogger("hubbub.hub")

BUILTIN_EXPECTATIONS = ("acks_within", "reply_within", "max_silence", "turn_within")
_TEXTS = frozenset({EV_TEXT, EV_PACKET})
_CLOSED, _EXPIRED = ChannelState.CLOSED, ChannelState.EXPIRED


class Violation(msgspec.Struct, kw_only=True, frozen=True):
    """One broken expectation: which, where, by whom, and what started the clock."""

    name: str
    channel_id: str
    violators: list[str]
    on_violation: str
    seconds: float
    trigger_envelope_id: str | None = None
    at: str = ""


ViolationHandler = Callable[[Violation], Awaitable[None]]


def _seconds(expectation: Expectation) -> float:
    value = expectation.params.get("seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise UsageError(
            f"expectation {expectation.name!r} needs params={{'seconds': N}} with N > 0, "
            f"got {expectation.params!r}"
        )
    return float(value)


class _Watch:
    """What the post path records per channel: the latest text and when the channel opened.

    Everything else (who is late, since when) is derived at tick time, so a post
    costs two field writes; see :meth:`Expectations.watch`.
    """

    __slots__ = ("armed_at", "expectations", "fired", "last_text", "min_seconds", "opened_at")

    def __init__(self, expectations: list[Expectation], now: float) -> None:
        self.expectations = expectations
        self.min_seconds = min(_seconds(e) for e in expectations)
        self.opened_at = now
        self.last_text: tuple[float, Envelope] | None = None
        self.fired: set[tuple[Any, ...]] = set()
        self.armed_at: float | None = None


class Expectations:
    """Watches every channel that declares expectations and fires violations once."""

    def __init__(
        self,
        channels: Channels,
        deadlines: Deadlines,
        governance: Governance,
        listeners: Listeners,
        close: Callable[[str, str], Awaitable[Any]],
    ) -> None:
        self._channels = channels
        self._deadlines = deadlines
        self._governance = governance
        self._listeners = listeners
        self._close = close
        self._watches: dict[str, _Watch] = {}
        self.on_fired: Callable[[str, tuple[Any, ...]], None] | None = None
        """Called with (channel_id, key) as each violation is decided, before it fires (the hub persists
        keys so a violation never fires twice across a restart)."""
        self._by_type: dict[str, list[Expectation]] = {}
        self._handlers: dict[str, ViolationHandler] = {
            "audit": self._noop,
            "warn": self._noop,
            "notify_channel": self._notify,
            "auto_close": self._auto_close,
        }

    # configuration

    def set_for_type(self, channel_type: str, expectations: list[Expectation]) -> None:
        """Replace the manifest's expectations for every new channel of ``channel_type``."""
        for e in expectations:
            self._validate(e)
        self._by_type[channel_type] = list(expectations)

    def register_handler(self, name: str, handler: ViolationHandler) -> None:
        """Add an ``on_violation`` handler: ``async handler(violation)``."""
        self._handlers[name] = handler

    def _validate(self, e: Expectation) -> None:
        if e.name not in BUILTIN_EXPECTATIONS:
            raise UsageError(f"unknown expectation {e.name!r}; known: {', '.join(BUILTIN_EXPECTATIONS)}")
        if e.on_violation not in self._handlers:
            raise UsageError(
                f"expectation {e.name!r} has unknown on_violation {e.on_violation!r}; "
                f"known: {', '.join(sorted(self._handlers))}"
            )
        _seconds(e)

    def resolve(self, record: ChannelRecord) -> list[Expectation]:
        """The channel's expectations: its knob, else its type's override, else the manifest's."""
        meta = record.metadata
        knob = meta.knobs.get("expectations")
        if knob is not None:
            try:
                chosen = msgspec.convert(knob, list[Expectation])
            except msgspec.ValidationError as exc:
                raise UsageError(
                    f"knob 'expectations' of channel {meta.channel_id} is malformed: {exc}"
                ) from exc
        else:
            chosen = self._by_type.get(meta.manifest.type, meta.manifest.expectations)
        for e in chosen:
            self._validate(e)
        return list(chosen)

    # the post path

    def start(self, record: ChannelRecord) -> None:
        """Begin watching a new or restored channel."""
        expectations = self.resolve(record)
        if not expectations or record.metadata.is_terminal():
            return
        self._watches[record.id] = _Watch(expectations, time.time())
        self._arm(record.id, time.time())

    async def resume(
        self,
        record: ChannelRecord,
        *,
        opened_at: float | None,
        last_text: Envelope | None,
        fired: set[tuple[Any, ...]],
    ) -> None:
        """After :meth:`start` on a restored channel: give the watch what it had seen before the
        restart, and fire now what fell due while the hub was down (before anything new is posted)."""
        w = self._watches.get(record.id)
        if w is None:
            return
        if opened_at is not None:
            w.opened_at = opened_at
        if last_text is not None:
            w.last_text = (id_time_ns(last_text.envelope_id) / 1e9, last_text)
        w.fired |= fired
        self._deadlines.cancel(("exp", record.id))
        try:
            await self._tick(record.id)
        except Exception:
            log.exception("expectations of channel %s failed after a restart", record.id)

    def watch(self, record: ChannelRecord, envelope: Envelope) -> None:
        """Called for every accepted envelope before anything awaits: a couple of field writes.

        The deadline moves only when this text could be due before it; a tick that
        finds nothing due re-arms for the earliest due time it computed.
        """
        w = self._watches.get(record.id)
        if w is None:
            return
        state = record.metadata.state
        if state is _CLOSED or state is _EXPIRED:
            self._deadlines.cancel(("exp", record.id))
            del self._watches[record.id]
            return
        event_type = envelope.event_type
        if event_type in _TEXTS:
            now = time.time()
            w.last_text = (now, envelope)
            due = now + w.min_seconds
            armed = w.armed_at
            if armed is None or armed > due:
                self._arm(record.id, due)
        elif event_type == EV_CHANNEL_OPENED:
            now = time.time()
            w.opened_at = now
            self._arm(record.id, now + w.min_seconds)

    def _arm(self, channel_id: str, when: float) -> None:
        w = self._watches.get(channel_id)
        if w is None:
            return
        w.armed_at = when
        self._deadlines.at(("exp", channel_id), when, lambda: self._tick(channel_id))

    # evaluation

    async def _tick(self, channel_id: str) -> None:
        w = self._watches.get(channel_id)
        if w is None:
            return
        w.armed_at = None
        record = self._channels.find(channel_id)
        if record is None or record.metadata.is_terminal():
            del self._watches[channel_id]
            return
        now = time.time()
        next_due: float | None = None
        fired: list[Violation] = []
        for index, e in enumerate(w.expectations):
            found = self._evaluate(record, w, index, e, now)
            if found is None:
                continue
            due, key, violators, trigger = found
            if key in w.fired:
                continue
            if due > now:
                next_due = due if next_due is None else min(next_due, due)
                continue
            violators = self._applicable(record, e, violators)
            w.fired.add(key)
            if self.on_fired is not None:
                self.on_fired(channel_id, key)
            if violators:
                fired.append(
                    Violation(
                        name=e.name,
                        channel_id=channel_id,
                        violators=violators,
                        on_violation=e.on_violation,
                        seconds=_seconds(e),
                        trigger_envelope_id=trigger,
                        at=iso_now(),
                    )
                )
        if next_due is not None:
            self._arm(channel_id, next_due)
        for violation in fired:
            await self._fire(violation)

    def _evaluate(
        self, record: ChannelRecord, w: _Watch, index: int, e: Expectation, now: float
    ) -> tuple[float, tuple[Any, ...], list[str], str | None] | None:
        meta = record.metadata
        seconds = _seconds(e)
        if e.name == "acks_within":
            if meta.state is not ChannelState.PENDING:
                return None
            return from_iso(meta.created_at) + seconds, (index,), list(meta.pending_acks), None
        if meta.state is not ChannelState.ACTIVE:
            return None
        last = w.last_text
        if e.name == "max_silence":
            since, trigger = (last[0], last[1].envelope_id) if last else (w.opened_at, None)
            return since + seconds, (index, trigger), list(record.participants), trigger
        if e.name == "reply_within" and last is not None:
            since, text = last
            addressed = recipients_of(text, record.participants)
            return since + seconds, (index, text.envelope_id), addressed, text.envelope_id
        if e.name == "turn_within":
            expected = record.adapter.expected_next(meta, record.state)
            if expected is None:
                return None
            agent_id, trigger = expected
            since = id_time_ns(trigger) / 1e9 if trigger else w.opened_at
            return since + seconds, (index, trigger, agent_id), [agent_id], trigger
        return None

    @staticmethod
    def _applicable(record: ChannelRecord, e: Expectation, violators: list[str]) -> list[str]:
        if not e.applies_to:
            return violators
        roles = {p.agent_id: p.role.value for p in record.metadata.participants}
        return [v for v in violators if v in e.applies_to or roles.get(v) in e.applies_to]

    async def _fire(self, violation: Violation) -> None:
        self._governance.audit(
            "expectation_violated",
            channel_id=violation.channel_id,
            agent_id=violation.violators[0],
            reason=violation.name,
            data=msgspec.to_builtins(violation),
        )
        if self._listeners.wants("on_expectation_fired"):
            self._listeners.emit("on_expectation_fired", violation)
        await self._handlers[violation.on_violation](violation)

    # handlers

    async def _noop(self, violation: Violation) -> None:
        return None

    async def _notify(self, violation: Violation) -> None:
        record = self._channels.find(violation.channel_id)
        if record is None or record.metadata.is_terminal():
            return
        data = msgspec.to_builtins(violation)
        followups = [self._channels.commit_hub_event(record, EV_EXPECTATION_VIOLATED, data)]
        await self._channels.settle(record, followups, None)  # the metadata did not change

    async def _auto_close(self, violation: Violation) -> None:
        await self._close(violation.channel_id, f"expectation_violated:{violation.name}")

    def is_watching(self, channel_id: str) -> bool:
        """Whether the channel has expectations being watched."""
        return channel_id in self._watches

    def pending(self) -> int:
        """How many channels are being watched."""
        return len(self._watches)
