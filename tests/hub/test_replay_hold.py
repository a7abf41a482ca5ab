"""While an agent's replay is due or running, its new envelopes wait and follow their channel's
backlog: live deliveries and nack redeliveries alike; a holding belongs to one connection."""

from __future__ import annotations

from hubbub import EV_TEXT, Channel, Envelope, Hub, HubClient, LocalLink
from tests._peers import absent_peer
from tests.hub._waiting import wait_until


class Recorder:
    """An endpoint that keeps the texts it is handed."""

    def __init__(self, name: str) -> None:
        self.endpoint_id = name
        self.texts: list[str] = []

    def deliver(self, envelope: Envelope, recipient_id: str) -> None:
        if envelope.event_type == EV_TEXT:
            self.texts.append(envelope.envelope_id)


async def conversation(hub: Hub) -> tuple[HubClient, Channel, str]:
    """alice and bob (registered, then gone) in a conversation; returns alice's client, the
    channel and bob's id."""
    local = HubClient(LocalLink(hub))
    alice = await local.register(name="alice", handle_turns=False)
    channel, bob = await absent_peer(hub, alice)
    return local, channel, bob


async def test_a_nacked_envelope_comes_back_in_the_replays_order_not_before_it() -> None:
    async with Hub(nack_backoff=(0.02, 0.02)) as hub:
        local, channel, bob = await conversation(hub)
        e1 = await channel.send("one")
        e2 = await channel.send("two")
        hub.nack(bob, channel.id, e2, "turn failed")
        endpoint = Recorder("back")
        hub.bind(bob, endpoint)
        holding = hub.delivery.hold(bob)  # re-attached: its replay follows
        assert holding is not None
        await wait_until(lambda: bool(holding.waiting), what="the redelivery, due meanwhile")
        assert endpoint.texts == []  # it waits in the holding
        await hub.replay(bob)
        assert endpoint.texts == [e1, e2]  # in order (an ack of e2 first would have covered e1)
        await local.aclose()


async def test_a_holding_stays_with_its_connection() -> None:
    async with Hub() as hub:
        local, channel, bob = await conversation(hub)
        first, second = Recorder("first"), Recorder("second")
        hub.bind(bob, first)
        hub.delivery.hold(bob)  # a replay on the first connection is due...
        hub.bind(bob, second)  # ...when bob moves to a second one, without a replay
        sent = [await channel.send(f"m{i}") for i in range(3)]
        await wait_until(lambda: second.texts == sent, what="the second connection to get them")
        assert first.texts == []
        assert bob not in hub.delivery.holdings
        await local.aclose()


async def test_replaying_since_a_later_id_still_delivers_what_waited() -> None:
    async with Hub() as hub:
        local, channel, bob = await conversation(hub)
        endpoint = Recorder("back")
        hub.bind(bob, endpoint)
        hub.delivery.hold(bob)
        live = await channel.send("sent between the attach and its replay")
        await hub.replay(bob, since="~")  # above every id: replays nothing old
        assert endpoint.texts == [live]
        await local.aclose()


async def test_attaching_again_without_a_replay_lets_what_waited_go() -> None:
    async with Hub() as hub, HubClient(LocalLink(hub)) as back:
        local, channel, bob = await conversation(hub)
        await back.request("attach", {"name": "bob", "hold": True})
        await channel.send("waiting")
        assert bob in hub.delivery.holdings
        got: list[str] = []
        again = await back.attach(None, "bob", handle_turns=False, since_envelope_id=None)
        again.on_envelope(lambda e: got.append(e.envelope_id) if e.event_type == EV_TEXT else None)
        later = await channel.send("straight through")
        await wait_until(lambda: later in got, what="the later text")
        assert bob not in hub.delivery.holdings  # released (what waited went out) at the attach
        await local.aclose()
