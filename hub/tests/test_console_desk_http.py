"""Issue 18, the clerk console's desk over HTTP (the hub's app in process, the real routes,
sessions and CSRF): the next tickets this window would call, in the policy's order, with
their marks; a ticket called out of turn with a reason (the record names reason, note and
clerk; refusals say why and change nothing); a pause with its reason code; the page with
its shortcut keys and reason lists in each language."""

from __future__ import annotations

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.core import desk

from .test_staff_http import Env


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.site.accounts.close()


def tid(env, number):
    return env.hub.centre.by_number[number].id


def test_next_up_call_out_of_turn_and_pause_with_a_reason(env):
    steps = []
    env.site.port.subscribe(steps.append)
    for _ in range(5):
        env.act(c.TakeTicket("SOC-001"))
    env.act(c.TakeTicket("SOC-001", priority="priority"))
    env.act(c.OpenWindow(1, "clerk1"))
    env.now += 600
    cl = env.client("clerk1")
    s = cl.get("/console/state").json()
    nxt = s["queue"]["next"]
    # the policy's order (ratio: the priority ticket first), at least 5, with marks
    assert [u["number"] for u in nxt][:3] == [nxt[0]["number"], "A001", "A002"]
    assert nxt[0]["priority"] == "priority" and len(nxt) == 6
    assert all(u["waited_min"] == 10.0 and u["item"] == "SOC-001" and u["zh"] for u in nxt)
    assert {"appointment_at", "targeted"} <= set(nxt[0])
    # a booking due now goes first, with its slot
    env.act(c.TakeTicket("SOC-001", priority="appointment", appointment_at=env.now))
    nxt = cl.get("/console/state").json()["queue"]["next"]
    assert (nxt[0]["priority"], nxt[0]["appointment_at"]) == ("appointment", env.now)
    assert len(nxt) == 7

    a4 = tid(env, "A004")
    r = cl.post("/console/call_ticket", json={"window": 1, "ticket": a4,
                                               "reason": "returned_materials"})
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["number"] == "A004"
    assert "A004" not in [u["number"] for u in r.json()["queue"]["next"]]
    assert steps[-1].records[0].body == {
        "op": "call_ticket", "window": 1, "ticket": a4, "reason": "returned_materials",
        "note": "", "by": "clerk1"}
    # "other" needs a note; the note is kept, trimmed
    a5 = tid(env, "A005")
    before = env.hub.centre.to_dict()
    bad = cl.post("/console/call_ticket", json={"window": 1, "ticket": a5, "reason": "other"})
    assert bad.status_code == 400 and bad.json()["code"] == "note_required"
    assert env.hub.centre.to_dict() == before
    ok = cl.post("/console/call_ticket", json={"window": 1, "ticket": a5, "reason": "other",
                                                "note": "  家属代办  "})
    assert ok.status_code == 200 and ok.json()["ticket"]["number"] == "A005"
    assert steps[-1].records[0].body["note"] == "家属代办"
    assert env.hub.centre.by_number["A004"].state.value == "done"  # finished first, as call

    # pause with a reason: shown on the window, journaled
    cl.post("/console/complete", json={"window": 1})
    r = cl.post("/console/pause", json={"window": 1, "reason": "lunch"})
    assert r.status_code == 200, r.text
    assert r.json()["window"]["state"] == "paused"
    assert r.json()["window"]["pause_reason"] == "lunch"
    assert steps[-1].records[0].body == {"op": "pause", "window": 1, "reason": "lunch"}
    assert cl.post("/console/resume", json={"window": 1}).json()["window"]["pause_reason"] is None
    bad = cl.post("/console/pause", json={"window": 1, "reason": "nap"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_reason"


def test_call_out_of_turn_refusals_say_why_and_change_nothing(env):
    for _ in range(3):
        env.act(c.TakeTicket("SOC-001"))
    env.act(c.OpenWindow(1, "clerk1"))
    env.act(c.OpenWindow(2, "clerk2"))
    env.act(c.CallNext(1))  # A001
    env.act(c.Transfer(1, to_window=2))  # A001 waits for window 2 only
    env.act(c.CallNext(1))  # A002 at window 1
    a1, a2, a3 = (tid(env, n) for n in ("A001", "A002", "A003"))
    clerk = env.client("clerk1")
    before = env.hub.centre.to_dict()
    cases = [
        (env.client(), {"window": 1, "ticket": a3, "reason": "booking_arrived"}, 401, None),
        (env.client("sup"), {"window": 1, "ticket": a3, "reason": "booking_arrived"}, 403,
         None),
        (clerk, {"window": 2, "ticket": a3, "reason": "booking_arrived"}, 403,
         "not_your_window"),
        (clerk, {"window": 1, "ticket": a1, "reason": "booking_arrived"}, 409,
         "not_for_window"),
        (clerk, {"window": 1, "ticket": a2, "reason": "booking_arrived"}, 409, "not_waiting"),
        (clerk, {"window": 1, "ticket": "A999", "reason": "booking_arrived"}, 409,
         "unknown_ticket"),
        (clerk, {"window": 1, "ticket": a3, "reason": "vip"}, 400, "bad_reason"),
        (clerk, {"window": 1, "ticket": a3}, 400, "bad_reason"),
        (clerk, {"window": 1, "ticket": a3, "reason": "other",
                 "note": "x" * (desk.NOTE_MAX + 1)}, 400, "bad_note"),
    ]
    for cl, body, status, code in cases:
        r = cl.post("/console/call_ticket", json=body, follow_redirects=False)
        assert r.status_code == status, (body, r.text)
        if code is not None:
            assert r.json()["code"] == code, r.text
        assert env.hub.centre.to_dict() == before, body
    r = clerk.post("/console/call_ticket", json={"window": 1, "ticket": a1,
                                                  "reason": "booking_arrived"})
    assert r.json()["window"] == 2 and r.json()["ticket"] == "A001"  # the facts it words


@pytest.mark.parametrize(("lang", "words"), [
    ("zh_CN", ["即将叫号", "指定叫号", "午休用餐", "补齐材料返回", "<kbd>F1</kbd>"]),
    ("zh_TW", ["即將叫號", "指定叫號", "午休用餐", "補齊材料返回", "<kbd>R</kbd>"]),
    ("en", ["Next up", "Call out of turn", "Lunch", "Came back with the materials",
            "<kbd>C</kbd>"]),
])
def test_the_page_lists_the_reasons_and_keys_in_its_language(env, lang, words):
    page = env.client("clerk1").get(f"/console?lang={lang}").text
    for w in words:
        assert w in page, (lang, w)
    assert 'src="/static/console_desk.js"' in page
