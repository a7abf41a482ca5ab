"""Retention: what :meth:`Store.compact` may drop, and what it reports. No I/O here.

Two things grow without bound on a long-running hub: the WALs of channels that
closed long ago, and the audit log. A :class:`RetentionPolicy` bounds them:

* ``closed_wal_after``: the envelopes of a channel closed (or expired) at least
  this many seconds ago are deleted. Its metadata stays, so it still lists and
  reads, as an empty WAL; the keyed state ``compacted/<channel_id>`` records
  when and how many envelopes went. Unacked envelopes of such a channel are
  gone too: they will not be replayed, and every participant's cursor on it
  moves to its end (unless it is retired).
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

__all__ = ["COMPACTED_PREFIX", "CompactionReport", "RetentionPolicy", "closed_before"]

COMPACTED_PREFIX = "compacted/"
"""Keyed-state prefix of compaction marks: ``compacted/<channel_id>`` → ``{"at", "envelopes"}``."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How long closed channels' WALs and audit records are kept (seconds; None: for ever)."""

    closed_wal_after: float | None = None
    audit_after: float | None = None
    audit_max_rows: int | None = None
    keep_channels: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("closed_wal_after", "audit_after", "audit_max_rows"):
            value = getattr(self, name)
            kind = int if name == "audit_max_rows" else int | float
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind) or value < 0):
                what = "an int" if name == "audit_max_rows" else "seconds"
                raise UsageError(f"RetentionPolicy.{name} must be {what} (0 or more) or None, got {value!r}")

    @property
    def empty(self) -> bool:
        """Whether the policy drops nothing at all."""
        return self.closed_wal_after is None and self.audit_after is None and self.audit_max_rows is None


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


def closed_before(metadata: ChannelMetadata, cutoff: float) -> bool:
    """Whether the channel is closed or expired and ended at or before ``cutoff`` (POSIX time)."""
    if not metadata.is_terminal():
        return False
    ended = metadata.closed_at or metadata.expires_at or metadata.created_at
    try:
        return from_iso(ended) <= cutoff
    except ValueError:
        return False
