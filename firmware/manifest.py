# manifest.py - the firmware frozen into a MicroPython image (micropython-lib style).
#
# Frozen modules run their bytecode from the image (flash) instead of the heap: freezing
# saves each role ~26 KB of a board's ~112 KB heap (docs/benchmarks.md, firmware heap).
# A board's own manifest includes this one beside the port's, naming its board file:
#
#   include("$(PORT_DIR)/boards/manifest.py")            # the port's asyncio, ssl, ...
#   include("/path/to/onewindow/firmware/manifest.py", board="esp32_devkitc")
#
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/that/manifest.py
#
# `python -m onewindow.tools.testkit.mpbuild` does the same for the unix port (board="sim").
# The loader (main.py) is not frozen: it stays a file on the flash, and it puts /app in front
# of the frozen modules, so an over-the-air update (which writes /app) overrides them and
# loads into RAM until the next image.
# ruff: noqa: F821  (metadata, options, package, module: the manifest's own functions)

options.defaults(board="sim")
metadata(description="OneWindow queue-management firmware", version="0.2.0")

module("owmqtt.py", base_path="lib")
module("ow_protocol.py", base_path="../protocol")
module("ow_device.py", base_path="../protocol")
package("ow")
package("drivers")
package("boards", files=["__init__.py", "pinmap.py", options.board + ".py"], base_path="..")
