"""Small pieces the built-in adapters share."""

from __future__ import annotations

from ..errors import ChannelRuleError
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope, is_bypass_event

__all__ = ["check_participant_count", "is_bypass", "knob_int"]


def is_bypass(envelope: Envelope) -> bool:
    """Lifecycle, task and hub notices pass every adapter's turn rules."""
    return is_bypass_event(envelope.event_type)


def check_participant_count(metadata: ChannelMetadata, low: int, high: int | None) -> None:
    """Refuse creation unless ``low <= participants <= high`` (``high`` None = no limit)."""
    count = len(metadata.participants)
    kind = metadata.manifest.type
    if count < low or (high is not None and count > high):
        want = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        raise ChannelRuleError(
            f"{kind} channel {metadata.channel_id} needs {want} participants, got {count}: "
            f"pass target= with {'one agent' if low == high == 2 else 'the other agents'}",
            channel_id=metadata.channel_id,
            reason="participant_count",
        )


def knob_int(metadata: ChannelMetadata, name: str) -> int | None:
    """A positive integer knob, or None when absent; refuse anything else."""
    value = metadata.knobs.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChannelRuleError(
            f"{metadata.manifest.type} channel {metadata.channel_id}: knob {name!r} must be a "
            f"positive integer, got {value!r}",
            channel_id=metadata.channel_id,
            reason=f"knob:{name}",
        )
    return value
