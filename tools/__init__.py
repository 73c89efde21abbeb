"""The product's commands: `onewindow flash` and `devices` (with `hubmqtt`, how they reach the
centre's broker), `onewindow demo` (`demo/`, its devices `simdevice`), board images
(`firmware`) and `dev.sh`.

Beside them, two other audiences: `testkit/` (test support: real peers and stand-in hardware
for the tests and the benchmarks) and `bench/` (measurement: the runs whose tables are in
docs/benchmarks.md). Imports go one way: `bench` uses `testkit` and the commands, `testkit` uses
the commands, and no command imports either.
"""
