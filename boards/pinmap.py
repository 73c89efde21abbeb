# pinmap.py - board pin maps as plain data, with per-board overrides (ESPHome style).
#
# A board file names its default map (PINS: which GPIO does what) and the GPIOs nothing may
# use (its flash or radio pins). One board in the field may differ from its file: an
# ESP32-WROVER module, say, whose GPIO 16/17 belong to the PSRAM, so its printer UART moves.
# That board's ow.json says so under "pins", in the same shape, and only what differs:
#
#   "pins": {"uart": {"tx": 4, "rx": 5}, "buzzer": 15}
#
# merge() applies it once at boot. The components (ow/mcu.py, drivers/) get the merged map
# and never name a GPIO themselves. Runs on MicroPython and CPython (tests).

# name -> what its value is: "bus" a dict of settings, "gpios" a list, "gpio" one pin,
# "shape" a list of sizes (no pins in it).
KINDS = {"spi": "bus", "i2c": "bus", "uart": "bus", "buttons": "gpios", "leds": "gpios",
         "buzzer": "gpio", "matrix": "shape"}
# The settings of a bus that are GPIOs (the others are ids, clocks and addresses).
BUS_PINS = {"spi": ("sck", "mosi", "miso", "cs"), "i2c": ("sda", "scl"), "uart": ("tx", "rx")}


def _gpio(where, v, gpios, reserved):
    if not isinstance(v, int) or isinstance(v, bool) or v not in gpios:
        raise ValueError("pins.%s: %r is not a GPIO of this chip" % (where, v))
    if v in reserved:
        raise ValueError("pins.%s: GPIO %d is reserved on this board" % (where, v))


def merge(base, overrides=None, gpios=range(0, 40), reserved=()):
    """`base` with `overrides` applied (a bus's settings merge key by key; anything else is
    replaced whole), checked: known names only, every GPIO one of `gpios` and not one of
    `reserved`. Raises ValueError naming the first bad entry."""
    pins = {}
    for name, v in base.items():
        pins[name] = dict(v) if KINDS.get(name) == "bus" else v
    for name, v in (overrides or {}).items():
        kind = KINDS.get(name)
        if kind is None:
            raise ValueError("pins.%s: unknown (one of %s)" % (name, ", ".join(sorted(KINDS))))
        if kind == "bus":
            if not isinstance(v, dict):
                raise ValueError("pins.%s: a dict of settings" % name)
            pins[name].update(v)
        else:
            pins[name] = tuple(v) if isinstance(v, list) else v
    for name, v in pins.items():
        kind = KINDS.get(name)
        if kind == "bus":
            for key in BUS_PINS[name]:
                if key in v:
                    _gpio(name + "." + key, v[key], gpios, reserved)
        elif kind == "gpios":
            for i, g in enumerate(v):
                _gpio("%s[%d]" % (name, i), g, gpios, reserved)
        elif kind == "gpio":
            _gpio(name, v, gpios, reserved)
    return pins
