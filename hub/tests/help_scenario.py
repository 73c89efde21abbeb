"""Three days of help requests, answers and ratings at a two-window centre, with the cases
that make their state interesting: a ticket served across midnight and rated before it (its
second rating must still be refused after the day's close), one rated only after midnight,
a help request that is a new day's first record, one left open for two days, answers on a
later day, refusals that are not journaled.

`help_ratings_v3.json` holds what the hub wrote and showed for this scenario before help
and ratings moved into the core (journal, snapshots at format version 3, and what each
journal position looked like); test_help_compat.py checks today's hub against it. The
console's help and answer are the driver's (`Drive.help`, `Drive.answer`): their command
classes lived in hub/app.py then, in hub/core/help_requests.py now.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from onewindow.hub.core.catalog import Catalog
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry

CST = dt.timezone(dt.timedelta(hours=8))
CATALOG: dict[str, Any] = {
    "version": 1,
    "centre_name": {"zh": "测试中心", "en": "Test centre"},
    "window_kinds": [{"id": "comprehensive", "zh": "综合", "en": "comprehensive"}],
    "lines": [{"id": "soc", "zh": "社保", "en": "Social", "prefix": "A"},
              {"id": "med", "zh": "医保", "en": "Medical", "prefix": "B"}],
    "items": [
        {"id": i, "line": line, "zh": f"事项{i}", "en": f"Item {i}", "kind": "instant",
         "promised_days": 0, "minutes": m, "weight": 1.0, "window_kinds": ["comprehensive"],
         "materials": [], "related": []}
        for i, line, m in (("SOC-1", "soc", 5), ("MED-1", "med", 3))
    ],
}


def catalog() -> Catalog:
    return Catalog.from_dict(CATALOG)


def config() -> CentreConfig:
    return CentreConfig("t1", (WindowSpec(1), WindowSpec(2)))


def registry() -> Registry:
    return Registry([DeviceSpec("node-1", "node", 1), DeviceSpec("kp-2", "keypad", 2),
                     DeviceSpec("box-1", "box")])


def at(day: int, hour: int, minute: int) -> float:
    """Epoch seconds of `day` (0: Monday 2026-11-23) at hour:minute in China."""
    return dt.datetime(2026, 11, 23 + day, hour, minute, tzinfo=CST).timestamp()


class Drive(Protocol):
    """What the scenario does: device events, the console's help and answer, snapshots."""

    def evt(self, dev: str, typ: str, now: float, **fields: Any) -> tuple[str, dict[str, Any]]:
        ...

    def help(self, label: str, window: int, clerk: str, now: float) -> None: ...

    def answer(self, label: str, by: str, now: float) -> None: ...

    def snap(self, label: str) -> None: ...


def scenario(d: Drive) -> None:
    """Each `evt` returns the device's answer; the expected leaf is checked here so that a
    drift in the scenario itself shows at once."""

    def ok(dev: str, typ: str, now: float, **fields: Any) -> dict[str, Any]:
        leaf, msg = d.evt(dev, typ, now, **fields)
        assert leaf == "res", (dev, typ, msg)
        return msg

    def refused(dev: str, typ: str, now: float, code: str, **fields: Any) -> None:
        leaf, msg = d.evt(dev, typ, now, **fields)
        assert (leaf, msg.get("code")) == ("err", code), (dev, typ, msg)

    # Monday
    for item, m in (("SOC-1", 0), ("SOC-1", 0), ("SOC-1", 0), ("MED-1", 1), ("SOC-1", 2)):
        ok("box-1", "take", at(0, 9, m), item=item)
    ok("node-1", "open", at(0, 9, 0), clerk="alice")
    ok("kp-2", "open", at(0, 9, 0), clerk="bob")
    first = ok("node-1", "call", at(0, 9, 5))["ticket"]
    ok("node-1", "start", at(0, 9, 6))
    ok("node-1", "complete", at(0, 9, 15))
    ok("node-1", "rate", at(0, 9, 16), ticket=first, score=1)
    refused("node-1", "rate", at(0, 9, 17), "already_rated", ticket=first, score=3)
    second = ok("kp-2", "call", at(0, 9, 10))["ticket"]
    ok("kp-2", "complete", at(0, 9, 20))
    ok("kp-2", "rate", at(0, 9, 21), ticket=second, score=3)
    ok("kp-2", "help", at(0, 10, 0))
    d.help("console-1", 1, "alice", at(0, 10, 5))
    d.answer("kp-2@10:00", "li", at(0, 10, 7))
    ok("kp-2", "help", at(0, 10, 10))  # left open until Wednesday
    refused("node-1", "rate", at(0, 10, 12), "not_served", ticket="B001", score=2)
    late = ok("node-1", "call", at(0, 23, 50))["ticket"]
    ok("node-1", "start", at(0, 23, 51))
    ok("node-1", "rate", at(0, 23, 55), ticket=late, score=2)  # rated, served past midnight
    overnight = ok("kp-2", "call", at(0, 23, 56))["ticket"]
    ok("kp-2", "start", at(0, 23, 57))
    d.snap("monday-late")
    # Tuesday: a help request is the day's first record
    ok("kp-2", "help", at(1, 0, 1))
    d.snap("tuesday-first")
    refused("node-1", "rate", at(1, 0, 2), "already_rated", ticket=f"{_day(0)}-{late}",
            score=3)
    ok("kp-2", "rate", at(1, 0, 3), ticket=f"{_day(0)}-{overnight}", score=1)  # closes Monday
    d.answer("kp-2@00:01", "li", at(1, 0, 4))
    d.answer("console-1", "zhou", at(1, 0, 5))  # Monday's, answered on Tuesday
    ok("node-1", "complete", at(1, 8, 30))
    ok("kp-2", "complete", at(1, 8, 31))
    ok("box-1", "take", at(1, 9, 0), item="SOC-1")
    today = ok("node-1", "call", at(1, 9, 5))["ticket"]
    ok("node-1", "start", at(1, 9, 6))
    ok("node-1", "complete", at(1, 9, 10))
    refused("kp-2", "rate", at(1, 9, 11), "served_elsewhere", ticket=today, score=2)
    ok("node-1", "rate", at(1, 9, 12), ticket=today, score=1)
    d.help("console-2", 1, "alice", at(1, 9, 30))
    d.snap("tuesday-day")
    # Wednesday
    ok("box-1", "take", at(2, 9, 0), item="MED-1")  # closes Tuesday
    d.answer("kp-2@10:10", "li", at(2, 9, 5))
    d.answer("console-2", "li", at(2, 9, 6))
    ok("kp-2", "help", at(2, 9, 7))


def _day(k: int) -> str:
    return dt.datetime.fromtimestamp(at(k, 12, 0), CST).strftime("%Y%m%d")
