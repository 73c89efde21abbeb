"""gpiozero keys bridged into asyncio, and the keyboard-wedge ticket scanner.

gpiozero's MockFactory pins stand in for the Pi's GPIO (no Pi here); the bridge is also
driven from a separate thread, as gpiozero's own pin thread does on a real Pi. The scanner
is fed recorded evdev key events: this machine has no /dev/uinput for a virtual keyboard.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from evdev import InputEvent, ecodes
from gpiozero.pins.mock import MockFactory

from onewindow.node.keys import MAX_PENDING, KeyBridge, Keys, Lamps
from onewindow.node.scanner import WedgeDecoder, scans, ticket_ref

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()


async def test_mock_pin_presses_reach_the_loop(factory):
    bridge = KeyBridge(asyncio.get_running_loop())
    keys = Keys({"call": 5, "rate_good": 16}, bridge, pin_factory=factory)
    try:
        factory.pin(5).drive_low()  # pressed: the button pulls the pin to ground
        factory.pin(5).drive_high()
        factory.pin(16).drive_low()
        assert await asyncio.wait_for(bridge.next(), 2) == "call"
        assert await asyncio.wait_for(bridge.next(), 2) == "rate_good"
    finally:
        keys.close()


async def test_presses_from_another_thread_arrive_in_order_and_bounded():
    loop = asyncio.get_running_loop()
    bridge = KeyBridge(loop)
    put_on = set()  # the threads the queue was touched on: asyncio.Queue is not thread-safe
    put = bridge._put

    def recording_put(name):
        put_on.add(threading.get_ident())
        put(name)

    bridge._put = recording_put
    delivered = asyncio.Event()

    def press_from_thread():
        for i in range(MAX_PENDING + 3):
            bridge.press(f"k{i}")
        # runs after every press handed over before it (the loop runs its callbacks in order)
        loop.call_soon_threadsafe(delivered.set)

    t = threading.Thread(target=press_from_thread)
    t.start()
    await asyncio.wait_for(delivered.wait(), 5)
    t.join()
    got = [bridge.queue.get_nowait() for _ in range(bridge.queue.qsize())]
    assert got == [f"k{i}" for i in range(MAX_PENDING)]
    assert bridge.dropped == 3
    assert put_on == {threading.get_ident()}  # on the loop's thread, never the presser's


async def blinked(*devices):
    """Until gpiozero's background blink threads of `devices` have finished."""
    for device in devices:
        thread = device._blink_thread  # gpiozero's: the blink's timing is its own
        if thread is not None:
            await asyncio.to_thread(thread.join, 5)
            assert not thread.is_alive()


async def test_lamps_blink_the_verdict(factory):
    lamps = Lamps({"ok": 23, "err": 24, "buzzer": 18}, pin_factory=factory)
    try:
        lamps.show(False)  # refused: the error lamp blinks twice, the buzzer beeps once
        await blinked(lamps.leds["err"], lamps.buzzer)
        assert [s.state for s in factory.pin(24).states] == [False, True, False, True, False]
        assert [s.state for s in factory.pin(18).states] == [False, True, False]
        assert [s.state for s in factory.pin(23).states] == [False]
        lamps.show(True)  # accepted: the ok lamp once, no sound
        await blinked(lamps.leds["ok"])
        assert [s.state for s in factory.pin(23).states] == [False, True, False]
        assert [s.state for s in factory.pin(18).states] == [False, True, False]
    finally:
        lamps.close()


def keystrokes(text: str) -> list[InputEvent]:
    """What a keyboard-wedge scanner sends for text + Enter (down/up, shift for capitals)."""
    names = {"/": "SLASH", ":": "SEMICOLON", ".": "DOT", "-": "MINUS"}
    out = []
    for ch in text + "\n":
        if ch == "\n":
            codes, shift = [ecodes.KEY_ENTER], False
        else:
            shift = ch.isupper() or ch == ":"
            name = names.get(ch, ch.upper())
            codes = [ecodes.ecodes["KEY_" + name]]
        if shift:
            out.append(InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1))
        for code in codes:
            out += [InputEvent(0, 0, ecodes.EV_KEY, code, 1),
                    InputEvent(0, 0, ecodes.EV_SYN, 0, 0),
                    InputEvent(0, 0, ecodes.EV_KEY, code, 0)]
        if shift:
            out.append(InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0))
    return out


async def test_scanner_reads_a_ticket_qr_code():
    url = "http://hub.local:8080/t/20261124-A017"
    got = [s async for s in scans(keystrokes(url) + keystrokes("A018"))]
    assert got == [url, "A018"]
    assert ticket_ref(got[0]) == "20261124-A017" and ticket_ref(got[1]) == "A018"


def test_a_foreign_code_is_not_a_ticket():
    for text in ("6901234567892", "http://example.com/", "", "A01", "http://x/t/../etc"):
        assert ticket_ref(text) is None, text


def test_an_endless_scan_is_dropped_not_grown():
    d = WedgeDecoder()
    for _ in range(1000):
        d.feed(ecodes.EV_KEY, ecodes.KEY_A, 1)
    assert len(d._buf) <= 256
