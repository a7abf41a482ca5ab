"""Test set-ups shared across files."""

from __future__ import annotations

from hubbub import AgentClient, Channel, Hub, HubClient, LocalLink, Rule


async def absent_peer(
    hub: Hub, opener: AgentClient, name: str = "bob", *, rule: Rule | None = None
) -> tuple[Channel, str]:
    """A conversation ``opener`` -> ``name``, where ``name`` registered (on a client of its own,
    answering the invite) and went away: what is sent now waits for it. Returns the channel and
    ``name``'s agent id."""
    away = HubClient(LocalLink(hub))
    peer = await away.register(name=name, handle_turns=False, rule=rule)
    channel = await opener.open("conversation", name)
    await away.aclose()
    return channel, peer.agent_id or ""
