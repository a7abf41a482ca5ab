"""May this sender post this envelope to this channel now? The checks of the post path, and the
refusals of a post to a channel that left the hub's memory.

Each refusal names the channel, the sender and what to do instead; none does I/O.
"""

from __future__ import annotations

from ..errors import AccessDeniedError, ChannelClosedError, ProtocolError
from ..model.channel import ChannelMetadata, ChannelState
from ..model.envelope import EV_CHANNEL_INVITE_ACK, EV_CHANNEL_INVITE_REJECT, Envelope, is_control_event
from .channel_record import ChannelRecord

__all__ = ["check_send", "ended_elsewhere", "refuse_outsiders_and_ended"]

_CLIENT_CONTROL = frozenset({EV_CHANNEL_INVITE_ACK, EV_CHANNEL_INVITE_REJECT})
_ACTIVE, _CLOSED, _EXPIRED = ChannelState.ACTIVE, ChannelState.CLOSED, ChannelState.EXPIRED


def check_send(record: ChannelRecord, envelope: Envelope, sender_id: str) -> None:
    """Refuse ``envelope`` from ``sender_id`` unless the channel and its adapter accept it now."""
    meta = record.metadata
    refuse_outsiders_and_ended(meta, record.members, envelope, sender_id)
    event_type = envelope.event_type
    if envelope.audience is not None:
        outsiders = [a for a in envelope.audience if a not in record.members]
        if outsiders or not envelope.audience:
            raise AccessDeniedError(
                f"audience of a send by {sender_id} in channel {meta.channel_id} must be a non-empty "
                f"subset of its participants; not participants: {outsiders}",
                channel_id=meta.channel_id,
                agent_id=sender_id,
                reason="audience_outside_channel",
            )
    if is_control_event(event_type):
        if event_type not in _CLIENT_CONTROL and not event_type.startswith("ag2.task."):
            raise ProtocolError(
                f"{sender_id} may not post {event_type!r} to channel {meta.channel_id}: the hub writes "
                "channel lifecycle events itself; close a channel with close_channel",
                channel_id=meta.channel_id,
                agent_id=sender_id,
                reason="reserved_event_type",
            )
        if event_type in _CLIENT_CONTROL and sender_id not in meta.pending_acks:
            raise ProtocolError(
                f"{sender_id} has no pending invite to answer in channel {meta.channel_id}",
                channel_id=meta.channel_id,
                agent_id=sender_id,
                reason="no_pending_invite",
            )
        return
    if meta.state is not _ACTIVE:
        raise ChannelClosedError(
            f"channel {meta.channel_id} is still {meta.state.value}: invitees have not all acked; "
            f"{sender_id} can send once it is active",
            channel_id=meta.channel_id,
            agent_id=sender_id,
            reason="not_active",
        )
    record.adapter.validate_send(meta, record.state, envelope)


def refuse_outsiders_and_ended(
    meta: ChannelMetadata, members: frozenset[str], envelope: Envelope, sender_id: str
) -> None:
    """Refuse a sender outside the channel, and any send to a closed or expired channel."""
    if sender_id not in members:
        raise AccessDeniedError(
            f"{sender_id} is not a participant of channel {meta.channel_id}; only its participants may send",
            channel_id=meta.channel_id,
            agent_id=sender_id,
            reason="not_a_participant",
        )
    event_type = envelope.event_type
    state = meta.state
    if state is _CLOSED or state is _EXPIRED:
        raise ChannelClosedError(
            f"channel {meta.channel_id} is {state.value} "
            f"({meta.close_reason or 'no reason given'}); "
            f"{sender_id} cannot send {event_type!r} to it. Open a new channel.",
            channel_id=meta.channel_id,
            agent_id=sender_id,
            reason=state.value,
        )


def ended_elsewhere(meta: ChannelMetadata, sender_id: str) -> ChannelClosedError:
    """The refusal for a channel that left memory (only closed ones do) whose stored record
    does not say so yet (a lifecycle row is a deferred write)."""
    return ChannelClosedError(
        f"channel {meta.channel_id} is closed; {sender_id} cannot send to it. Open a new channel.",
        channel_id=meta.channel_id,
        agent_id=sender_id,
        reason="closed",
    )
