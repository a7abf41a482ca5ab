"""The process ``test_crash.py`` kills: a hub on SQLite whose agents post concurrently until SIGKILL.

Usage: ``python _crash_child.py DB_PATH SEED``. Registers alice, bob and carol on
the first run and re-attaches them later (replaying what they had not acked; every
agent acks everything it gets and answers every invite), finds or opens its
channels, then posts from several agents at once and prints, flushed, one line
``POSTED <channel_id> <envelope_id>`` per post that returned. Alongside, one loop
keeps opening, using and closing channels, so kills also land mid-lifecycle.
It never ends on its own before ``LIFETIME`` seconds: the parent kills it.
"""

from __future__ import annotations

import asyncio
import random
import sys

from hubbub import AgentClient, ChannelState, Envelope, Hub, HubbubError, HubClient, LocalLink, SqliteStore

NAMES = ("alice", "bob", "carol")
PAIRS = {"ab": ("alice", "bob"), "bc": ("bob", "carol"), "ca": ("carol", "alice")}
SNAPSHOT_EVERY = 25
"""Small, so kills land around snapshots too."""
KEEP_CLOSED = 2
"""Small, so closed channels leave memory and retire in the store under fire too."""
LIFETIME = 30.0
STEP_TIMEOUT = 10.0


def posted(channel_id: str, envelope_id: str) -> None:
    sys.stdout.write(f"POSTED {channel_id} {envelope_id}\n")
    sys.stdout.flush()


async def post(agent: AgentClient, channel_id: str, text: str) -> str | None:
    """Post and report the id; a refused post (the channel closed, an inbox is full) reports nothing."""
    try:
        envelope = Envelope(channel_id=channel_id, event_data={"text": text})
        envelope_id = await asyncio.wait_for(agent.send_envelope(envelope), STEP_TIMEOUT)
    except HubbubError:
        await asyncio.sleep(0.01)
        return None
    posted(channel_id, envelope_id)
    return envelope_id


async def agents_of(hub: Hub, client: HubClient) -> dict[str, AgentClient]:
    agents = {}
    for name in NAMES:
        if hub.registry.find(name) is None:
            agents[name] = await client.register(name=name)
        else:
            agents[name] = await client.attach(None, name)
    return agents


def find(hub: Hub, label: str) -> str | None:
    """The newest active channel labelled ``label`` (a restart may have left several)."""
    for meta in hub.list_channels(state=ChannelState.ACTIVE, limit=10_000):
        if meta.labels.get("role") == label:
            return meta.channel_id
    return None


async def channels_of(hub: Hub, agents: dict[str, AgentClient]) -> dict[str, str]:
    found: dict[str, str] = {}
    for label, (a, b) in PAIRS.items():
        channel_id = find(hub, label)
        if channel_id is None:
            opened = await asyncio.wait_for(
                agents[a].open("conversation", b, labels={"role": label}), STEP_TIMEOUT
            )
            channel_id = opened.id
        found[label] = channel_id
    channel_id = find(hub, "all")
    if channel_id is None:
        opened = await asyncio.wait_for(
            agents["alice"].open("discussion", ["bob", "carol"], labels={"role": "all"}), STEP_TIMEOUT
        )
        channel_id = opened.id
    found["all"] = channel_id
    return found


async def chatter(agent: AgentClient, channel_id: str, rng: random.Random) -> None:
    n = 0
    while True:
        n += 1
        await post(agent, channel_id, f"{agent.name} #{n} " + "x" * rng.randrange(200))


async def round_robin(hub: Hub, agents: dict[str, AgentClient], channel_id: str) -> None:
    """Whoever the discussion expects next speaks (after a restart too)."""
    by_id = {a.agent_id: a for a in agents.values()}
    while True:
        turn = next(
            (by_id[i] for i in by_id if any(t.channel_id == channel_id for t in hub.pending_turns_for(i))),
            None,
        )
        if turn is None:
            return
        await post(turn, channel_id, f"{turn.name}'s turn")


async def churn(agents: dict[str, AgentClient]) -> None:
    """Open, use and end channels in a loop: invites, acks, opened and closed under fire.

    A consulting channel closes itself on the reply (the adapter's auto-close); a
    conversation is closed explicitly.
    """
    alice, carol = agents["alice"], agents["carol"]
    n = 0
    while True:
        n += 1
        kind = "consulting" if n % 2 else "conversation"
        try:
            channel = await asyncio.wait_for(
                alice.open(kind, "carol", labels={"role": "churn"}), STEP_TIMEOUT
            )
        except HubbubError:
            await asyncio.sleep(0.01)
            continue
        await post(alice, channel.id, f"question {n}")
        await post(carol, channel.id, f"answer {n}")
        if kind == "conversation":
            await asyncio.wait_for(channel.close("done"), STEP_TIMEOUT)


async def main(path: str, seed: int) -> None:
    rng = random.Random(seed)
    store = await SqliteStore.open(path, durability="full")
    hub = Hub(store, invite_ack_timeout=5.0, snapshot_every=SNAPSHOT_EVERY, keep_closed=KEEP_CLOSED)
    async with hub, HubClient(LocalLink(hub)) as client:
        agents = await asyncio.wait_for(agents_of(hub, client), STEP_TIMEOUT)
        channels = await channels_of(hub, agents)
        loops = [round_robin(hub, agents, channels["all"]), churn(agents)]
        for label, (a, b) in PAIRS.items():
            loops += [chatter(agents[a], channels[label], rng), chatter(agents[b], channels[label], rng)]
        await asyncio.wait_for(asyncio.gather(*loops), LIFETIME)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
