"""The city's features in the core (issue 20, hub/core/city.py): a case accepted at centre
A, approved at B's back office, collected at C; only the authority changes a linked case;
a message delivered twice, late or out of order changes a centre once; the city's catalog
refused when bad (kept journaled), put in place at a day's close when good; and every
centre's state after all that equals its journal replayed and its snapshot restored."""

import copy
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.hub.core import city
from onewindow.hub.core import commands as c
from onewindow.hub.core.catalog import Catalog
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.effects import TicketIssued
from onewindow.hub.core.pickup import PickupTicket
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.core.snapshot import centre_state, restore_centre

from .catalogs import SMALL

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=CST).timestamp()  # a Monday, 09:00
TOKEN = "r" * 32


def catalog_data() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(SMALL)
    data["departments"] = [{"id": d, "zh": z, "en": e} for d, z, e in (
        ("soc", "社保科", "Social"), ("med", "医保科", "Medical"), ("civ", "民政科", "Civil"),
        ("pension", "养老科", "Pensions"))]
    for item in data["items"]:
        if item["id"] == "SOC-2":
            item["department"] = "pension"
    return data


class Node:
    """One centre's core and its journal (the accepted commands, with their times)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.core = Centre(Catalog.from_dict(catalog_data()),
                           CentreConfig(name, (WindowSpec(1, "comprehensive"),)))
        self.journal: list[tuple[dict[str, Any], float]] = []

    def do(self, cmd: c.Command, now: float) -> list[Any]:
        effects = self.core.apply(cmd, now)
        self.journal.append((json.loads(json.dumps(cmd.to_record())), now))
        return effects

    def replayed(self) -> Centre:
        fresh = Centre(Catalog.from_dict(catalog_data()), self.core.config)
        for rec, now in self.journal:
            fresh.apply(c.from_record(rec), now)
        return fresh

    def restored(self) -> Centre:
        fresh = Centre(Catalog.from_dict(catalog_data()), self.core.config)
        restore_centre(fresh, json.loads(json.dumps(centre_state(self.core))))
        return fresh


def accept(a: Node, now: float = T0) -> str:
    a.do(c.OpenWindow(1, clerk="wang"), now)
    effects = a.do(c.TakeTicket("SOC-2", resident=TOKEN), now)
    tid = next(e.ticket for e in effects if isinstance(e, TicketIssued))
    a.do(c.CallNext(1), now + 1)
    a.do(c.Complete(1), now + 60)
    return tid


def send(src: Node, key: str, dst: Node, now: float) -> bool:
    """Deliver the source's current version of `key` to `dst`: True if taken."""
    msg = city.outgoing(src.core, key)
    assert msg is not None
    try:
        dst.do(city.arrival(json.loads(json.dumps(msg))), now)
    except Rejected as e:
        assert e.code == "city_repeat"
        return False
    return True


def same_state(n: Node) -> None:
    assert n.replayed().to_dict() == n.core.to_dict()
    assert n.restored().to_dict() == n.core.to_dict()


def test_a_case_accepted_at_a_approved_at_b_collected_at_c() -> None:
    a, b, cc = Node("A"), Node("B"), Node("C")
    case = accept(a)
    a.do(city.CityRoute(case, "B", "C", ("d" * 64,)), T0 + 70)
    key = f"A/{case}"
    assert [k.key for k in a.core.city.unsent()] == [key]
    assert city.recipients(a.core, key) == ("B", "C")
    a.do(city.CitySent(key, 1), T0 + 71)
    assert a.core.city.unsent() == []
    assert send(a, key, b, T0 + 72) and send(a, key, cc, T0 + 72)
    assert not send(a, key, b, T0 + 73)  # delivered twice: taken once
    local_b = b.core.city.links[key].local
    assert local_b.endswith("-c0001") and b.core.cases[local_b].department == "pension"
    # Only the authority acts: A's back office cannot approve what B's holds.
    with pytest.raises(Rejected) as e:
        a.do(c.CaseUpdate(case, "approved", by="li"), T0 + 80)
    assert e.value.code == "city_elsewhere"
    before = cc.core.to_dict()
    with pytest.raises(Rejected):
        cc.do(PickupTicket((cc.core.city.links[key].local,), "SOC-1", "card", TOKEN), T0 + 81)
    assert cc.core.to_dict() == before
    b.do(c.CaseUpdate(local_b, "approved", by="zhao"), T0 + 3600)
    assert b.core.city.links[key].version == 2
    assert send(b, key, a, T0 + 3601) and send(b, key, cc, T0 + 3601)
    assert a.core.cases[case].state == "ready"
    # At C, a card tap finds it (the card's token only) and the pick-up window hands it over.
    local_c = cc.core.city.links[key].local
    assert [k.id for k, _ in city.open_cases(cc.core, TOKEN)] == [local_c]
    cc.do(c.OpenWindow(1, clerk="sun"), T0 + 7200)
    cc.do(PickupTicket((local_c,), "SOC-1", "card", TOKEN), T0 + 7200)
    cc.do(c.CallNext(1), T0 + 7201)
    cc.do(c.CaseUpdate(local_c, "handed_over", by="card"), T0 + 7210)
    assert not send(b, key, cc, T0 + 7211)  # B's older version, late: changes nothing
    assert send(cc, key, a, T0 + 7220) and send(cc, key, b, T0 + 7220)
    for n in (a, b, cc):
        k = n.core.cases[n.core.city.links[key].local]
        assert (k.state, k.handed_by, n.core.city.links[key].version) == ("closed", "card", 3)
        same_state(n)
    # Closed and acknowledged cases leave memory at the day's close; unacknowledged stay.
    a.do(c.TakeTicket("SOC-1"), T0 + 86400)
    assert case not in a.core.cases
    cc.do(c.TakeTicket("SOC-1"), T0 + 86400)
    assert local_c in cc.core.cases  # C's version 3 is not acknowledged yet
    cc.do(city.CitySent(key, 3), T0 + 86401)
    for n in (a, cc):
        same_state(n)


def test_a_message_must_concern_the_centre_and_name_its_origin() -> None:
    a, b = Node("A"), Node("B")
    case = accept(a)
    a.do(city.CityRoute(case, "B", "A"), T0 + 70)
    msg = city.outgoing(a.core, f"A/{case}")
    assert msg is not None
    for bad in ({**msg, "pickup": "B", "approver": "X", "origin": "Z"},
                {**msg, "origin": "Z"}, {**msg, "version": 0},
                {**msg, "fields": {**msg["fields"], "item": "NOPE"}},
                {**msg, "by": "B"}):
        with pytest.raises(Rejected):
            b.do(city.arrival(bad), T0 + 80)
    assert b.core.city.links == {} and b.core.cases == {}
    with pytest.raises(Rejected) as e:
        a.do(city.CityRoute(case, "B", "C"), T0 + 90)
    assert e.value.code == "city_routed"


SCRIPT = (("B", "returned", 1), ("A", "resubmitted", 2), ("B", "approved", 3),
          ("C", "handed_over", 4))  # (the authority, its action, the version it acts on)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["A", "B", "C"])),
                max_size=30),
       st.integers(0, len(SCRIPT)))
def test_deliveries_in_any_order_repeated_or_late_converge(order: list[tuple[str, str]],
                                                           steps: int) -> None:
    """Versions written by each authority in turn (route at A, return at B, resubmission
    at A, approval at B, hand-over at C), delivered in a random order with repeats, then
    each writer's latest delivered once more: every centre ends with the latest version
    and state, and each state equals its replay and its snapshot."""
    nodes = {n: Node(n) for n in "ABC"}
    case = accept(nodes["A"])
    nodes["A"].do(city.CityRoute(case, "B", "C"), T0 + 70)
    key = f"A/{case}"
    t = T0 + 100
    latest: dict[str, dict[str, Any]] = {"A": city.outgoing(nodes["A"].core, key) or {}}
    done = 0

    def deliver(src: str, dst: str) -> None:
        if src == dst or src not in latest:
            return
        try:
            nodes[dst].do(city.arrival(latest[src]), t)
        except Rejected as e:
            assert e.code == "city_repeat"

    def act() -> None:
        nonlocal done
        if done >= steps:
            return
        who, action, at = SCRIPT[done]
        link = nodes[who].core.city.links.get(key)
        if link is None or link.version != at:
            return
        reason = "复印件不清晰" if action == "returned" else ""
        nodes[who].do(c.CaseUpdate(link.local, action, reason, by="card" if who == "C"
                                   else "zhao"), t)
        latest[who] = city.outgoing(nodes[who].core, key) or {}
        done += 1

    for src, dst in order:
        t += 10
        deliver(src, dst)
        act()
    for _ in range(len(SCRIPT)):  # the outboxes send again what they hold: all catch up
        for src in "ABC":
            for dst in "ABC":
                t += 10
                deliver(src, dst)
                act()
    top = max(n.core.city.links[key].version for n in nodes.values())
    assert top == 1 + done
    for n in nodes.values():
        assert n.core.city.links[key].version == top
        same_state(n)
    states = {n.core.cases[n.core.city.links[key].local].state for n in nodes.values()}
    assert len(states) == 1


def test_catalog_bad_refused_and_kept_good_applied_at_the_days_close() -> None:
    a = Node("A")
    accept(a)
    bad = catalog_data()
    bad["items"] = [i for i in bad["items"] if i["id"] != "SOC-2"]  # a held case's item
    a.do(city.CatalogOffer("2026.2", bad), T0 + 100)
    assert a.core.city.catalog_refused is not None
    assert a.core.city.catalog_refused[0] == "2026.2"
    assert "SOC-2" in a.core.city.catalog_refused[1]
    a.do(city.CatalogOffer("2026.3", {"items": "nonsense"}), T0 + 110)
    assert a.core.city.catalog_refused[0] == "2026.3"
    good = catalog_data()
    good["items"].append({**good["items"][0], "id": "SOC-9", "zh": "新事项", "en": "New"})
    a.do(city.CatalogOffer("2026.4", good), T0 + 120)
    with pytest.raises(Rejected):
        a.do(city.CatalogOffer("2026.4", good), T0 + 121)  # the same version again
    assert a.core.city.catalog_version == "" and "SOC-9" not in a.core.catalog.items
    with pytest.raises(Rejected):
        a.do(c.TakeTicket("SOC-9"), T0 + 130)  # not before the day's close
    a.do(c.TakeTicket("SOC-9"), T0 + 86400)  # the next day: in place
    assert a.core.city.catalog_version == "2026.4"
    assert "SOC-9" in a.core.windows[1].skills
    same_state(a)


def test_the_origin_holding_the_contact_makes_the_ready_notice_due() -> None:
    """The resident gave a number at A; B approves; A (not B) calls for the notice, naming
    no pick-up window of A's when the result is collected at C."""
    from onewindow.hub.core import notices
    from onewindow.hub.core.pickup import CaseContact

    a, b = Node("A"), Node("B")
    case = accept(a)
    a.do(CaseContact(case, "p1.sealed-number"), T0 + 65)
    a.do(city.CityRoute(case, "B", "C"), T0 + 70)
    key = f"A/{case}"
    send(a, key, b, T0 + 72)
    b.do(c.CaseUpdate(b.core.city.links[key].local, "approved", by="zhao"), T0 + 3600)
    assert city.notice_changes(b.core, [{"op": "case"}]) == []
    assert send(b, key, a, T0 + 3601)
    rec = a.journal[-1][0]
    assert city.notice_changes(a.core, [rec]) == [(case, "approved", False)]
    due = notices.case_due(a.core, [(case, "approved")], None, ("page", "sms"))
    assert [(d.case, d.kind, d.window) for d in due] == [(case, notices.READY, None)]
    a.do(due[0], T0 + 3602)
    same_state(a)


def test_a_return_for_correction_goes_back_to_the_origin_with_new_documents() -> None:
    """B returns the case; the resident brings the corrected materials to A, whose window
    holds it while it is returned: A adds the new document and resubmits; B has both."""
    a, b = Node("A"), Node("B")
    case = accept(a)
    d1, d2 = "1" * 64, "2" * 64
    a.do(city.CityRoute(case, "B", "A", (d1,)), T0 + 70)
    key = f"A/{case}"
    send(a, key, b, T0 + 71)
    local_b = b.core.city.links[key].local
    b.do(c.CaseUpdate(local_b, "returned", reason="复印件不清晰", by="zhao"), T0 + 600)
    assert send(b, key, a, T0 + 601) and a.core.cases[case].state == "returned"
    assert city.notice_changes(a.core, [a.journal[-1][0]]) == [(case, "returned", True)]
    with pytest.raises(Rejected) as e:  # the materials come back to A, not to B
        b.do(c.CaseUpdate(local_b, "resubmitted", by="zhao"), T0 + 700)
    assert e.value.code == "city_elsewhere"
    a.do(city.CityDocuments(case, (d1, d2)), T0 + 800)
    assert [k.key for k in a.core.city.unsent()] == [key]  # the new document, not yet sent
    with pytest.raises(Rejected):
        a.do(city.CityDocuments(case, (d2,)), T0 + 801)  # nothing new
    b.do(city.CityDocsArrive(key, (d1, d2)), T0 + 802)
    with pytest.raises(Rejected) as e:
        b.do(city.CityDocsArrive(key, (d2,)), T0 + 803)
    assert e.value.code == "city_repeat"
    a.do(city.CityDocsSent(key, 2), T0 + 804)
    a.do(c.CaseUpdate(case, "resubmitted", by="wang"), T0 + 900)
    assert send(a, key, b, T0 + 901)
    assert b.core.cases[local_b].state == "open"
    assert b.core.city.links[key].documents == (d1, d2)
    for n in (a, b):
        same_state(n)
