"""The number given for a promised case's notices (`case_contact`, sealed) under
`onewindow purge` (hub/store/retention.py): removed once the record's day is past
`resident_days` and the case is closed, kept while the case is in progress; the purged
journal replays to the state the rewritten snapshot holds (the contact stays, without a
number)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from onewindow.hub.app import HubApp
from onewindow.hub.core import commands as c
from onewindow.hub.core import pickup
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.store import retention
from onewindow.hub.store.journal import Journal
from onewindow.hub.store.snapshot import SnapshotStore

from .catalogs import small_catalog

TZ = dt.timezone(dt.timedelta(hours=8))
DAY = 86400.0
NOW = dt.datetime(2027, 6, 1, 10, 0, tzinfo=TZ).timestamp()
OLD = NOW - 200 * DAY  # past resident_days (180)
CLOSED_PHONE, OPEN_PHONE, RECENT_PHONE = "p1.closed-case", "p1.open-case", "p1.recent-case"


def fresh() -> HubApp:
    core = Centre(small_catalog(), CentreConfig("t", (WindowSpec(1),)))
    return HubApp(core, Registry([]), "b1")


def test_a_case_contacts_number_goes_after_the_case_and_replay_agrees(tmp_path: Path):
    j = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    app = fresh()

    def op(cmd: c.Command, at: float) -> None:
        j.append(app.operate(cmd, at).records)

    def accepted(at: float) -> str:
        op(c.TakeTicket("SOC-2"), at)
        tid = next(reversed(app.centre.tickets.values())).id
        op(c.CallNext(1), at + 10)
        op(c.Complete(1), at + 300)
        return tid

    op(c.OpenWindow(1, "wang"), OLD)
    closed, still_open = accepted(OLD + 100), accepted(OLD + 1000)
    op(pickup.CaseContact(closed, CLOSED_PHONE), OLD + 400)
    op(pickup.CaseContact(still_open, OPEN_PHONE), OLD + 1400)
    op(c.CaseUpdate(closed, "approved", by="li"), OLD + DAY)
    op(c.CaseUpdate(closed, "handed_over", by="card"), OLD + 2 * DAY)
    recent = accepted(NOW - 10 * DAY + 100)  # another day: the closed case left memory
    op(pickup.CaseContact(recent, RECENT_PHONE), NOW - 10 * DAY + 400)
    op(c.CaseUpdate(recent, "closed", by="li"), NOW - 10 * DAY + 500)
    SnapshotStore(j.engine).save(app.snapshot())

    p = retention.plan(j, app.centre.cases.values(), tmp_path / "files",
                       retention.Retention(), NOW)
    assert p.phone_set == {CLOSED_PHONE}  # not the open case's, not the recent record's
    retention.purge(j, p, retention.Retention(), NOW)

    bodies = {r.body.get("case"): r.body for r in j.read() if r.body["op"] == "case_contact"}
    assert bodies[closed]["phone"] is None and bodies[closed]["purged"]
    assert bodies[still_open]["phone"] == OPEN_PHONE
    assert bodies[recent]["phone"] == RECENT_PHONE
    replayed = fresh()
    replayed.replay([r for r in j.read() if r.body["op"] != retention.OP])
    assert still_open in replayed.centre.contacts
    assert replayed.centre.contacts[still_open].phone == OPEN_PHONE
    # the snapshot rewritten: the restored state equals the purged journal's replay
    restored = fresh()
    restored.restore(next(SnapshotStore(j.engine).candidates()))
    assert restored.centre.contacts == replayed.centre.contacts
    assert closed not in restored.centre.contacts  # it left with its case
    text = "".join(str(r.body) for r in j.read()) + str(next(SnapshotStore(
        j.engine).candidates()))
    assert CLOSED_PHONE not in text and OPEN_PHONE in text and RECENT_PHONE in text
    j.close()
