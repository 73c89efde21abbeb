"""The resident's side of the case loop in snapshots (hypothesis): test_snapshot's random
days of devices and back-office actions, with case contacts given, case notices made due
as the runner makes them (hub/app/notices.py `due_step`, after each step), pick-up
tickets asked by card and by code (forged ones too) from the button boxes, and cards
tapped at the windows (a pick-up ticket's hand-over). A snapshot taken anywhere, restored
and followed by the journal's tail equals the full replay, pick-ups and case notices
included."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.app.notices import due_step
from onewindow.hub.core import commands as c
from onewindow.hub.core import notices, pickup
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.store.journal import Record

from . import test_snapshot as base

KEY = b"k" * 32


def fresh() -> HubApp:
    """test_snapshot's centre with a pick-up item (SOC-1, at the comprehensive windows)
    and a code key."""
    core = Centre(base.CATALOG, CentreConfig("t1", tuple(WindowSpec(n, k)
                                                         for n, k in base.WINDOWS),
                                             pickup_item="SOC-1"))
    devices = [DeviceSpec(b, "box") for b in base.BOXES]
    devices += [DeviceSpec(f"kp-{n}", "keypad", n) for n, _ in base.WINDOWS]
    app = HubApp(core, Registry(devices), "boot1")
    app.booking_key = KEY
    return app


class Driver(base.Driver):
    def __init__(self) -> None:
        super().__init__()
        self.app = fresh()

    def keep(self, records: list[Record]) -> None:
        self.records += [Record(r.pos, r.ts, r.dev, r.seq, json.loads(json.dumps(r.body)))
                         for r in records]

    def act(self, cmd: object) -> None:
        with contextlib.suppress(Rejected):  # refused: nothing journaled, nothing changed
            self.keep(self.app.operate(cmd, self.now).records)  # type: ignore[arg-type]

    def notices_due(self, since: int) -> None:
        """What the runner journals after a step: the notices it made due."""
        step = due_step(self.app, notices.NoticeRules(), ("page", "sms"), self.now,
                        self.records[since:])
        self.keep(step.records)


def run(data: st.DataObject, d: Driver, n_ops: int) -> None:
    for _ in range(n_ops):
        since = len(d.records)
        kind = data.draw(st.sampled_from(["base"] * 6 + ["contact", "pickup", "code",
                                                         "ready"]))
        held = sorted(d.app.centre.cases)
        if kind == "base" or not held:
            base.run_ops(data, d, 1)
        elif kind == "contact":
            d.act(pickup.CaseContact(data.draw(st.sampled_from(held)), "p1.sealed",
                                     data.draw(st.sampled_from(["zh-CN", "en", "fr"]))))
        elif kind == "ready":  # the back office approves (often, so pick-ups happen)
            d.act(c.CaseUpdate(data.draw(st.sampled_from(held)), "approved", by="li"))
        elif kind == "pickup":
            box = data.draw(st.sampled_from(base.BOXES))
            d.send(box, "pickup", resident=data.draw(st.sampled_from(base.RESIDENTS)))
        else:
            box = data.draw(st.sampled_from(base.BOXES))
            case = data.draw(st.sampled_from(held))
            code = pickup.case_code(KEY, "t1", case)
            if data.draw(st.booleans()):
                code = code[:-1] + ("A" if code[-1] != "A" else "B")  # forged
            d.send(box, "pickup", code=code)
        d.notices_due(since)
        for r in d.records[since:]:  # what the strategy reached (hypothesis statistics)
            event(f"{r.body.get('op')} {r.body.get('action') or r.body.get('kind') or ''}")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_restore_plus_tail_equals_a_full_replay_with_pickups_and_case_notices(data):
    d = Driver()
    run(data, d, data.draw(st.integers(40, 200)))
    records = d.records
    full = fresh()
    full.replay(records)
    assert full.centre.to_dict() == d.app.centre.to_dict()
    base.assert_restore_plus_tail_equals(full, records, data, d.now, make=fresh)
