# ruff: noqa: B905
# (MicroPython code: its zip() has no strict= argument.)
# The board interface (firmware/README.md) on a real microcontroller, built from a board
# file's pin map: the displays, buttons, LEDs, printer UART and buzzer each role needs,
# the watchdog, and Wi-Fi with backoff. A board file (boards/esp32_devkitc.py,
# boards/pico_w.py) is its pins as data plus the few calls where its port differs.
# machine and network are imported inside functions so this compiles and type-checks
# anywhere.

import asyncio
import json
import time

import framebuf
from micropython import const

KEYPAD = ("call", "recall", "skip", "transfer", "pause", "help")
LEDS = ("ok", "err", "busy")
_WIFI_TIMEOUT_MS = const(15000)
_BACKOFF_MAX_MS = const(60000)


def emit(ev, **fields):
    fields["ev"] = ev
    print(json.dumps(fields))


class McuBoard:
    """`pins`: {"spi", "i2c", "uart": dicts; "buttons", "leds": tuples of GPIOs in board
    order; "buzzer": GPIO; "matrix": (modules, rows)}."""

    name = "mcu"
    wdt_max_ms = 0  # > 0: the chip's watchdog cannot wait longer (requests are clamped)

    def __init__(self, cfg, pins):
        from machine import I2C, SPI, Pin, Signal

        role = cfg.get("role")
        self.role = role
        self.pins = pins
        self.poll_ms = 5  # the fallback scan; pin IRQs wake ui.Buttons at once
        self.fb: "framebuf.FrameBuffer | None" = None
        self.seg7 = None
        self.buttons = None
        self._raw: list = []
        self.leds = None
        self.uart = None
        self.buzzer = None
        self._wlan = None
        if role == "led":
            s = pins["spi"]
            spi = SPI(s["id"], baudrate=s["baud"], sck=Pin(s["sck"]), mosi=Pin(s["mosi"]))
            cs = Pin(s["cs"], Pin.OUT, value=1)
            if cfg.get("display") == "seg7":
                from drivers.max7219 import Seg7

                self.seg7 = Seg7(spi, cs)
            else:
                from drivers.max7219 import Matrix

                self.fb = Matrix(spi, cs, pins["matrix"][0], pins["matrix"][1])
        elif role == "hall":
            from drivers.ssd1306 import SSD1306_I2C

            i = pins["i2c"]
            i2c = I2C(i["id"], sda=Pin(i["sda"]), scl=Pin(i["scl"]), freq=i["freq"])
            self.fb = SSD1306_I2C(128, 64, i2c)
        names: list = []
        if role == "box":
            self.uart = self.make_uart((cfg.get("printer") or {}).get("baud", 9600))
            n = len(cfg.get("buttons") or ()) or 4
            prio = cfg.get("priority_button") or ""  # "bN": the box's priority button
            if prio[1:].isdigit():
                n = max(n, int(prio[1:]) + 1)
            names = ["b%d" % i for i in range(min(n, 4))]
        elif role == "keypad":
            names = list(KEYPAD)
        if names:
            self._raw = [Pin(g, Pin.IN, Pin.PULL_UP) for g in pins["buttons"][: len(names)]]
            self.buttons = {n: Signal(p, invert=True) for n, p in zip(names, self._raw)}
        if role in ("box", "keypad"):
            self.leds = {n: Pin(g, Pin.OUT, value=0) for n, g in zip(LEDS, pins["leds"])}
        if role in ("led", "hall", "keypad"):
            from drivers.buzzer import Buzzer

            self.buzzer = Buzzer(self.make_pwm(pins["buzzer"]))
        # dump_config: log what this board is, once at boot.
        emit("board", name=self.name, role=role, spi=pins["spi"], i2c=pins["i2c"],
             uart=pins["uart"])

    # ---- where ports differ: a board file overrides these ------------------------------
    def make_uart(self, baud):
        from machine import UART

        u = self.pins["uart"]
        return UART(u["id"], baudrate=baud, tx=u["tx"], rx=u["rx"], txbuf=1024, rxbuf=256,
                    timeout=0)

    def make_pwm(self, gpio):
        from machine import PWM, Pin

        pwm = PWM(Pin(gpio))
        pwm.freq(2000)
        pwm.duty_u16(0)
        return pwm

    def before_connect(self, sta, wifi):
        """Port-specific radio set-up before joining (regulatory domain, power save)."""

    # ---- the board interface -----------------------------------------------------------
    def emit(self, ev, **fields):
        emit(ev, **fields)

    def button_irq(self, handler):
        """Call handler() on any edge of any button: the scanner wakes at once instead of
        at its next poll (ui.Buttons still debounces)."""
        from machine import Pin

        for p in self._raw:
            p.irq(handler=lambda _p: handler(), trigger=Pin.IRQ_FALLING | Pin.IRQ_RISING)

    def wdt(self, timeout_ms):
        from machine import WDT

        if self.wdt_max_ms:
            timeout_ms = min(timeout_ms, self.wdt_max_ms)
        return WDT(timeout=timeout_ms)

    def reset(self):
        import machine

        machine.reset()

    def rssi(self):
        w = self._wlan
        try:
            return w.status("rssi") if w is not None and w.isconnected() else None
        except (OSError, ValueError):
            return None

    async def network_up(self, cfg):
        """Connect to cfg["wifi"]; retries with exponential backoff until connected."""
        import network

        w = cfg.get("wifi") or {}
        sta = network.WLAN(network.STA_IF)
        self._wlan = sta
        self.before_connect(sta, w)
        sta.active(True)
        delay = 1000
        while not sta.isconnected():
            sta.connect(w.get("ssid", ""), w.get("password", ""))
            t0 = time.ticks_ms()
            while not sta.isconnected():
                if time.ticks_diff(time.ticks_ms(), t0) > _WIFI_TIMEOUT_MS:
                    break
                await asyncio.sleep_ms(200)
            else:
                break
            emit("wifi_retry", status=sta.status(), delay_ms=delay)
            sta.disconnect()
            await asyncio.sleep_ms(delay)
            delay = min(delay * 2, _BACKOFF_MAX_MS)
        emit("wifi", ip=sta.ifconfig()[0], rssi=self.rssi())
