# boards/pinmap.py on the unix port: the real boards' maps pass their own checks, and an
# ow.json "pins" override merges or is refused. One JSON line per case for test_boards.py.
import json

from boards import esp32_devkitc, pico_w, pinmap


def case(board, overrides):
    try:
        pins = pinmap.merge(board.PINS, overrides, board.GPIOS, board.RESERVED)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in pins.items()}
    except ValueError as e:
        return "ValueError: %s" % e


out = {
    "esp32": case(esp32_devkitc, None),
    "pico": case(pico_w, {}),
    "wrover": case(esp32_devkitc, {"uart": {"tx": 4, "rx": 5}, "buzzer": 15}),
    "buttons": case(pico_w, {"buttons": [2, 3, 9, 10, 11, 12]}),
    "unknown": case(esp32_devkitc, {"lcd": {"sda": 1}}),
    "flash_pin": case(esp32_devkitc, {"uart": {"tx": 6}}),
    "radio_pin": case(pico_w, {"leds": [6, 7, 23]}),
    "no_such_gpio": case(pico_w, {"buzzer": 30}),
    "not_a_number": case(esp32_devkitc, {"spi": {"sck": "18"}}),
    "bool": case(esp32_devkitc, {"buzzer": True}),
    "bus_not_dict": case(esp32_devkitc, {"i2c": 21}),
}
# The merge copies: the board file's own map is unchanged by an override.
out["base_kept"] = esp32_devkitc.PINS["uart"] == {"id": 2, "tx": 17, "rx": 16}
print(json.dumps(out))
