"""Issue 16: supervisors switch admission control (off / warn / stop) from the dashboard.
The switch is journaled with who did it (`{op: "admission_mode", mode, by}`), takes effect on
the next take, is shown on the dashboard (state and page), and survives a restart: a replay
of the journal and a snapshot both bring it back. Clerks (and technicians) get 403; a bad
mode 400, nothing changed. [admission] stop_quantile is read from centre.toml."""

from __future__ import annotations

import pytest

from onewindow.hub.app import HubApp
from onewindow.hub.app import admission as gate
from onewindow.hub.config import ConfigError, from_dict
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.rejected import Rejected
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.forecast import admission as adm

from .test_admission import CLOSE, OPEN, app, evt, late_day
from .test_staff_http import Env


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    steps = []
    e.site.port.subscribe(steps.append)
    e.steps = steps
    yield e
    e.site.accounts.close()


def records(env):
    return [r for s in env.steps for r in s.records]


def fresh(env) -> HubApp:
    """The same centre, restarted: a new app from nothing."""
    return HubApp(Centre(env.hub.centre.catalog, env.hub.centre.config),
                  Registry([DeviceSpec("kp-1", "keypad", 1)]), "b2")


def test_a_supervisor_switches_it_journaled_with_who_and_shown_on_the_dashboard(env):
    env.now = OPEN + 3600
    env.act(c.OpenWindow(1, "wang"))
    sup = env.client("sup")
    assert sup.get("/dashboard/state").json()["admission"]["switched"] is None
    page = sup.get("/dashboard", headers={"accept": "text/html"}).text
    assert "按 centre.toml 配置" in page and 'id="adm-form"' in page
    r = sup.post("/dashboard/admission", json={"mode": "stop"})
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "stop" and r.json()["configured"] == "warn"
    assert r.json()["switched"]["by"] == "sup" and r.json()["switched"]["at"] == env.now
    [rec] = [x for x in records(env) if x.body["op"] == "admission_mode"]
    assert rec.body == {"op": "admission_mode", "mode": "stop", "by": "sup"}
    assert gate.mode(env.hub) == "stop" and gate.quantile(env.hub) == adm.STOP_QUANTILE
    s = sup.get("/dashboard/state").json()["admission"]
    assert s["mode"] == "stop" and s["switched"]["at_text"]
    page = sup.get("/dashboard", headers={"accept": "text/html"}).text
    assert 'data-mode="stop"' in page and "切换人 sup" in page
    assert "停止：不再取号，引导预约" in page


def test_clerks_and_technicians_cannot_switch_it_and_a_bad_mode_changes_nothing(env):
    for user in ("clerk1", "tech"):
        r = env.client(user, window=1 if user == "clerk1" else None).post(
            "/dashboard/admission", json={"mode": "off"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    sup = env.client("sup")
    for bad in ({"mode": "strict"}, {"mode": None}, {}, {"mode": ["stop"]}):
        r = sup.post("/dashboard/admission", json=bad)
        assert r.status_code == 400 and r.json()["code"] == "bad_mode", bad
    assert records(env) == [] and gate.mode(env.hub) == "warn"
    assert env.hub.admission_switch is None


def test_the_switch_survives_a_restart_by_replay_and_by_snapshot(env):
    env.now = OPEN + 60
    sup = env.client("sup")
    assert sup.post("/dashboard/admission", json={"mode": "off"}).status_code == 200
    env.now += 60
    env.act(c.TakeTicket("SOC-001"))
    env.now += 60
    assert sup.post("/dashboard/admission", json={"mode": "stop"}).status_code == 200
    journal = records(env)
    replayed = fresh(env)
    replayed.replay(journal)
    assert gate.mode(replayed) == "stop"
    assert replayed.admission_switch == {"mode": "stop", "by": "sup", "at": env.now}
    restored = fresh(env)
    restored.restore(env.hub.snapshot())
    assert restored.admission_switch == env.hub.admission_switch
    # an older snapshot (before the switch existed) restores as configured
    old = env.hub.snapshot()
    del old["app"]["admission_switch"]
    older = fresh(env)
    older.restore(old)
    assert older.admission_switch is None and gate.mode(older) == "warn"


def test_a_switch_to_stop_refuses_the_next_late_take_and_back_to_off_issues_it():
    a, _, at = late_day("warn")
    a.operate(gate.SetAdmission("stop", "li"), at)
    assert gate.verdict(a, "SOC-1", at) == "late"  # (as the kiosk asks before a take)
    step = evt(a, "box-1", 1, "take", at + 1, item="SOC-1")
    assert step.records == []  # refused: day_full
    a.operate(gate.SetAdmission("off", "li"), at + 2)
    step = evt(a, "box-1", 2, "take", at + 3, item="SOC-1")
    assert step.records and "adm" not in step.records[0].body
    with pytest.raises(Rejected):
        a.operate(gate.SetAdmission("loose", "li"), at + 4)
    with pytest.raises(Rejected):
        a.operate(gate.SetAdmission("stop", ""), at + 4)
    assert gate.mode(a) == "off"


def test_each_mode_judges_on_its_quantile():
    a = app("warn")
    assert gate.quantile(a) == adm.HIGH
    a.admission_stop_quantile = 0.5
    a.operate(gate.SetAdmission("stop", "li"), OPEN)
    assert gate.quantile(a) == 0.5
    assert CLOSE > OPEN


BASE = {"centre": {"id": "t1"}, "windows": [{"number": 1}]}


def test_stop_quantile_config():
    assert from_dict(BASE).admission_stop_quantile == adm.STOP_QUANTILE
    cfg = from_dict({**BASE, "admission": {"mode": "stop", "stop_quantile": 0.5}})
    assert cfg.admission == "stop" and cfg.admission_stop_quantile == 0.5
    for bad in (0.05, 0.95, "0.5", True):
        with pytest.raises(ConfigError, match=r"\[admission\] stop_quantile"):
            from_dict({**BASE, "admission": {"stop_quantile": bad}})
