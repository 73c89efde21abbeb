"""Test support: the real peers and stand-in hardware the tests and the benchmarks run against.

Nothing here is a product command, and nothing under `tools/` outside `testkit/` and `bench/`
imports it. `testbed` (a private Mosquitto, PostgreSQL and `onewindow hub` process), `fwsim`
(the firmware on the MicroPython unix port, and a whole simulated centre of boards),
`ptyboard` (a board on a serial port for `onewindow flash`), `vcard` (a smart card for the
virtual reader), `heapbudget` (every role with an ESP32's heap), and the set-up steps
`tools/dev.sh test` runs: `mpbuild` (the 32-bit unix port) and `stubs` (the MicroPython port
stubs of the firmware type check). The simulated device (`tools/simdevice.py`) is not here:
`onewindow demo` runs it too.
"""
