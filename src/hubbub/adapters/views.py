"""View policies: how a participant sees a channel's transcript on its turn.

A policy projects the WAL slice the participant can see into
:class:`TranscriptLine` records. ``full_transcript`` shows everything;
``windowed`` keeps the last ``recent_n`` lines and a count line for the rest;
the ``named_*`` variants label speakers by name instead of id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from ..errors import UsageError
from ..model.envelope import EV_PACKET, EV_TEXT, Envelope, visible_to
from ..model.turn import TranscriptLine

__all__ = [
    "FullTranscript",
    "NamedFullTranscript",
    "NamedWindowedSummary",
    "TranscriptLine",
    "ViewPolicy",
    "WindowedSummary",
    "view_policy_by_name",
]


@runtime_checkable
class ViewPolicy(Protocol):
    """Projects envelopes into the lines ``viewer_id`` sees.

    ``window`` is how many recent lines the policy shows at most (None: all),
    so the hub reads only the tail of a long WAL. ``earlier`` is how many
    texts precede the envelopes passed in (the hub did not read them).
    """

    name: str
    window: int | None

    def project(
        self, envelopes: Sequence[Envelope], viewer_id: str, names: Mapping[str, str], earlier: int = 0
    ) -> list[TranscriptLine]:
        """The transcript as ``viewer_id`` sees it; ``names`` maps agent ids to names."""
        ...


def _lines(
    envelopes: Sequence[Envelope], viewer_id: str, names: Mapping[str, str] | None
) -> list[TranscriptLine]:
    out: list[TranscriptLine] = []
    for env in envelopes:
        if env.event_type not in (EV_TEXT, EV_PACKET) or not visible_to(env, viewer_id):
            continue
        speaker = names.get(env.sender_id, env.sender_id) if names is not None else env.sender_id
        out.append(
            TranscriptLine(
                speaker=speaker,
                text=env.text,
                envelope_id=env.envelope_id,
                is_self=env.sender_id == viewer_id,
            )
        )
    return out


def _window(lines: list[TranscriptLine], recent_n: int, earlier: int) -> list[TranscriptLine]:
    if len(lines) <= recent_n and not earlier:
        return lines
    hidden = max(len(lines) - recent_n, 0) + earlier
    summary = TranscriptLine(speaker="hub", text=f"[{hidden} earlier messages not shown]")
    return [summary, *lines[-recent_n:]] if recent_n > 0 else [summary]


class FullTranscript:
    """Every text and packet the viewer can see, speakers by agent id."""

    name = "full_transcript"
    window: int | None = None

    def project(
        self, envelopes: Sequence[Envelope], viewer_id: str, names: Mapping[str, str], earlier: int = 0
    ) -> list[TranscriptLine]:
        return _lines(envelopes, viewer_id, None)


class NamedFullTranscript:
    """Every text and packet the viewer can see, speakers by name."""

    name = "named_full_transcript"
    window: int | None = None

    def project(
        self, envelopes: Sequence[Envelope], viewer_id: str, names: Mapping[str, str], earlier: int = 0
    ) -> list[TranscriptLine]:
        return _lines(envelopes, viewer_id, names)


class WindowedSummary:
    """The last ``recent_n`` lines, after one line counting those left out."""

    name = "windowed"

    def __init__(self, recent_n: int = 10) -> None:
        if recent_n < 0:
            raise UsageError(f"recent_n must be 0 or more, got {recent_n}")
        self.recent_n = recent_n
        self.window: int | None = recent_n

    def project(
        self, envelopes: Sequence[Envelope], viewer_id: str, names: Mapping[str, str], earlier: int = 0
    ) -> list[TranscriptLine]:
        return _window(_lines(envelopes, viewer_id, None), self.recent_n, earlier)


class NamedWindowedSummary(WindowedSummary):
    """:class:`WindowedSummary` with speakers by name."""

    name = "named_windowed"

    def project(
        self, envelopes: Sequence[Envelope], viewer_id: str, names: Mapping[str, str], earlier: int = 0
    ) -> list[TranscriptLine]:
        return _window(_lines(envelopes, viewer_id, names), self.recent_n, earlier)


def view_policy_by_name(name: str, recent_n: int = 10) -> ViewPolicy:
    """A policy from its ``name`` (as in a manifest's ``default_view_policy``)."""
    policies: dict[str, ViewPolicy] = {
        FullTranscript.name: FullTranscript(),
        NamedFullTranscript.name: NamedFullTranscript(),
        WindowedSummary.name: WindowedSummary(recent_n),
        NamedWindowedSummary.name: NamedWindowedSummary(recent_n),
    }
    try:
        return policies[name]
    except KeyError:
        raise UsageError(f"unknown view policy {name!r}; known: {sorted(policies)}") from None
