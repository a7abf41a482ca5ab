"""Retention: what :meth:`Store.compact` may drop, and what it reports. No I/O here.

Two things grow without bound on a long-running hub: the WALs of channels that
closed long ago, and the audit log. A :class:`RetentionPolicy` bounds them:

* ``closed_wal_after``: the envelopes of a channel closed (or expired) at least
  this many seconds ago are deleted. Its metadata stays, so it still lists and
  reads, as an empty WAL; the keyed state ``compacted/<channel_id>`` records
  when and how many envelopes went. Unacked envelopes of such a channel are
  gone too: they will not be replayed, and every participant's cursor on it
  moves to its end (unless it is retired).
* ``closed_wal_max_envelopes``: beyond this many envelopes held by closed
  channels in all, the WALs of the channels that closed first are emptied (a
  whole channel at a time) until the rest hold at most that many.
* ``audit_after``: audit records older than this many seconds are deleted.
* ``audit_max_rows``: beyond this many audit records, the oldest are deleted.

Never dropped: open channels (and their WALs), channel metadata, agents,
cursors (moved, as above), and every keyed-state entry a restart reads (snapshots, task
records, checkpoints ...). ``keep_channels`` names closed channels to keep
whole anyway (the hub passes those it still needs, see
:func:`hubbub.hub.retention.compact`). None means "no limit".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from ..model._time import from_iso
from ..model.channel import ChannelMetadata
from ..model.rule import parse_duration

__all__ = ["COMPACTED_PREFIX", "CompactionReport", "RetentionPolicy", "choose_closed", "ended_at"]

COMPACTED_PREFIX = "compacted/"
"""Keyed-state prefix of compaction marks: ``compacted/<channel_id>`` → ``{"at", "envelopes"}``."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How long closed channels' WALs and audit records are kept (seconds; None: for ever)."""

    closed_wal_after: float | None = None
    audit_after: float | None = None
    audit_max_rows: int | None = None
    keep_channels: frozenset[str] = field(default_factory=frozenset)
    closed_wal_max_envelopes: int | None = None

    def __post_init__(self) -> None:
        for name in ("closed_wal_after", "audit_after", "audit_max_rows", "closed_wal_max_envelopes"):
            value = getattr(self, name)
            counted = name in ("audit_max_rows", "closed_wal_max_envelopes")
            kind = int if counted else int | float
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind) or value < 0):
                what = "an int" if counted else "seconds"
                raise UsageError(f"RetentionPolicy.{name} must be {what} (0 or more) or None, got {value!r}")

    @classmethod
    def from_settings(
        cls,
        *,
        retain_closed: str | float | None = None,
        retain_audit: str | float | None = None,
        audit_max_rows: int | None = None,
        closed_max_envelopes: int | None = None,
    ) -> RetentionPolicy:
        """The policy ``hubbub serve`` and ``hubbub compact`` settings ask for (durations such as
        ``"30d"`` or seconds)."""
        return cls(
            closed_wal_after=None if retain_closed is None else parse_duration(retain_closed),
            audit_after=None if retain_audit is None else parse_duration(retain_audit),
            audit_max_rows=audit_max_rows,
            closed_wal_max_envelopes=closed_max_envelopes,
        )

    @property
    def empty(self) -> bool:
        """Whether the policy drops nothing at all."""
        return not self.drops_wals and self.audit_after is None and self.audit_max_rows is None

    @property
    def drops_wals(self) -> bool:
        """Whether the policy may empty closed channels' WALs."""
        return self.closed_wal_after is not None or self.closed_wal_max_envelopes is not None


@dataclass(frozen=True)
class CompactionReport:
    """What one compaction dropped (with ``dry_run``: would drop)."""

    channels: int = 0
    """Closed channels whose WAL was emptied."""
    envelopes: int = 0
    """WAL envelopes deleted."""
    audit_records: int = 0
    """Audit records deleted."""
    dry_run: bool = False
    channel_ids: tuple[str, ...] = ()
    """The compacted channels."""

    def __str__(self) -> str:
        verb = "would drop" if self.dry_run else "dropped"
        return (
            f"{verb} {self.envelopes} envelopes of {self.channels} closed channels and "
            f"{self.audit_records} audit records"
        )


def ended_at(metadata: ChannelMetadata) -> float | None:
    """When the channel closed or expired (POSIX time); None while it is open (or unreadable)."""
    if not metadata.is_terminal():
        return None
    ended = metadata.closed_at or metadata.expires_at or metadata.created_at
    try:
        return from_iso(ended)
    except ValueError:
        return None


def choose_closed(
    policy: RetentionPolicy, now: float, candidates: list[tuple[ChannelMetadata, int]]
) -> list[str]:
    """The channels whose WALs ``policy`` empties, in the order given, among ``candidates``:
    each channel with the number of envelopes its WAL holds (those in ``keep_channels`` and
    the open ones are never chosen)."""
    closed: list[tuple[float, str, int]] = []
    for metadata, length in candidates:
        ended = ended_at(metadata)
        if ended is not None and length > 0 and metadata.channel_id not in policy.keep_channels:
            closed.append((ended, metadata.channel_id, length))
    chosen: set[str] = set()
    if policy.closed_wal_after is not None:  # closed at or before the cutoff
        cutoff = now - policy.closed_wal_after
        chosen = {channel_id for ended, channel_id, _ in closed if ended <= cutoff}
    most = policy.closed_wal_max_envelopes
    if most is not None:
        held = sum(length for _, channel_id, length in closed if channel_id not in chosen)
        for _, channel_id, length in sorted(closed):  # the first closed first
            if held <= most:
                break
            if channel_id not in chosen:
                chosen.add(channel_id)
                held -= length
    return [channel_id for _, channel_id, _ in closed if channel_id in chosen]
