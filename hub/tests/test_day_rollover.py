""""Rejected changes nothing" across local midnight: the first command of a new day that
the core refuses must not have closed yesterday (expired its tickets, restarted its
numbers) on its way to being refused. Through `HubApp.handle` and on the core alone."""

from __future__ import annotations

import datetime as dt

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import DayClosed
from onewindow.hub.core.model import TicketState
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.protocol import ow_protocol as proto

from .catalogs import centre, small_catalog

CST = dt.timezone(dt.timedelta(hours=8))
MON = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()
TUE = MON + 86400


def hub() -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t1", (WindowSpec(1), WindowSpec(2))))
    return HubApp(core, Registry([DeviceSpec("kp-1", "keypad", 1), DeviceSpec("kp-2", "keypad", 2),
                                  DeviceSpec("box-1", "box")]), "boot1")


def send(app: HubApp, dev: str, seq: int, typ: str, now: float, **fields):
    step = app.handle(proto.device_topic("t1", dev, "evt"),
                      proto.encode("evt", proto.event(dev, seq, typ, **fields)), now)
    errs = [proto.decode("err", p.payload) for p in step.publishes if p.topic.endswith("/err")]
    return step, errs


def monday(app: HubApp) -> list:
    """Three tickets, one called at window 1, one served at window 2, one waiting."""
    records = []
    for seq, item in enumerate(("SOC-1", "SOC-1", "MED-1"), start=1):
        records += send(app, "box-1", seq, "take", MON, item=item)[0].records
    records += send(app, "kp-1", 1, "open", MON, clerk="alice")[0].records
    records += send(app, "kp-2", 1, "open", MON, clerk="bob")[0].records
    records += send(app, "kp-1", 2, "call", MON + 60)[0].records
    records += send(app, "kp-2", 2, "call", MON + 70)[0].records
    records += send(app, "kp-2", 3, "start", MON + 80)[0].records
    return records


@pytest.mark.parametrize("dev,typ,fields,code", [
    ("box-1", "take", {"item": "NOPE-1"}, "unknown_item"),
    ("kp-1", "resume", {}, "not_paused"),
    ("box-1", "reprint", {"ticket": "B001"}, "unknown_ticket"),  # yesterday's
])
def test_a_refused_first_command_of_the_day_leaves_yesterday_as_it_was(dev, typ, fields, code):
    app = hub()
    records = monday(app)
    before, pos = app.centre.to_dict(), app.pos
    step, errs = send(app, dev, 10, typ, TUE, **fields)
    assert [e["code"] for e in errs] == [code]
    assert step.records == []  # nothing journaled
    assert app.pos == pos
    assert app.centre.to_dict() == before  # yesterday not closed, nothing expired
    assert app.centre.find_ticket("B001").state is TicketState.WAITING
    # The next accepted command closes Monday, once, journaled with it; a replay agrees.
    step, errs = send(app, "box-1", 11, "take", TUE, item="SOC-1")
    assert errs == [] and len(step.records) == 1
    assert app.centre.day == "20261124"
    assert app.centre.find_ticket("A001").day == "20261124"  # numbers restarted
    again = hub()
    again.replay(records + step.records)
    assert again.centre.to_dict() == app.centre.to_dict()


def test_the_core_rolls_over_only_with_a_command_it_accepts():
    core = centre(now=MON)
    core.apply(c.TakeTicket("SOC-1"), MON)
    core.apply(c.TakeTicket("SOC-1", resident="r1"), MON)
    core.apply(c.ReserveBlock("box-1", ("A",), 5), MON)
    core.apply(c.CallNext(1), MON + 10)
    before = core.to_dict()
    for bad in (c.CallNext(9), c.Recall(1), c.TakeTicket("SOC-1", priority="vip"),
                c.Reprint("A001")):
        with pytest.raises(Rejected):
            core.apply(bad, TUE)
        assert core.to_dict() == before
    effects = core.apply(c.TakeTicket("SOC-1", resident="r1"), TUE)
    [closed] = [e for e in effects if isinstance(e, DayClosed)]
    assert closed.day == "20261123" and len(closed.expired) == 2
    assert core.to_dict()["active_by_resident"] == [["r1", "SOC-1", "20261124-A001"]]


def test_to_dict_holds_every_part_of_the_state():
    core = centre(now=MON)
    core.apply(c.TakeTicket("SOC-1", resident="r1"), MON)
    core.apply(c.ReserveBlock("box-1", ("A",), 5), MON)
    d = core.to_dict()
    for key in ("day", "serial", "streak", "counters", "blocks", "offline_next",
                "active_by_resident", "by_number", "tickets", "queue", "windows", "cases",
                "ratings"):
        assert key in d, key
    assert d["offline_next"] == {"A": 906}
    assert d["by_number"] == {"A001": "20261123-A001"}
