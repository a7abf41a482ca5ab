"""Drive an adapter the way the hub does, with no hub: validate, stamp, fold, on_accepted."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from hubbub.adapters.base import AdapterResult, ChannelAdapter
from hubbub.model import (
    EV_TEXT,
    ChannelMetadata,
    ChannelState,
    Envelope,
    MonotonicIds,
    Participant,
    ParticipantRole,
)

CHANNEL_ID = "ch-7f3a"


def make_metadata(
    adapter: ChannelAdapter, agent_ids: list[str], *, knobs: dict[str, Any] | None = None
) -> ChannelMetadata:
    """An active channel of ``adapter``'s type; the first id is the creator, the rest join in order."""
    many = len(agent_ids) > 2
    participants = [
        Participant(
            agent_id=agent_id,
            role=ParticipantRole.INITIATOR
            if i == 0
            else ParticipantRole.PARTICIPANT
            if many
            else ParticipantRole.RESPONDENT,
            order=i,
        )
        for i, agent_id in enumerate(agent_ids)
    ]
    return ChannelMetadata(
        channel_id=CHANNEL_ID,
        manifest=adapter.manifest,
        creator_id=agent_ids[0] if agent_ids else "nobody",
        participants=participants,
        state=ChannelState.ACTIVE,
        created_at="2026-01-02T03:04:05.000000Z",
        knobs=knobs or {},
    )


class Channel:
    """One channel's cached adapter state, advanced envelope by envelope."""

    def __init__(self, adapter: ChannelAdapter, metadata: ChannelMetadata) -> None:
        adapter.validate_create(metadata)
        self.adapter = adapter
        self.metadata = metadata
        self.state = adapter.initial_state(metadata)
        self.wal: list[Envelope] = []
        self._ids = MonotonicIds(clock=lambda: 1_000)

    def send(
        self,
        sender: str,
        text: str = "hi",
        *,
        event_type: str = EV_TEXT,
        event_data: dict[str, Any] | None = None,
    ) -> AdapterResult:
        """Validate against the state before, stamp, fold, then ask on_accepted; raises on refusal."""
        envelope = Envelope(
            channel_id=self.metadata.channel_id,
            sender_id=sender,
            event_type=event_type,
            event_data=event_data if event_data is not None else {"text": text},
        )
        self.adapter.validate_send(self.metadata, self.state, envelope)
        stamped = msgspec.structs.replace(envelope, envelope_id=self._ids())
        before = copy.deepcopy(self.state)
        after = self.adapter.fold(self.state, stamped)
        assert self.state == before, "fold mutated its input state"
        self.state = after
        self.wal.append(stamped)
        return self.adapter.on_accepted(self.metadata, self.state, stamped)

    def expected(self) -> tuple[str, str | None] | None:
        """``(agent_id, triggering_envelope_id)`` the adapter waits for, or None."""
        turn = self.adapter.expected_next(self.metadata, self.state)
        return None if turn is None else (turn.agent_id, turn.triggering_envelope_id)

    def last_id(self) -> str:
        return self.wal[-1].envelope_id
