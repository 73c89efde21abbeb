"""Hardware-in-the-loop fixtures: a whole centre on real parts.

By default every board is the real firmware on the MicroPython unix port with the sim
board (pins, panels and the printer UART simulated, everything else real: Mosquitto, the
hub process, MQTT, the journal). `--port /dev/ttyUSB0` points the real-board tests at an
attached board instead.
"""

from __future__ import annotations

import pytest

from onewindow.tools.testkit.fwsim import SimCentre


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--port", default=None,
                     help="serial port of a real OneWindow board (e.g. /dev/ttyUSB0)")


@pytest.fixture
def board_port(request: pytest.FixtureRequest) -> str:
    port = request.config.getoption("--port")
    if not port:
        pytest.skip("no real board attached: run with --port /dev/ttyUSB0 to test one")
    return port


@pytest.fixture
async def centre(tmp_path):
    c = SimCentre(tmp_path)
    try:
        await c.start()
        yield c
    finally:
        await c.stop()
