# ruff: noqa: B905
# (MicroPython code: its zip() has no strict= argument.)
# pico_w.py - Raspberry Pi Pico W (RP2040 + CYW43439 Wi-Fi).
#
# GP23, GP24, GP25 and GP29 belong to the wireless chip; GP0/GP1 (UART0) are left free
# for a debug console. Pins are per role: one board is only ever one role.
#
#   role    what                          pins
#   led     MAX7219 chain on SPI0         SCK GP18, MOSI GP19, CS GP17
#           16 x 4 modules = 128 x 32 px  (cfg "display": "seg7" -> one 8-digit MAX7219)
#   hall    SSD1306 128x64 OLED, I2C0     SDA GP20, SCL GP21, 400 kHz, address 0x3C
#   box     ESC/POS printer on UART1      TX GP4 -> printer RX, RX GP5 <- printer TX
#           buttons b0..b3 (active low)   GP10, GP11, GP12, GP13
#   keypad  call recall skip transfer     GP10 .. GP15   (active low, pull-up)
#           pause help
#   box, keypad  LEDs ok err busy         GP6, GP7, GP8  (active high, via 330 R)
#   led, hall, keypad  buzzer (passive)   GP16, PWM
#
# The RP2040 watchdog allows at most 8388 ms; longer requests are clamped.
# machine and network are imported inside functions so this file compiles and
# type-checks anywhere.

import asyncio
import json
import time

import framebuf
from micropython import const

# Pin map as plain data (ESPHome style): change a pin here, never in a driver.
# BUTTONS are in board button order: b0.. for a box, _KEYPAD order for a keypad.
SPI_PINS = {"id": 0, "sck": 18, "mosi": 19, "cs": 17, "baud": 10_000_000}
I2C_PINS = {"id": 0, "sda": 20, "scl": 21, "freq": 400_000}
UART_PINS = {"id": 1, "tx": 4, "rx": 5}
BUTTONS = (10, 11, 12, 13, 14, 15)
LEDS = (6, 7, 8)  # ok, err, busy
BUZZER = 16
MATRIX = (64, 4)  # modules, rows: 128 x 32 px

_KEYPAD = ("call", "recall", "skip", "transfer", "pause", "help")
_LEDS = ("ok", "err", "busy")
_WDT_MAX_MS = const(8388)
_WIFI_TIMEOUT_MS = const(15000)
_BACKOFF_MAX_MS = const(60000)


def emit(ev, **fields):
    fields["ev"] = ev
    print(json.dumps(fields))


class Board:
    name = "pico-w"

    def __init__(self, cfg):
        from machine import I2C, PWM, SPI, UART, Pin, Signal

        role = cfg.get("role")
        self.role = role
        self.poll_ms = 5  # with ui.Buttons' 2-sample filter: a press is seen in 5-10 ms
        self.fb: "framebuf.FrameBuffer | None" = None
        self.seg7 = None
        self.buttons = None
        self._raw: list = []
        self.leds = None
        self.uart = None
        self.buzzer = None
        self._wlan = None
        if role == "led":
            s = SPI_PINS
            spi = SPI(s["id"], baudrate=s["baud"], sck=Pin(s["sck"]), mosi=Pin(s["mosi"]))
            cs = Pin(s["cs"], Pin.OUT, value=1)
            if cfg.get("display") == "seg7":
                from drivers.max7219 import Seg7

                self.seg7 = Seg7(spi, cs)
            else:
                from drivers.max7219 import Matrix

                self.fb = Matrix(spi, cs, MATRIX[0], MATRIX[1])
        elif role == "hall":
            from drivers.ssd1306 import SSD1306_I2C

            i = I2C_PINS
            i2c = I2C(i["id"], sda=Pin(i["sda"]), scl=Pin(i["scl"]), freq=i["freq"])
            self.fb = SSD1306_I2C(128, 64, i2c)
        if role == "box":
            u = UART_PINS
            baud = (cfg.get("printer") or {}).get("baud", 9600)
            self.uart = UART(
                u["id"],
                baudrate=baud,
                tx=Pin(u["tx"]),
                rx=Pin(u["rx"]),
                txbuf=1024,
                rxbuf=256,
                timeout=0,
            )
            names = ["b%d" % i for i in range(min(len(cfg.get("buttons") or ()) or 4, 4))]
        elif role == "keypad":
            names = list(_KEYPAD)
        else:
            names = []
        if names:
            self._raw = [Pin(g, Pin.IN, Pin.PULL_UP) for g in BUTTONS[: len(names)]]
            self.buttons = {n: Signal(p, invert=True) for n, p in zip(names, self._raw)}
        if role in ("box", "keypad"):
            self.leds = {n: Pin(g, Pin.OUT, value=0) for n, g in zip(_LEDS, LEDS)}
        if role in ("led", "hall", "keypad"):
            from drivers.buzzer import Buzzer

            pwm = PWM(Pin(BUZZER))
            pwm.freq(2000)
            self.buzzer = Buzzer(pwm)
        # dump_config: log what this board is, once at boot.
        emit("board", name=self.name, role=role, spi=SPI_PINS, i2c=I2C_PINS, uart=UART_PINS)

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

        return WDT(timeout=min(timeout_ms, _WDT_MAX_MS))

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
        if w.get("country"):
            network.country(w["country"])  # regulatory domain before the radio starts
        sta = network.WLAN(network.STA_IF)
        self._wlan = sta
        sta.active(True)
        try:
            # The CYW43 power-save mode adds up to ~100 ms latency and drops MQTT links.
            sta.config(pm=sta.PM_NONE)
        except (AttributeError, ValueError):
            pass
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


def make(cfg):
    return Board(cfg)
