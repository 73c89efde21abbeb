# esp32_devkitc.py - Espressif ESP32-DevKitC (ESP32-WROOM-32, 4 MB flash, no PSRAM).
#
# Pins avoid the strapping pins (0, 2, 5, 12, 15), the flash pins (6-11) and the
# input-only pins 34-39 (no internal pull-ups). GPIO 16/17 are free on WROOM-32
# (on a WROVER module they belong to the PSRAM: move the printer UART there).
# Pins are per role: one board is only ever one role.
#
#   role    what                          pins
#   led     MAX7219 chain on SPI2 (VSPI)  SCK 18, MOSI 23, CS 4   (MISO 19 unused)
#           16 x 4 modules = 128 x 32 px  (cfg "display": "seg7" -> one 8-digit MAX7219)
#   hall    SSD1306 128x64 OLED, I2C0     SDA 21, SCL 22, 400 kHz, address 0x3C
#   box     ESC/POS printer on UART2      TX 17 -> printer RX, RX 16 <- printer TX
#           buttons b0..b3 (active low)   32, 33, 25, 26
#   keypad  call recall skip transfer     32, 33, 25, 26, 27, 14   (active low, pull-up)
#           pause help
#   box, keypad  LEDs ok err busy         21, 22, 19  (active high, via 330 R)
#   led, hall, keypad  buzzer (passive)   13, PWM
#
# Everything else (which driver for which role, Wi-Fi, the watchdog) is firmware/ow/mcu.py.

from ow.mcu import McuBoard

from boards import pinmap

# Pin map as plain data (ESPHome style): change a pin here, never in a driver; one board
# that differs says so in its ow.json "pins" (boards/pinmap.py).
# BUTTONS are in board button order: b0.. for a box, ow.mcu.KEYPAD order for a keypad.
SPI_PINS = {"id": 2, "sck": 18, "mosi": 23, "cs": 4, "baud": 10_000_000}
I2C_PINS = {"id": 0, "sda": 21, "scl": 22, "freq": 400_000}
UART_PINS = {"id": 2, "tx": 17, "rx": 16}
BUTTONS = (32, 33, 25, 26, 27, 14)
LEDS = (21, 22, 19)  # ok, err, busy
BUZZER = 13
MATRIX = (64, 4)  # modules, rows: 128 x 32 px (16 px CJK line + 8 px ASCII line + spare)
PINS = {"spi": SPI_PINS, "i2c": I2C_PINS, "uart": UART_PINS, "buttons": BUTTONS, "leds": LEDS,
        "buzzer": BUZZER, "matrix": MATRIX}
GPIOS = range(0, 40)
RESERVED = (6, 7, 8, 9, 10, 11)  # the module's SPI flash


class Board(McuBoard):
    name = "esp32-devkitc"

    def make_pwm(self, gpio):
        from machine import PWM, Pin

        return PWM(Pin(gpio), freq=2000, duty_u16=0)  # ESP32's PWM takes both at once


def make(cfg):
    return Board(cfg, pinmap.merge(PINS, cfg.get("pins"), GPIOS, RESERVED))
