"""Pre-review state (a ticket's review and return, the day's kiosk turn-aways) in snapshots:
restore(snapshot at a cut) + replay(the journal after it) equals a full replay, across
midnights, for random journals of kiosk takes with and without materials, residents
leaving at the kiosk, clerks returning tickets for materials and every refusal on the way.
The journals come from the real app (`HubApp.operate`) and the snapshots go through the
store's codec, as in test_snapshot.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.prereview import PreReview, ReturnForMaterials
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.store import snapshot as snap_mod
from onewindow.hub.store.journal import Record
from onewindow.hub.store.snapshot import decode, encode

CATALOG = load_catalog()
T0 = dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
ITEMS = ("SOC-001", "SOC-002", "MED-001", "CIV-001")
RESIDENTS = ("r1", "r2", None)


def fresh() -> HubApp:
    core = Centre(CATALOG, CentreConfig("t", (WindowSpec(1), WindowSpec(2))))
    return HubApp(core, Registry([DeviceSpec("kiosk-1", "kiosk")]), "boot1")


def keys(item: str) -> list[str]:
    return [f"{item}.{k}" for k in range(len(CATALOG.items[item].materials))] + [f"{item}.9"]


def journal(data, n_ops: int) -> tuple[list[Record], HubApp]:
    app, now, records = fresh(), T0, []
    for _ in range(n_ops):
        now += data.draw(st.floats(1.0, 1800.0))
        kind = data.draw(st.sampled_from(["take"] * 3 + ["serve"] * 3 + [
            "left", "return", "complete", "midnight"]))
        n = data.draw(st.sampled_from([1, 2]))
        item = data.draw(st.sampled_from(ITEMS))
        cmd: c.Command | None = None
        if kind == "take":
            review = None
            if data.draw(st.booleans()):
                ks = keys(item)
                review = {"ticked": data.draw(st.lists(st.sampled_from(ks), max_size=3)),
                          "missing": data.draw(st.lists(st.sampled_from(ks), max_size=2)),
                          "tips": data.draw(st.booleans()),
                          "insisted": data.draw(st.booleans())}
            cmd = c.TakeTicket(item, resident=data.draw(st.sampled_from(RESIDENTS)),
                               source="kiosk-1", review=review)
        elif kind == "serve":
            for x in (c.OpenWindow(n, "wang"), c.CallNext(n), c.Start(n)):
                with contextlib.suppress(Rejected):  # an open window, nobody waiting, ...
                    records += app.operate(x, now).records
        elif kind == "left":
            cmd = PreReview((item,), (), tuple(data.draw(st.lists(
                st.sampled_from(keys(item)), max_size=2))), data.draw(st.booleans()),
                "kiosk-1")
        elif kind == "return":
            w = app.centre.windows[n]
            t = app.centre.tickets.get(w.ticket) if w.ticket else None
            ks = keys(t.item) if t is not None else keys(item)
            cmd = ReturnForMaterials(n, tuple(data.draw(st.lists(st.sampled_from(ks),
                                                                  max_size=2))), "wang")
        elif kind == "complete":
            cmd = c.Complete(n)
        else:
            now += data.draw(st.floats(10 * 3600, 30 * 3600))
        if cmd is not None:
            before = app.centre.to_dict()
            try:
                records += app.operate(cmd, now).records
                event(f"{kind} accepted")
            except Rejected as e:
                event(f"{kind} refused: {e.code}")
                assert app.centre.to_dict() == before  # refused: nothing changed
    return [Record(r.pos, r.ts, r.dev, r.seq, json.loads(json.dumps(r.body)))
            for r in records], app


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_restore_plus_tail_equals_a_full_replay(data):
    records, live = journal(data, data.draw(st.integers(10, 80)))
    full = fresh()
    full.replay(records)
    assert full.centre.to_dict() == live.centre.to_dict()
    cut = data.draw(st.integers(0, len(records)))
    upto = fresh()
    upto.replay(records[:cut])
    stored, _ = encode(upto.snapshot())
    restored = fresh()
    restored.restore(decode(stored, hashlib.sha256(stored).hexdigest(), snap_mod.CODEC))
    restored.replay(records[cut:])
    assert restored.centre.to_dict() == full.centre.to_dict()


def test_a_snapshot_from_before_pre_review_restores_with_none():
    app = fresh()
    app.operate(c.TakeTicket("SOC-001", source="kiosk-1"), T0)
    doc = json.loads(json.dumps(app.snapshot()))
    inner = doc["centre"]
    inner.pop("kiosk_left", None)
    for t in inner["tickets"].values():
        for k in ("review", "returned", "returned_by"):
            t.pop(k)
    restored = fresh()
    restored.restore(doc)
    assert restored.centre.kiosk_left == (0, 0)
    [t] = restored.centre.tickets.values()
    assert (t.review, t.returned, t.returned_by) == (None, (), None)
    assert restored.centre.to_dict() == app.centre.to_dict()
