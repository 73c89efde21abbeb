"""Benchmark: the broker's topic checks, run on every message a device sends or receives.

    python -m onewindow.tools.bench.bench_acl [--n 100000]

A device's grant (hub/fleet/acl.py) is asked `may_publish` for each message it sends,
`may_receive` for each it would get and `may_subscribe` for each SUBSCRIBE. Budget: a few
microseconds a check (a centre's busiest minute is a few thousand messages). Prints a table
of µs per check, allowed and refused topics separately (a refusal walks every filter).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from ...hub.devices import DeviceSpec
from ...hub.fleet.acl import device_grant
from ...protocol import ow_protocol as proto

CENTRE = "c1"


def _per_call_us(fn: Callable[[str], bool], arg: str, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn(arg)
    return (time.perf_counter() - t0) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="checks per row")
    args = parser.parse_args(argv)
    grant = device_grant(CENTRE, DeviceSpec("led-1", "led", 1))
    own_evt = proto.device_topic(CENTRE, "led-1", "evt")
    other_evt = proto.device_topic(CENTRE, "kp-9", "evt")
    rows = [
        ("may_publish", "own evt (allowed)", grant.may_publish, own_evt),
        ("may_publish", "another's evt (refused)", grant.may_publish, other_evt),
        ("may_receive", "own cmd (allowed)", grant.may_receive,
         proto.device_topic(CENTRE, "led-1", "cmd")),
        ("may_receive", "another's cmd (refused)", grant.may_receive,
         proto.device_topic(CENTRE, "kp-9", "cmd")),
        ("may_subscribe", "own cmd (allowed)", grant.may_subscribe,
         proto.device_topic(CENTRE, "led-1", "cmd")),
        ("may_subscribe", f"ow/{CENTRE}/# (refused)", grant.may_subscribe, f"ow/{CENTRE}/#"),
    ]
    assert grant.may_publish(own_evt) and not grant.may_publish(other_evt)  # checks the right thing
    print(f"topic checks of one LED board's grant, {args.n} calls each\n")
    print(f"{'check':<14} {'topic':<28} {'µs/check':>9}")
    for check, what, fn, topic in rows:
        print(f"{check:<14} {what:<28} {_per_call_us(fn, topic, args.n):>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
