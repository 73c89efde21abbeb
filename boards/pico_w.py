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
# Everything else (which driver for which role, Wi-Fi, the watchdog) is firmware/ow/mcu.py.

from micropython import const
from ow.mcu import McuBoard

from boards import pinmap

# Pin map as plain data (ESPHome style): change a pin here, never in a driver; one board
# that differs says so in its ow.json "pins" (boards/pinmap.py).
# BUTTONS are in board button order: b0.. for a box, ow.mcu.KEYPAD order for a keypad.
SPI_PINS = {"id": 0, "sck": 18, "mosi": 19, "cs": 17, "baud": 10_000_000}
I2C_PINS = {"id": 0, "sda": 20, "scl": 21, "freq": 400_000}
UART_PINS = {"id": 1, "tx": 4, "rx": 5}
BUTTONS = (10, 11, 12, 13, 14, 15)
LEDS = (6, 7, 8)  # ok, err, busy
BUZZER = 16
MATRIX = (64, 4)  # modules, rows: 128 x 32 px
PINS = {"spi": SPI_PINS, "i2c": I2C_PINS, "uart": UART_PINS, "buttons": BUTTONS, "leds": LEDS,
        "buzzer": BUZZER, "matrix": MATRIX}
GPIOS = range(0, 30)
RESERVED = (23, 24, 25, 29)  # the wireless chip's
_WDT_MAX_MS = const(8388)


class Board(McuBoard):
    name = "pico-w"
    wdt_max_ms = _WDT_MAX_MS

    def make_uart(self, baud):
        from machine import UART, Pin

        u = self.pins["uart"]  # the RP2 port wants Pin objects for tx/rx
        return UART(u["id"], baudrate=baud, tx=Pin(u["tx"]), rx=Pin(u["rx"]), txbuf=1024,
                    rxbuf=256, timeout=0)

    def before_connect(self, sta, wifi):
        import network

        if wifi.get("country"):
            network.country(wifi["country"])  # regulatory domain before the radio starts
        sta.active(True)
        try:
            # The CYW43 power-save mode adds up to ~100 ms latency and drops MQTT links.
            sta.config(pm=sta.PM_NONE)
        except (AttributeError, ValueError):
            pass


def make(cfg):
    return Board(cfg, pinmap.merge(PINS, cfg.get("pins"), GPIOS, RESERVED))
