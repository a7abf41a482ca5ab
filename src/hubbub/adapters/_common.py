"""Small pieces the built-in adapters share."""

from __future__ import annotations

from ..errors import ChannelRuleError, UsageError
from ..model.channel import ChannelMetadata
from ..model.envelope import Envelope, is_bypass_event
from .views import view_policy_by_name

__all__ = ["check_participant_count", "check_view_knobs", "is_bypass", "knob_int"]


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


def check_view_knobs(metadata: ChannelMetadata) -> None:
    """Refuse bad ``views`` (participant name or id -> view policy name) and ``window`` (lines a
    windowed view keeps, 0 or more) knobs, which every channel type takes."""
    kind, channel_id = metadata.manifest.type, metadata.channel_id
    window = metadata.knobs.get("window")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
        raise ChannelRuleError(
            f"{kind} channel {channel_id}: knob 'window' must be an integer of 0 or more, got {window!r}",
            channel_id=channel_id,
            reason="knob:window",
        )
    views = metadata.knobs.get("views")
    if views is None:
        return
    if not isinstance(views, dict) or not all(isinstance(v, str) for v in views.values()):
        raise ChannelRuleError(
            f"{kind} channel {channel_id}: knob 'views' must map participants to view policy names, "
            f"got {views!r}",
            channel_id=channel_id,
            reason="knob:views",
        )
    for name in views.values():
        try:
            view_policy_by_name(name)
        except UsageError as exc:
            raise ChannelRuleError(
                f"{kind} channel {channel_id}: knob 'views': {exc}",
                channel_id=channel_id,
                reason="knob:views",
            ) from None
