"""Issue 16: the node's rating keys on the national five-level scale (好差评). A five-key
layout (rate_5 非常满意 .. rate_1 非常不满意) or the three keys mapped onto it (good -> 5,
fair -> 3, poor -> 1), not both; every rating is sent with scale 5. End to end: a real hub
process and Mosquitto, gpiozero's MockFactory pins, the journal read back."""

from __future__ import annotations

import asyncio

import pytest
from gpiozero.pins.mock import MockFactory

from onewindow.node.app import SCORES
from onewindow.node.config import NodeConfigError, from_dict
from onewindow.node.keys import KeyBridge, Keys

from .test_node_e2e import Card, hub, journal, start_node  # noqa: F401  (hub: a fixture)

BASE = {"node": {"id": "node-1", "centre": "n1", "window": 1, "secret": "x" * 16}}


def test_five_keys_or_three_keys_but_not_both():
    five = from_dict({**BASE, "keys": {"rate_5": 16, "rate_4": 12, "rate_3": 7, "rate_2": 8,
                                       "rate_1": 25}})
    assert sorted(five.keys) == ["rate_1", "rate_2", "rate_3", "rate_4", "rate_5"]
    three = from_dict({**BASE, "keys": {"rate_good": 16, "rate_fair": 12, "rate_poor": 7}})
    assert sorted(three.keys) == ["rate_fair", "rate_good", "rate_poor"]
    with pytest.raises(NodeConfigError, match="not both"):
        from_dict({**BASE, "keys": {"rate_good": 16, "rate_1": 25}})
    with pytest.raises(NodeConfigError, match="unknown keys: rate_6"):
        from_dict({**BASE, "keys": {"rate_6": 16}})


def test_the_keys_map_onto_the_five_levels():
    assert [SCORES[f"rate_{n}"] for n in (5, 4, 3, 2, 1)] == [5, 4, 3, 2, 1]
    assert (SCORES["rate_good"], SCORES["rate_fair"], SCORES["rate_poor"]) == (5, 3, 1)


async def test_a_five_key_node_rates_and_a_low_rating_opens_a_follow_up(hub):  # noqa: F811
    tmp = hub.tmp
    kiosk, ktask = await start_node(hub, "kiosk-1", "kiosk")
    factory = MockFactory()
    bridge = KeyBridge(asyncio.get_running_loop())
    pins = {"call": 5, "rate_5": 16, "rate_4": 12, "rate_3": 7, "rate_2": 8, "rate_1": 25}
    keys = Keys(pins, bridge, pin_factory=factory)
    app, task = await start_node(hub, "node-1", bridge=bridge)
    try:
        await kiosk.card(Card(ident="310101199001011234"))
        factory.pin(5).drive_low()  # call
        factory.pin(5).drive_high()
        for _ in range(100):
            if app.ticket == "A001" and app.state == "calling":
                break
            await asyncio.sleep(0.05)
        assert app.ticket == "A001"
        await app.link.event("start")
        for _ in range(100):
            if app.state == "serving":
                break
            await asyncio.sleep(0.05)
        assert app.state == "serving"
        factory.pin(8).drive_low()  # 不满意
        factory.pin(8).drive_high()
        for _ in range(100):
            if any(r["op"] == "rate" for r in journal(tmp)):
                break
            await asyncio.sleep(0.05)
        [rate] = [r for r in journal(tmp) if r["op"] == "rate"]
        assert (rate["score"], rate["scale"], rate["window"]) == (2, 5, 1)
        assert rate["ticket"].endswith("A001")
        # one rating per service: a second press is refused by the hub, nothing journaled
        assert not await app.rate(5)
        assert [r["op"] for r in journal(tmp)].count("rate") == 1
    finally:
        task.cancel()
        ktask.cancel()
        keys.close()
        factory.reset()
