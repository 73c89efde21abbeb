"""Drivers (firmware/drivers) and the sim board (boards/sim.py) on the MicroPython unix port.

The MicroPython side (tests/mp/board_*.py) prints JSON lines; these tests assert the exact
bytes the drivers send to fake buses, and drive the sim board over its control socket.
"""

import asyncio
import contextlib
import json
import os
from pathlib import Path

import pytest

from onewindow.tools.testkit.fwsim import micropython_binary, micropython_path
from onewindow.tools.testkit.ports import quiet_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MP_DIR = HERE / "mp"

pytestmark = pytest.mark.timeout(60)


# --- pin maps (boards/pinmap.py) -------------------------------------------------------


async def test_pin_maps_and_per_board_overrides(mp):
    m = await mp("pinmap_units.py")
    line = await m.proc.stdout.readline()
    r = json.loads(line)
    # The boards' own maps pass their own checks.
    assert r["esp32"]["uart"] == {"id": 2, "tx": 17, "rx": 16}
    assert r["pico"]["buttons"] == [10, 11, 12, 13, 14, 15]
    # A WROVER module's ow.json moves the printer UART off the PSRAM pins: only what it
    # names changes (the UART id stays), the rest is the board file's.
    assert r["wrover"]["uart"] == {"id": 2, "tx": 4, "rx": 5} and r["wrover"]["buzzer"] == 15
    assert r["wrover"]["spi"] == r["esp32"]["spi"] and r["base_kept"] is True
    assert r["buttons"]["buttons"] == [2, 3, 9, 10, 11, 12]
    # Refused, naming the entry: an unknown name, the flash's and the radio's pins, a GPIO
    # the chip lacks, anything not an int.
    assert r["unknown"].startswith("ValueError: pins.lcd: unknown")
    assert r["flash_pin"] == "ValueError: pins.uart.tx: GPIO 6 is reserved on this board"
    assert r["radio_pin"] == "ValueError: pins.leds[2]: GPIO 23 is reserved on this board"
    assert r["no_such_gpio"] == "ValueError: pins.buzzer: 30 is not a GPIO of this chip"
    assert r["not_a_number"] == "ValueError: pins.spi.sck: '18' is not a GPIO of this chip"
    assert r["bool"] == "ValueError: pins.buzzer: True is not a GPIO of this chip"
    assert r["bus_not_dict"] == "ValueError: pins.i2c: a dict of settings"


# --- drivers -------------------------------------------------------------------------


@pytest.fixture
async def drivers(mp):
    m = await mp("board_drivers.py")
    await m.next("done", timeout=20)
    return {e["ev"]: e for e in m.events}


def test_seg7_init_and_digits(drivers):
    e = drivers["seg7"]
    # shutdown, test off, no-decode, scan 8 digits, intensity 5, blank digits, run
    assert e["init"] == ["0c00", "0f00", "0900", "0b07", "0a05"] + [
        f"0{d}00" for d in range(1, 9)
    ] + ["0c01"]
    # "A017  03": leftmost digit is register 8 (DIG7); segments DP A B C D E F G.
    assert e["text"] == ["0877", "077e", "0630", "0570", "0400", "0300", "027e", "0179"]
    # "-HELP.?": '-', H, E, L, P with its decimal point, unknown '?' blank, padding blank.
    assert e["other"] == ["0801", "0737", "064f", "050e", "04e7", "0300", "0200", "0100"]


def test_matrix_chain_layout(drivers):
    e = drivers["matrix"]
    assert (e["w"], e["h"]) == (16, 16)
    # Every init frame carries one word per chip (4 chips).
    assert e["init"][:5] == [w * 4 for w in ("0c00", "0f00", "0900", "0b07", "0a03")]
    assert e["init"][-1] == "0c01" * 4
    # Far chip (module 3, bottom right) first; module 0 (top left) last.
    assert e["show"][0] == "0100" + "0100" + "0101" + "0180"
    assert e["show"][1] == "0280" + "0200" + "0200" + "0200"
    assert e["show"][2:] == [f"0{d}00" * 4 for d in range(3, 9)]
    assert e["bright"] == ["0a0f" * 4]


def test_ssd1306_init_and_pages(drivers):
    e = drivers["ssd1306"]
    cmds = [h for a, h in e["init"] if h.startswith("00")]
    assert all(a == 0x3C for a, _ in e["init"] + e["show"] + e["misc"])
    # 128x32: mux 31, sequential COM pins (0x02), charge pump on, horizontal addressing.
    expect = bytes.fromhex("aed580a81fd300408d142000a1c8da0281cfd9f1db30a4a6")
    assert bytes.fromhex("".join(c[2:] for c in cmds[:24])) == expect
    assert cmds[-1] == "00af"  # display on last, after the cleared frame was sent
    show = e["show"]
    assert [h for _, h in show[:6]] == ["0021", "0000", "007f", "0022", "0000", "0003"]
    pages = [bytes.fromhex(h) for _, h in show[6:]]
    assert len(pages) == 4 and all(len(p) == 129 and p[0] == 0x40 for p in pages)
    expect = [bytearray(128) for _ in range(4)]
    expect[0][0] = 0x01  # (0, 0): page 0, bit 0
    expect[1][5] = 0x04  # (5, 10): page 1, bit 2
    expect[3][127] = 0x80  # (127, 31): page 3, bit 7
    assert [p[1:] for p in pages] == [bytes(x) for x in expect]
    assert [h for _, h in e["misc"]] == ["0081", "0010", "00ae", "00af"]


def test_printer_chunked_write(drivers):
    e = drivers["prn_write"]
    assert e["n"] == 200 and e["same"] is True
    # Chunks of 16 offered, 7 accepted, every third write refused (None): all retried.
    assert e["sizes"] == [7, 7, None, 7, 7, None, 7, 7]
    assert e["calls"] == 43  # ceil(200 / 7) = 29 accepting writes + 14 refused
    assert e["ticks"] >= e["calls"]  # the loop ran between chunks
    st = drivers["prn_stall"]
    assert st["raised"] is True and "stalled at 0/3" in st["msg"]


def test_printer_streams_base64_tickets(drivers):
    e = drivers["prn_b64"]
    # Every length (round a quad, round the 63-byte buffer) arrives whole, through a UART
    # that takes 7 bytes a write and refuses every third.
    assert e["ok"] == {str(n): [n, True] for n in (0, 1, 2, 3, 47, 48, 49, 63, 64, 65, 200,
                                                   3000)}
    # A 3 KB ticket allocates no copy of itself (the collector off, so all of it counts):
    # what was a2b_base64's 3 KB result plus the JSON string's slices is under 1 KB.
    n, same, grew = e["alloc"]
    assert n == 3072 and same and grew < 1024, e["alloc"]
    # Not base64: refused before a byte reaches the printer.
    assert set(e["bad"].values()) == {"ValueError, sent 0"}, e["bad"]


def test_printer_status(drivers):
    res = drivers["prn_status"]["res"]
    req = "100401100402100404"
    ok = {"online": True, "paper_out": False, "cover_open": False, "paper_near_end": False}
    assert res["ok"] == [ok, [], req]
    assert res["noisy"] == [ok, [], req]
    assert res["paper_out"] == [
        {"online": False, "paper_out": True, "cover_open": False, "paper_near_end": True},
        ["paper_out"],
        req,
    ]
    assert res["cover_open"] == [
        {"online": False, "paper_out": False, "cover_open": True, "paper_near_end": False},
        ["cover_open"],
        req,
    ]
    assert res["near_end"] == [dict(ok, paper_near_end=True), ["paper_near_end"], req]
    # No answer to DLE EOT 1: give up after the first request.
    assert res["timeout"] == [None, ["printer_offline"], "100401"]
    assert res["partial"] == [None, ["printer_offline"], req]


def test_buzzer(drivers):
    log = drivers["buzz_pwm"]["log"]
    assert log == [
        ["duty", 0],
        ["freq", 1000],
        ["duty", 32768],
        ["duty", 0],
        ["freq", 1319],
        ["duty", 32768],
        ["duty", 0],
        ["freq", 1047],
        ["duty", 32768],
        ["duty", 0],
    ]
    e = drivers["buzz_pin"]
    assert e["vals"] == [0, 1, 0]
    assert e["cancelled"][-1] == ["duty", 0]  # a cancelled beep stops the sound


# --- sim board -----------------------------------------------------------------------


class Ctl:
    def __init__(self, r, w):
        self.r, self.w = r, w

    async def __call__(self, line):
        self.w.write(line.encode() + b"\n")
        await self.w.drain()
        return (await asyncio.wait_for(self.r.readline(), 5)).decode().rstrip("\n")


@contextlib.asynccontextmanager
async def ctl(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield Ctl(r, w)
    finally:
        w.close()


def sim_cfg(tmp_path, role, **kw):
    c = {"dev": "t", "role": role, "board": "sim"}
    c["sim"] = {"ctl_port": quiet_port(), "out_dir": str(tmp_path / "out")}
    c.update(kw)
    return c


def read_pbm(path):
    data = path.read_bytes()
    magic, dims, raster = data.split(b"\n", 2)
    w, h = (int(x) for x in dims.split())
    assert magic == b"P4"
    assert len(raster) == (w + 7) // 8 * h
    return w, h, raster


async def test_sim_box_buttons_and_printer(mp, tmp_path):
    c = sim_cfg(tmp_path, "box", buttons=[{"item": "A", "prefix": "A"}] * 3)
    m = await mp("board_sim.py", c)
    assert (await m.next("sim"))["ctl_port"] == c["sim"]["ctl_port"]
    ready = await m.next("ready")
    assert ready["name"] == "sim" and ready["buttons"] == ["b0", "b1", "b2"]
    assert (await m.next("buttons"))["values"] == {"b0": 0, "b1": 0, "b2": 0}
    # LED events only on change.
    assert [(e["name"], e["on"]) for e in [await m.next("led") for _ in range(3)]] == [
        ("ok", True),
        ("err", True),
        ("err", False),
    ]
    assert not m.pending("led")
    ticket = b"\x1b@hello\n" + bytes(range(256))
    assert (await m.next("uart", pred=lambda e: e["total"] == len(ticket)))["total"] == 264
    out = tmp_path / "out" / "printer.bin"
    assert out.read_bytes() == ticket

    async with ctl(c["sim"]["ctl_port"]) as cmd:
        assert await cmd("press b2") == "ok"
        e = await m.next("btn", pred=lambda e: e["name"] == "b2")
        assert (e["value"], e["raw"]) == (1, 0)  # pressed: Signal 1, raw active-low pin 0
        assert await cmd("release b2") == "ok"
        e = await m.next("btn", pred=lambda e: e["name"] == "b2")
        assert (e["value"], e["raw"]) == (0, 1)
        assert (await cmd("press nope")).startswith("error")
        assert (await cmd("paper sideways")).startswith("error")
        assert (await cmd("fly away")).startswith("error")

        async def status():
            assert await cmd("press b0") == "ok"
            e = await m.next("status")
            assert await cmd("release b0") == "ok"
            await m.next("btn", pred=lambda e: e["name"] == "b0" and e["value"] == 0)
            return e

        e = await status()
        assert e["raw"] == [0x12, 0x12, 0x12] and e["alerts"] == [] and e["rx_left"] == 0
        assert e["status"]["online"] is True
        assert await cmd("paper out") == "ok"
        e = await status()
        assert e["raw"] == [0x1A, 0x32, 0x7E]
        assert e["alerts"] == ["paper_out"] and e["status"]["online"] is False
        assert await cmd("paper ok") == "ok"
        assert await cmd("cover open") == "ok"
        e = await status()
        assert e["raw"] == [0x1A, 0x16, 0x12] and e["alerts"] == ["cover_open"]
        assert await cmd("cover closed") == "ok"
        assert await cmd("paper near") == "ok"
        e = await status()
        assert e["raw"] == [0x12, 0x12, 0x1E] and e["alerts"] == ["paper_near_end"]
        # Every command was echoed on stdout.
        echoed = [(x["cmd"], x["reply"]) for x in m.pending("ctl")]
        assert ("paper out", "ok") in echoed and ("cover open", "ok") in echoed
        assert await cmd("crash") == "ok"
        await m.next("crashed")
    # The status requests went to the printer too: 4 x (driver 1, 2, 4 + raw 1, 2, 4).
    req = b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"
    assert out.read_bytes() == ticket + req * 8


async def test_sim_led_framebuffer_pbm(mp, tmp_path):
    c = sim_cfg(tmp_path, "led")
    m = await mp("board_sim.py", c)
    e = await m.next("fb")
    assert (e["n"], e["w"], e["h"]) == (1, 128, 32)
    w, h, raster = read_pbm(tmp_path / "out" / "fb.pbm")
    assert (w, h) == (128, 32) and raster.hex() == e["hex"]
    rows = [raster[y * 16 : (y + 1) * 16] for y in range(h)]
    # fb.text("A017", 0, 0): text pixels only in the top 8 rows, first 32 columns.
    assert any(any(r[:4]) for r in rows[:8])
    assert not any(any(r[4:]) for r in rows[:8])
    assert all(not any(r) for r in rows[8:28])
    assert all(r == b"\xff" * 16 for r in rows[28:])  # the filled bar
    assert not list((tmp_path / "out").glob("*.tmp"))  # written by rename
    beeps = [await m.next("beep") for _ in range(2)]
    assert [(b["freq"], b["ms"]) for b in beeps] == [(1319, 250), (1047, 450)]
    await m.next("ready")


async def test_sim_hall_size_override_and_seg7(mp, tmp_path):
    c = sim_cfg(tmp_path, "hall")
    c["sim"]["w"], c["sim"]["h"] = 64, 48
    m = await mp("board_sim.py", c)
    e = await m.next("fb")
    assert (e["w"], e["h"]) == (64, 48)
    assert read_pbm(tmp_path / "out" / "fb.pbm")[2].hex() == e["hex"]
    c2 = sim_cfg(tmp_path / "s", "led", display="seg7")
    m2 = await mp("board_sim.py", c2)
    assert (await m2.next("seg7"))["text"] == "A017  03"
    await m2.next("ready")
    assert not [x for x in m2.events if x["ev"] == "fb"]


async def test_sim_keypad_buttons(mp, tmp_path):
    c = sim_cfg(tmp_path, "keypad")
    m = await mp("board_sim.py", c)
    ready = await m.next("ready")
    assert ready["buttons"] == sorted(["call", "recall", "skip", "transfer", "pause", "help"])
    async with ctl(c["sim"]["ctl_port"]) as cmd:
        for name in ("call", "help"):
            assert await cmd(f"press {name}") == "ok"
            assert (await m.next("btn", pred=lambda e, n=name: e["name"] == n))["value"] == 1
            assert await cmd(f"release {name}") == "ok"
            assert (await m.next("btn", pred=lambda e, n=name: e["name"] == n))["value"] == 0
        assert (await cmd("paper out")).startswith("error")  # no printer on a keypad


def test_buttons_debounce_on_micropython():
    """ui.Buttons: a bouncing press is one press, a 1 ms glitch none, two real presses two;
    the queue is bounded; with an IRQ a press is seen in a few ms even with slow polling."""
    import subprocess as _sp

    env = dict(os.environ, MICROPYPATH=micropython_path())
    r = _sp.run([micropython_binary(), str(MP_DIR / "buttons.py")],
                capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["bounce"] == 1 and out["bounce_irq"] == 1
    assert out["glitch"] == 0
    assert out["two"] == 2
    assert out["bounded"] == [8, 4]
    assert out["irq_ms"] <= 10
