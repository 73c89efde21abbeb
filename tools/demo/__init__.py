"""`onewindow demo`: a whole simulated centre's day on this machine, with no setup: the real
hub on its embedded broker, every device a `SimDevice` over MQTT, the people the
simulator's, time `speed` times faster than real time.

    scenario.py   the day: its date and clock, the window layout, the hub's configuration
    actuation.py  the engine's hands: each command sent as its device's event to the hub
    view.py       the terminal: the live screen, progress lines, the summary
    run.py        the command: hub, devices and people started, watched, stopped

The statistics on the screen are the simulator's (hub/sim/metrics.py).
"""

from .actuation import Actuator, Simulation, device_event
from .run import DemoRun, run_demo
from .scenario import (
    CENTRE_ID,
    MAX_AHEAD,
    REOPEN_AT,
    START,
    Plan,
    SimClock,
    clerk_names,
    demo_config,
    demo_day,
    plan,
)

__all__ = [
    "CENTRE_ID",
    "MAX_AHEAD",
    "REOPEN_AT",
    "START",
    "Actuator",
    "DemoRun",
    "Plan",
    "SimClock",
    "Simulation",
    "clerk_names",
    "demo_config",
    "demo_day",
    "device_event",
    "plan",
    "run_demo",
]
