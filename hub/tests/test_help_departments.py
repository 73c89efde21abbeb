"""窗口吹哨 科室报到 (issue 17): a help call names a department and goes through answered,
arrived and resolved, each journaled with who and when; unanswered, it escalates to the
supervisors after [help] escalate_after_s; the department page shows a department its own
calls only, and refuses a step on another's.

Core (default department, records and replay, refusals), the keypad's event (with and
without the protocol's optional `department`), the escalation watcher over a port, the
console and department pages over HTTP (Starlette's TestClient, the hub in-process)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from onewindow.hub.app import HubApp, Step
from onewindow.hub.config import ConfigError, from_dict
from onewindow.hub.core import commands as c
from onewindow.hub.core import help_requests as hr
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.helpwatch import HelpWatch
from onewindow.hub.store.journal import Record
from onewindow.hub.web.port import MemoryPort
from onewindow.protocol import ow_protocol as proto

from .catalogs import small_catalog
from .test_staff_http import PASSWORD, T0, Env

DEPT_USERS = {"soc1": ("specialist", "social"), "med1": ("specialist", "medical"),
              "bosoc": ("backoffice", "social"), "nodept": ("specialist", None)}


def _core() -> Centre:
    core = Centre(small_catalog(), CentreConfig("t", (WindowSpec(1), WindowSpec(2))))
    for n in (1, 2):
        core.apply(c.OpenWindow(n, f"clerk{n}"), T0)
    return core


# ---- core -----------------------------------------------------------------------------------
def test_the_default_department_is_the_current_tickets_items():
    core = _core()
    assert hr.default_department(core, 1) is None  # nobody at the window: any department
    core.apply(c.TakeTicket("MED-1"), T0 + 1)
    core.apply(c.CallNext(1), T0 + 2)
    assert hr.default_department(core, 1) == "med"
    assert hr.default_department(core, 2) is None
    assert hr.default_department(core, 99) is None


def test_an_unknown_department_is_refused_and_changes_nothing():
    core = _core()
    before = core.to_dict()
    with pytest.raises(Rejected) as e:
        core.apply(hr.Help(1, "clerk1", request=5, department="nowhere"), T0)
    assert e.value.code == "unknown_department"
    assert "科室" in e.value.message and "department" in e.value.message
    assert core.to_dict() == before


def test_the_lifecycle_is_journaled_and_replays_to_the_same_state():
    core = _core()
    cmds = [hr.Help(1, "clerk1", request=3, department="soc"),
            hr.HelpAnswer(3, "soc1"), hr.HelpArrive(3, "soc1"), hr.HelpResolve(3, "soc1"),
            hr.Help(2, "clerk2", request=7), hr.HelpEscalate(7), hr.HelpArrive(7, "sup")]
    records = []
    for k, cmd in enumerate(cmds):
        core.apply(cmd, T0 + 10 * k)
        pos = cmd.request if isinstance(cmd, hr.Help) else 100 + k
        records.append((pos, json.loads(json.dumps(cmd.to_record())), T0 + 10 * k))
    h = core.help_requests[3]
    assert (h.department, h.answered_at, h.by, h.arrived_at, h.arrived_by, h.resolved_at,
            h.resolved_by) == ("soc", T0 + 10, "soc1", T0 + 20, "soc1", T0 + 30, "soc1")
    g = core.help_requests[7]  # escalated, then someone came without answering first
    assert (g.department, g.escalated_at, g.answered_at, g.arrived_at, g.by) == (
        None, T0 + 50, T0 + 60, T0 + 60, "sup")
    # The records hold who, and nothing that a replay would decide again.
    assert records[0][1] == {"op": "help", "window": 1, "clerk": "clerk1", "department": "soc"}
    assert records[5][1] == {"op": "help_escalate", "request": 7}
    again = _core()
    for pos, body, ts in records:
        again.apply(hr.from_record(body, pos), ts)
    assert again.to_dict() == core.to_dict()


def test_an_old_help_record_replays_as_it_did():
    """A record from before departments has none: a call to any department, and its
    record is written the same way again."""
    body = {"op": "help", "window": 1, "clerk": "clerk1"}
    cmd = hr.from_record(body, 4)
    assert cmd == hr.Help(1, "clerk1", request=4) and cmd.to_record() == body
    core = _core()
    core.apply(cmd, T0)
    assert core.help_requests[4].department is None


@pytest.mark.parametrize("cmd,code", [
    (hr.HelpResolve(1, "x"), "not_answered"), (hr.HelpAnswer(9, "x"), "unknown_request"),
    (hr.HelpArrive(9, "x"), "unknown_request"), (hr.HelpEscalate(9), "unknown_request")])
def test_steps_out_of_order_are_refused_and_change_nothing(cmd, code):
    core = _core()
    core.apply(hr.Help(1, "clerk1", request=1, department="soc"), T0)
    before = core.to_dict()
    with pytest.raises(Rejected) as e:
        core.apply(cmd, T0 + 5)
    assert e.value.code == code and core.to_dict() == before


def test_escalation_is_due_after_the_configured_time_once():
    core = _core()
    core.apply(hr.Help(1, "clerk1", request=1, department="soc"), T0)
    core.apply(hr.Help(2, "clerk2", request=2, department="med"), T0 + 30)
    assert hr.due_escalations(core, 60, T0 + 59) == []
    assert hr.next_escalation(core, 60) == T0 + 60
    assert hr.due_escalations(core, 60, T0 + 60) == [hr.HelpEscalate(1)]
    core.apply(hr.HelpEscalate(1), T0 + 60)
    core.apply(hr.HelpAnswer(2, "med1"), T0 + 80)  # answered in time: never escalates
    assert hr.due_escalations(core, 60, T0 + 1000) == []
    assert hr.next_escalation(core, 60) is None


def test_help_escalate_after_s_is_read_from_the_centre_config():
    base = {"centre": {"id": "t"}, "windows": [{"number": 1}]}
    assert from_dict(base).help_escalate_after_s == 120.0
    assert from_dict({**base, "help": {"escalate_after_s": 5}}).help_escalate_after_s == 5.0
    for bad in ({"escalate_after_s": 0}, {"escalate_after_s": "soon"}, {"after": 3}):
        with pytest.raises(ConfigError, match=r"\[help\]"):
            from_dict({**base, "help": bad})


# ---- a keypad's help key ----------------------------------------------------------------------
def _hub() -> HubApp:
    return HubApp(_core(), Registry([DeviceSpec("kp-1", "keypad", 1)]), "b")


def _press(app: HubApp, seq: int, now: float, **fields: object) -> list:
    step = app.handle(proto.device_topic("t", "kp-1", "evt"),
                      proto.encode("evt", proto.event("kp-1", seq, "help", **fields)), now)
    return step.records


def test_a_keypads_help_calls_the_current_items_department_or_the_one_it_names():
    app = _hub()
    app.handle(proto.device_topic("t", "kp-1", "status"), json.dumps(
        {"v": 1, "dev": "kp-1", "state": "ready", "role": "keypad", "window": 1}).encode(), T0)
    app.centre.apply(c.TakeTicket("SOC-1"), T0)
    app.centre.apply(c.CallNext(1), T0)
    recs = _press(app, 1, T0 + 1)  # as every keypad sends it: no department
    assert [r.body for r in recs] == [{"op": "help", "window": 1, "clerk": "clerk1",
                                       "department": "soc"}]
    assert app.centre.help_requests[recs[0].pos].department == "soc"
    recs = _press(app, 2, T0 + 2, department="med")
    assert recs[0].body["department"] == "med"
    before, pos = app.centre.to_dict(), app.pos
    assert _press(app, 3, T0 + 3, department="nowhere") == []  # refused: err, no record
    assert app.centre.to_dict() == before and app.pos == pos


# ---- the escalation watcher -------------------------------------------------------------------
def test_the_watch_journals_escalations_when_due_and_not_before():
    app = _hub()
    now = [T0]
    port = MemoryPort(app, lambda: now[0])
    watch = HelpWatch(app, port, 20.0, lambda: now[0])

    async def go() -> list[float]:
        waits = []
        await port.submit(hr.Help(1, "clerk1", department="soc"))
        waits.append(await watch.escalate_due())
        now[0] += 19
        waits.append(await watch.escalate_due())
        now[0] += 1
        waits.append(await watch.escalate_due())
        return waits

    with ThreadPoolExecutor(1) as pool:
        waits = pool.submit(asyncio.run, go()).result(timeout=10)
    assert waits[:2] == [20.0, 1.0]  # sleeps until the call falls due
    (h,) = app.centre.help_requests.values()
    assert h.escalated_at == T0 + 20 and watch.escalated == 1
    assert waits[2] == 30.0  # nothing left to escalate: looks again later


def test_the_watch_wakes_after_help_steps_and_rebuilds_not_after_every_step():
    """Each committed step with a help record (or an empty one: a rebuild) brings the
    watch's deadline forward at once; a call, a take, a window's operation do not wake it
    (at ~300 calls a second they did, each)."""
    app = _hub()
    watch = HelpWatch(app, MemoryPort(app, lambda: T0), 20.0, lambda: T0)
    for op in ("call", "take", "complete", "open"):
        watch._on_step(Step([Record(1, T0, "kp-1", 1, {"op": op, "window": 1})]))
        assert not watch._kick.is_set()
    for op in hr.OPS:
        watch._on_step(Step([Record(1, T0, None, None, {"op": "call", "window": 1}),
                             Record(2, T0, "kp-1", 1, {"op": op, "request": 1})]))
        assert watch._kick.is_set()
        watch._kick.clear()
    watch._on_step(Step())
    assert watch._kick.is_set()


# ---- over HTTP ----------------------------------------------------------------------------------
@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    for u, (role, dept) in DEPT_USERS.items():
        e.site.accounts.add(u, PASSWORD, role, department=dept, now=T0)
    yield e
    e.site.accounts.close()


def _serve_soc_at_window_1(env) -> object:
    clerk = env.client("clerk1")
    clerk.post("/console/open", json={"window": 1})
    env.act(c.TakeTicket("SOC-001"))
    clerk.post("/console/call", json={"window": 1})
    return clerk


def test_a_console_call_reaches_its_department_and_not_another(env):
    clerk = _serve_soc_at_window_1(env)
    state = clerk.get("/console/state").json()
    assert state["help_department"] == "social"
    r = clerk.post("/console/help", json={"window": 1})  # no choice: the item's
    assert r.status_code == 200 and r.json()["help"]["department"] == "social"
    soc, med, bo = env.client("soc1"), env.client("med1"), env.client("bosoc")
    (call,) = soc.get("/department/state").json()["open"]
    assert call["window"] == 1 and call["state"] == "requested" and call["ticket"] == "A001"
    assert bo.get("/department/state").json()["open"][0]["request"] == call["request"]
    assert med.get("/department/state").json()["open"] == []
    # the live feeds: each department only its own; supervisors all
    assert env.client("med1").get("/live/staff-dept/social").status_code == 403
    assert env.client("clerk1").get("/live/staff-dept/social").status_code == 403
    assert [v["request"] for v in env.site.live.snapshot("staff-dept", "*")["open"]] == [
        call["request"]]
    assert env.site.live.snapshot("staff-dept", "medical")["open"] == []


def test_answering_another_departments_call_is_forbidden_and_changes_nothing(env):
    clerk = _serve_soc_at_window_1(env)
    clerk.post("/console/help", json={"window": 1, "department": "social"})
    (h,) = env.hub.centre.help_requests.values()
    before, pos = env.hub.centre.to_dict(), env.hub.pos
    med = env.client("med1")
    for step in ("answer", "arrived", "resolved"):
        r = med.post(f"/department/{step}", json={"request": h.request})
        assert r.status_code == 403 and r.json()["code"] == "not_your_department"
    assert env.hub.centre.to_dict() == before and env.hub.pos == pos
    assert med.post("/department/answer", json={"request": 999}).status_code == 404
    assert med.post("/department/answer", json={"request": "x"}).status_code == 400
    assert med.post("/department/fly", json={"request": h.request}).status_code == 404
    assert clerk.post("/department/answer", json={"request": h.request}).status_code == 403
    # nor through the older specialist console
    r = med.post("/specialist/answer", json={"request": h.request})
    assert r.status_code == 403 and r.json()["code"] == "not_your_department"
    assert env.hub.centre.to_dict() == before and env.hub.pos == pos


def test_a_department_answers_arrives_and_resolves_with_who_and_when(env):
    clerk = _serve_soc_at_window_1(env)
    clerk.post("/console/help", json={"window": 1})
    (h,) = env.hub.centre.help_requests.values()
    soc = env.client("soc1")
    assert soc.post("/department/resolved", json={"request": h.request}).json()[
        "code"] == "not_answered"
    for k, step in enumerate(("answer", "arrived", "resolved"), start=1):
        env.now = T0 + 30 * k
        r = soc.post(f"/department/{step}", json={"request": h.request})
        assert r.status_code == 200, r.text
    assert soc.post("/department/answer", json={"request": h.request}).json()[
        "code"] == "already_answered"
    done = soc.get("/department/state").json()
    assert done["open"] == [] and done["done"][0]["state"] == "resolved"
    g = env.hub.centre.help_requests[h.request]
    assert (g.answered_at, g.arrived_at, g.resolved_at) == (T0 + 30, T0 + 60, T0 + 90)
    assert g.by == g.arrived_by == g.resolved_by == "soc1"


def test_a_console_call_naming_an_unknown_department_is_refused(env):
    clerk = _serve_soc_at_window_1(env)
    before, pos = env.hub.centre.to_dict(), env.hub.pos
    r = clerk.post("/console/help", json={"window": 1, "department": "nowhere"})
    assert r.status_code == 400 and r.json()["code"] == "unknown_department"
    assert "科室" in r.json()["msg"] and "department" in r.json()["msg"]
    assert env.hub.centre.to_dict() == before and env.hub.pos == pos
    # "any department" is a choice too
    r = clerk.post("/console/help", json={"window": 1, "department": ""})
    assert r.status_code == 200 and r.json()["help"]["department"] is None


def test_supervisors_see_every_department_escalated_first(env):
    clerk = _serve_soc_at_window_1(env)
    clerk.post("/console/help", json={"window": 1, "department": "social"})
    env.act(hr.Help(2, "clerk2", department="medical"))
    first, second = env.hub.centre.help_requests
    env.now += 200
    env.act(hr.HelpEscalate(second))
    sup = env.client("sup")
    s = sup.get("/department/state").json()
    assert [v["request"] for v in s["open"]] == [second, first] and s["escalated"] == 1
    assert sup.post("/department/answer", json={"request": second}).status_code == 200
    none = env.client("nodept").get("/department/state").json()
    assert none["open"] == []  # calls to no department in particular only: none here


def test_the_department_page_in_three_languages(env):
    soc = env.client("soc1")
    for lang, word in (("zh_CN", "科室求助"), ("zh_TW", "科室求助"), ("en", "Department calls")):
        r = soc.get(f"/department?lang={lang}", headers={"accept": "text/html"})
        assert r.status_code == 200 and word in r.text, lang
    assert "社会保险" in soc.get("/department?lang=zh_CN", headers={"accept": "text/html"}).text
    r = env.client("clerk1").get("/department", headers={"accept": "text/html"})
    assert r.status_code == 403
