"""Ports for the test kit's servers (Mosquitto, the hub's web side, the sim boards' control
port): chosen below the kernel's ephemeral range. A port picked by binding port 0 lies in
that range, and in a full suite run some client's outgoing connection took one between the
moment it was picked and the moment its server bound it (CI: a sim board's EADDRINUSE, a
hub whose web port was gone)."""

from __future__ import annotations

import collections
import os
import random
import socket

from ...hub.mqtt.broker import free_port

# Ports this process handed out lately. A port is only probed, then released for its server
# to bind later, so two servers of one test picked before either binds (a sim centre's
# boards) could be given the same port: CI saw a keypad's control server fail with
# EADDRINUSE. Ports are not handed out again while they are in this window.
_RECENT: collections.deque[int] = collections.deque(maxlen=1024)


def quiet_port(low: int = 20000, pair: bool = False) -> int:
    """A free port below the kernel's ephemeral range: no outgoing connection can hold it
    as its local port, so a server stopped for a while (an outage test) can bind it again
    on a machine busy with other tests' connections. `pair`: the next port is free too (an
    embedded broker with only `embedded_port` set puts the hub's listener there)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = int(f.read().split()[0])
    except (OSError, ValueError):
        return free_port()
    low, high = _my_slice(low, high)
    for _ in range(200):
        port = random.randrange(low, high - 1)
        if port in _RECENT or (pair and port + 1 in _RECENT):
            continue
        with socket.socket() as s, socket.socket() as after:
            try:
                s.bind(("127.0.0.1", port))
                if pair:
                    after.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        _RECENT.append(port)
        if pair:
            _RECENT.append(port + 1)
        return port
    return free_port()


def _my_slice(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's own part of [low, high): a port one worker's outage test
    leaves unbound while its server is down must not be picked by the other worker (CI
    saw a hub's web port taken that way). The whole range outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or not worker[2:].isdigit() or count < 2:
        return low, high
    k, step = int(worker[2:]) % count, (high - low) // count
    return low + k * step, low + (k + 1) * step
