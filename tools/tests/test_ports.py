"""The test kit's port picker: ports are only probed and released, their servers bind them
later, so one process must never be handed the same port twice in a short while (CI: a
sim centre's two keypads given one control port, the second failing with EADDRINUSE)."""

from __future__ import annotations

import socket

from onewindow.tools.testkit import ports


def test_many_picks_before_any_bind_are_all_different(monkeypatch) -> None:
    # A narrow slice makes a repeat near certain without the recency window: 400 picks
    # from 600 ports repeat with probability ~1 - e^(-400*399/1200).
    monkeypatch.setattr(ports, "_my_slice", lambda low, high: (41000, 41600))
    monkeypatch.setattr(ports, "_RECENT", ports.collections.deque(maxlen=1024))
    picked = [ports.quiet_port() for _ in range(400)]
    assert len(set(picked)) == len(picked)
    assert all(41000 <= p < 41600 for p in picked)


def test_a_pair_keeps_both_ports_from_later_picks(monkeypatch) -> None:
    monkeypatch.setattr(ports, "_my_slice", lambda low, high: (41700, 41760))
    monkeypatch.setattr(ports, "_RECENT", ports.collections.deque(maxlen=1024))
    first = ports.quiet_port(pair=True)
    later = {ports.quiet_port() for _ in range(40)}
    assert first not in later and first + 1 not in later


def test_a_port_in_use_is_never_picked(monkeypatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        monkeypatch.setattr(ports, "_my_slice", lambda low, high: (port, port + 2))
        monkeypatch.setattr(ports, "_RECENT", ports.collections.deque(maxlen=1024))
        assert ports.quiet_port() != port
