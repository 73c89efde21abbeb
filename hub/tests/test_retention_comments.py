"""A resident's comment on a rating is free text: it may hold a name or a phone number. Once
the rating's day is past `resident_days`, `onewindow purge` blanks it in the journal's rate
record and in the snapshots (the follow-up a low rating opened keeps an empty comment), the
score stays, and the rewritten snapshot and a replay of the purged journal agree."""

from __future__ import annotations

import datetime as dt
import json

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import Registry
from onewindow.hub.store.journal import Journal
from onewindow.hub.store.retention import Retention, plan, purge
from onewindow.hub.store.snapshot import SnapshotStore

CST = dt.timezone(dt.timedelta(hours=8))
MON = dt.datetime(2026, 11, 23, tzinfo=CST)
OLD_WORDS = "张三 13812345678 态度很差"
NEW_WORDS = "办得很慢"


def at(h: int, m: int = 0, day: int = 0) -> float:
    return (MON + dt.timedelta(days=day, hours=h, minutes=m)).timestamp()


def fresh() -> HubApp:
    return HubApp(Centre(load_catalog(), CentreConfig("r", (WindowSpec(1),))), Registry([]), "b")


def served_and_rated(app: HubApp, j: Journal, day: int, words: str) -> None:
    steps: list[tuple[c.Command, float]] = [
        (c.TakeTicket("SOC-001"), at(9, 1, day)), (c.CallNext(1), at(9, 2, day)),
        (c.Start(1), at(9, 3, day)), (c.Complete(1), at(9, 10, day))]
    if not app.centre.windows[1].clerk:
        steps.insert(0, (c.OpenWindow(1, "wang"), at(9, day=day)))
    for cmd, t in steps:
        j.append(app.operate(cmd, t).records)
    ticket = max(app.centre.tickets.values(), key=lambda t: t.serial).id
    j.append(app.operate(c.Rate(1, ticket, 1, scale=5, comment=words), at(9, 11, day)).records)


def test_old_comments_are_blanked_in_the_journal_and_snapshots_and_replay_agrees(tmp_path):
    app, j = fresh(), Journal(f"sqlite:///{tmp_path / 'j.db'}")
    served_and_rated(app, j, -200, OLD_WORDS)  # past 180 days by the purge
    served_and_rated(app, j, 0, NEW_WORDS)
    assert OLD_WORDS in json.dumps(app.snapshot(), ensure_ascii=False)  # the open follow-up
    SnapshotStore(j.engine).save(app.snapshot())
    p = plan(j, [], tmp_path / "files", Retention(), at(12))
    assert p.comments == 1
    purge(j, p, Retention(), at(12))
    raw = json.dumps([r.body for r in j.read()], ensure_ascii=False)
    assert OLD_WORDS not in raw and NEW_WORDS in raw
    rates = [r.body for r in j.read() if r.body["op"] == "rate"]
    assert [r["score"] for r in rates] == [1, 1] and rates[0]["comment"] == ""
    [stored] = list(SnapshotStore(j.engine).candidates())
    assert OLD_WORDS not in json.dumps(stored, ensure_ascii=False)
    replayed = fresh()
    replayed.replay([r for r in j.read() if r.body["op"] != "purge"])
    restored = fresh()
    restored.restore(stored)
    assert replayed.centre.to_dict() == restored.centre.to_dict()
    [purge_record] = [r.body for r in j.read() if r.body["op"] == "purge"]
    assert purge_record["comments"] == 1
    j.close()
