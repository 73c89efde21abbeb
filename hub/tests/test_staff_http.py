"""The staff side over HTTP (Starlette's TestClient, the hub's app in-process): logged out
gets the login page (pages) or 401 (everything else), each role is refused what it may not
do with 403, login is rate-limited, sessions expire on the hub's clock, and a clerk acts only
for their own window."""

import asyncio
import json
import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from argon2 import PasswordHasher

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.store.accounts import IDLE_S, Accounts
from onewindow.hub.store.files import FileStore
from onewindow.hub.web.app import create_app
from onewindow.hub.web.site import Site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

T0 = 1_795_500_000.0
PASSWORD = "password-1"
USERS = {"clerk1": ("clerk", 1), "clerk2": ("clerk", 2), "spec": ("specialist", None),
         "sup": ("supervisor", None), "tech": ("technician", None), "admin": ("admin", None),
         "back": ("backoffice", None)}
PAGE = {"accept": "text/html"}


class Env:
    def __init__(self, tmp_path, windows=(1, 2, 3)):
        self.now = T0
        cat = load_catalog(None)
        core = Centre(cat, CentreConfig("t", tuple(WindowSpec(n) for n in windows)))
        self.hub = HubApp(core, Registry([DeviceSpec("kp-1", "keypad", 1)]), "b")
        self.site = Site(self.hub, None, lambda: self.now)
        self.site.accounts = Accounts(f"sqlite:///{tmp_path}/hub.db",
                                      PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        for u, (role, window) in USERS.items():
            self.site.accounts.add(u, PASSWORD, role, window=window, now=T0)
        self.app = create_app(self.hub, FileStore(tmp_path / "files"), site=self.site,
                              clock=lambda: self.now)

    def act(self, cmd):
        # in a thread: a browser test earlier in the session may hold this thread's loop
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self.site.act(cmd)).result(timeout=10)

    def client(self, user=None, window=None):
        cl = TestClient(self.app)
        cl.get("/login")
        cl.headers["x-csrf-token"] = cl.cookies["ow_csrf"]
        if user is not None:
            r = login(cl, user, window=window)
            assert r.status_code == 303, r.text
        return cl


def login(cl, user, password=PASSWORD, window=None, next_=""):
    data = {"username": user, "password": password, "csrf": cl.cookies["ow_csrf"],
            "next": next_}
    if window is not None:
        data["window"] = str(window)
    return cl.post("/login", data=data, follow_redirects=False)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.site.accounts.close()


# (method, path, permission) for every staff route
ROUTES = [
    ("GET", "/console", "console"),
    ("GET", "/console/state", "console"),
    ("POST", "/console/call", "console"),
    ("POST", "/console/help", "console"),
    ("GET", "/specialist", "help.answer"),
    ("GET", "/specialist/state", "help.answer"),
    ("POST", "/specialist/answer", "help.answer"),
    ("GET", "/dashboard", "floor"),
    ("GET", "/dashboard/state", "floor"),
    ("POST", "/dashboard/windows/3/open", "windows.manage"),
    ("POST", "/dashboard/windows/3/skills", "windows.manage"),
    ("POST", "/dashboard/admission", "windows.manage"),
    ("GET", "/fleet", "fleet"),
    ("GET", "/fleet/state", "fleet"),
    ("GET", "/accounts", "accounts"),
    ("POST", "/accounts", "accounts"),
    ("POST", "/accounts/clerk2", "accounts"),
    ("GET", "/cases", "cases"),
    ("POST", "/cases/20261123-A001/closed", "cases"),
]
ALLOWED = {"clerk": {"console"}, "specialist": {"help.answer"},
           "supervisor": {"floor", "windows.manage", "fleet", "cases"}, "technician": {"fleet"},
           "backoffice": {"cases"},
           "admin": {"console", "help.answer", "floor", "windows.manage", "fleet", "accounts",
                     "cases"}}


def call(cl, method, path, **kw):
    if method == "GET":
        return cl.get(path, headers=PAGE, follow_redirects=False, **kw)
    return cl.post(path, json={}, follow_redirects=False, **kw)


def test_logged_out_pages_redirect_to_login_and_the_rest_gets_401(env):
    cl = env.client()
    for method, path, _ in ROUTES:
        r = call(cl, method, path)
        if method == "GET" and not path.endswith("/state"):
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next=")
            follow = cl.get(r.headers["location"], headers=PAGE)
            assert follow.status_code == 200 and 'name="password"' in follow.text
        else:
            r = cl.request(method, path, headers={"accept": "application/json"},
                           **({"json": {}} if method == "POST" else {}))
            assert r.status_code == 401, path
            assert r.json()["code"] == "login_required"
    for ch in ("staff-window/1", "staff-help", "staff-floor", "staff-fleet"):
        assert cl.get(f"/live/{ch}").status_code == 403


@pytest.mark.parametrize("user", sorted(USERS))
def test_each_role_is_refused_what_it_may_not_do(env, user):
    role = USERS[user][0]
    cl = env.client(user)
    for method, path, perm in ROUTES:
        r = call(cl, method, path)
        if perm in ALLOWED[role]:
            assert r.status_code not in (401, 403), (user, method, path, r.status_code)
        else:
            assert r.status_code == 403, (user, method, path, r.status_code)
            if method == "POST":
                assert r.json()["code"] == "forbidden"
            else:
                assert "无权访问" in r.text
    # live channels follow the same table
    channels = {"staff-help": "help.answer", "staff-floor": "floor", "staff-fleet": "fleet"}
    for ch, perm in channels.items():
        if perm not in ALLOWED[role]:
            assert cl.get(f"/live/{ch}").status_code == 403, (user, ch)


def test_a_clerk_acts_and_watches_only_their_own_window(env):
    env.act(c.TakeTicket("SOC-001"))
    cl = env.client("clerk1")
    assert cl.post("/console/open", json={"window": 1}).json()["window"]["clerk"] == "clerk1"
    assert cl.post("/console/call", json={"window": 2}).status_code == 403
    assert cl.get("/live/staff-window/2").status_code == 403
    r = cl.post("/console/call", json={"window": 1})
    assert r.status_code == 200 and r.json()["ticket"]["number"] == "A001"
    assert cl.get("/console/state?window=2").json()["window"]["number"] == 1  # ignored
    # the admin may use any window
    adm = env.client("admin")
    assert adm.get("/console/state?window=2").json()["window"]["number"] == 2
    assert adm.post("/console/open", json={"window": 2}).json()["window"]["clerk"] == "admin"


@pytest.fixture
def env5(tmp_path):
    e = Env(tmp_path, windows=(1, 2, 3, 4, 5))
    yield e
    e.site.accounts.close()


def test_a_console_action_acts_at_the_window_it_names_or_is_refused(env5):
    """Issue 13 (6): an admin logged in at window 3 who opens window 5's console and presses
    call must call at window 5, not at window 3. Every action names its window; one that
    names none, an unknown one or one the user may not act at is refused with a message
    (zh-CN first, then English) and changes nothing."""
    env = env5
    env.act(c.OpenWindow(3, "clerk3"))
    env.act(c.TakeTicket("SOC-001"))
    adm = env.client("admin", window=3)
    assert adm.post("/console/open", json={"window": 5}).json()["window"]["clerk"] == "admin"
    before = env.hub.centre.to_dict()
    for body, status, code in (({}, 400, "window_required"),
                               ({"window": ""}, 400, "window_required"),
                               ({"window": "五"}, 400, "window_required"),
                               ({"window": True}, 400, "window_required"),
                               ({"window": 9}, 404, "unknown_window")):
        r = adm.post("/console/call", json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        zh, _, en = r.json()["msg"].partition(" / ")
        assert zh and en and not zh.isascii() and en.isascii(), r.json()["msg"]
        assert env.hub.centre.to_dict() == before, body
    r = adm.post("/console/call", json={"window": 5})
    assert r.status_code == 200, r.text
    assert r.json()["window"]["number"] == 5 and r.json()["ticket"]["number"] == "A001"
    w3 = adm.get("/console/state?window=3").json()
    assert w3["window"]["state"] == "idle" and w3["ticket"] is None  # window 3 unchanged

    # a clerk acts only at their own window: refused with a reason, nothing changed
    env.act(c.TakeTicket("SOC-001"))
    env.act(c.OpenWindow(1, "clerk1"))
    clerk = env.client("clerk1")
    before = env.hub.centre.to_dict()
    for action in ("call", "open", "close", "pause", "help"):
        r = clerk.post(f"/console/{action}", json={"window": 3})
        assert r.status_code == 403 and r.json()["code"] == "not_your_window", r.text
        assert r.json()["window"] == 3 and r.json()["own"] == 1
        msg = r.json()["msg"]
        assert msg.index("3号窗口") < msg.index("window 3"), msg  # zh-CN first, English
        assert env.hub.centre.to_dict() == before
    assert not env.hub.centre.help_requests
    r = clerk.post("/console/call", json={"window": 1})
    assert r.status_code == 200 and r.json()["ticket"]["number"] == "A002"
    # the page words the refusal in its own language (staff.js fills in {n} and {own})
    def strings(lang):
        page = clerk.get(f"/console?lang={lang}", headers=PAGE).text
        return json.loads(re.search(r'id="ow-strings"[^>]*>(.*?)</script>', page, re.S)[1])

    assert strings("zh_CN")["err_not_your_window"] == (
        "无权操作{n}号窗口：您只能操作本人的{own}号窗口。")
    assert strings("en")["err_not_your_window"] == (
        "You may not act at window {n}: you act only at your own window {own}.")


def test_a_clerk_without_a_fixed_window_chooses_one_at_login(env, tmp_path):
    env.site.accounts.add("floater", PASSWORD, "clerk", now=T0)
    cl = env.client()
    r = login(cl, "floater")
    assert r.status_code == 400 and "ow_staff" not in r.cookies
    r = login(cl, "floater", window=9)
    assert r.status_code == 400
    assert login(cl, "floater", window=3).status_code == 303
    assert cl.get("/console/state").json()["window"]["number"] == 3


def test_login_is_rate_limited(env):
    cl = env.client()
    for _ in range(5):
        assert login(cl, "sup", "wrong-password").status_code == 401
    r = login(cl, "sup")  # even the right password, for now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    env.now += 301
    assert login(cl, "sup").status_code == 303


def test_sessions_expire_after_30_idle_minutes_and_logout_ends_them(env):
    cl = env.client("sup")
    assert cl.get("/dashboard/state").status_code == 200
    env.now += IDLE_S - 10
    assert cl.get("/dashboard/state").status_code == 200  # still active: renewed
    env.now += IDLE_S + 1
    assert cl.get("/dashboard/state").status_code == 401
    r = cl.get("/dashboard", headers=PAGE, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/dashboard"
    cl = env.client("sup")
    token = cl.cookies["ow_staff"]
    assert cl.post("/logout", follow_redirects=False).status_code == 303
    cl.cookies.set("ow_staff", token)  # a copied cookie is worthless after logout
    assert cl.get("/dashboard/state").status_code == 401


def test_login_redirects_only_within_the_site(env):
    cl = env.client()
    r = login(cl, "sup", next_="//evil.example/x")
    assert r.headers["location"] == "/dashboard"
    cl = env.client()
    r = login(cl, "sup", next_="/fleet")
    assert r.headers["location"] == "/fleet"


def test_login_needs_the_csrf_token(env):
    cl = TestClient(env.app)
    cl.get("/login")
    r = cl.post("/login", data={"username": "sup", "password": PASSWORD},
                follow_redirects=False)
    assert r.status_code == 403 and "ow_staff" not in r.cookies


def test_staff_pages_are_not_cached_or_framed(env):
    cl = env.client("admin")
    for path in ("/console", "/specialist", "/dashboard", "/fleet", "/accounts", "/cases"):
        r = cl.get(path, headers=PAGE)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path
    login_cookie = login(env.client(), "sup").headers["set-cookie"].lower()
    assert "httponly" in login_cookie and "samesite=lax" in login_cookie


def test_pages_render_in_both_languages(env):
    cl = env.client("admin")
    for path in ("/console", "/specialist", "/dashboard", "/fleet", "/accounts"):
        zh = cl.get(path + "?lang=zh_CN", headers=PAGE)
        en = cl.get(path + "?lang=en", headers=PAGE)
        assert zh.status_code == en.status_code == 200, path
        assert "退出" in zh.text and "Log out" in en.text


def test_supervisor_window_control_and_help_answer(env):
    sup = env.client("sup")
    r = sup.post("/dashboard/windows/3/open", json={})
    assert r.status_code == 200 and r.json()["windows"][2]["state"] == "idle"
    r = sup.post("/dashboard/windows/3/skills", json={"skills": ["medical"]})
    assert r.json()["windows"][2]["lines"] == ["medical"]
    assert sup.post("/dashboard/windows/3/skills", json={"skills": "x"}).status_code == 400
    assert sup.post("/dashboard/windows/3/close", json={}).status_code == 200
    assert sup.post("/dashboard/windows/3/close", json={}).json()["code"] == "window_closed"
    clerk = env.client("clerk1")
    clerk.post("/console/open", json={"window": 1})
    assert clerk.post("/console/help", json={"window": 1}).status_code == 200
    assert clerk.post("/console/help", json={"window": 1}).json()["code"] == "help_pending"
    spec = env.client("spec")
    req = spec.get("/specialist/state").json()["open"][0]
    assert req["window"] == 1 and req["clerk"] == "clerk1"
    env.now += 42
    r = spec.post("/specialist/answer", json={"request": req["request"]})
    assert r.status_code == 200 and r.json()["answer_s"] == 42.0 and r.json()["by"] == "spec"
    assert spec.post("/specialist/answer",
                     json={"request": req["request"]}).json()["code"] == "already_answered"
    h = clerk.get("/console/state").json()["help"]
    assert h["by"] == "spec" and h["answer_s"] == 42.0


def test_admin_manages_accounts(env):
    adm = env.client("admin")
    r = adm.post("/accounts", json={"username": "newbie", "password": PASSWORD,
                                    "role": "clerk", "window": "2", "display": "新人"})
    assert r.status_code == 201 and r.json()["window"] == 2
    assert adm.post("/accounts", json={"username": "newbie", "password": PASSWORD,
                                       "role": "clerk"}).status_code == 400
    cl = env.client("newbie")
    assert cl.get("/console/state").json()["window"]["number"] == 2
    assert adm.post("/accounts/newbie", json={"active": False}).json()["active"] is False
    assert cl.get("/console/state").status_code == 401  # disabled: its session is gone
    assert adm.post("/accounts/admin", json={"active": False}).status_code == 400


def test_back_office_returns_corrects_closes_and_reopens_promised_items(env):
    """The back office acts on cases the windows accepted; every action is the core's
    CaseUpdate (journalled) and a wrong state or unknown case changes nothing."""
    promised = next(i for i in env.hub.centre.catalog.items.values() if i.kind == "promised")
    env.act(c.OpenWindow(1, "S1"))
    env.act(c.TakeTicket(promised.id))
    env.act(c.CallNext(1))
    env.act(c.Complete(1))
    [case] = env.hub.centre.cases.values()
    cl = env.client("back")
    page = cl.get("/cases", headers=PAGE)
    assert page.status_code == 200 and case.id in page.text and promised.name.zh in page.text
    assert 'data-action="returned"' in page.text and 'data-action="reopened"' not in page.text

    r = cl.post(f"/cases/{case.id}/returned", json={"reason": "缺少户口簿复印件",
                                                     "materials": [0][:len(promised.materials)]})
    assert r.status_code == 200 and r.json()["state"] == "returned"
    assert r.json()["actions"] == ["resubmitted", "reassigned"]
    before = env.hub.centre.to_dict()
    for path, code, status in ((f"/cases/{case.id}/closed", "bad_case_state", 409),
                               ("/cases/19990101-Z999/closed", "unknown_case", 404),
                               (f"/cases/{case.id}/approve", "bad_field", 409)):
        r = cl.post(path, json={})
        assert r.status_code == status and r.json()["code"] == code, (path, r.text)
    assert cl.post(f"/cases/{case.id}/corrected", json={"reason": "x" * 201}).status_code == 400
    assert env.hub.centre.to_dict() == before  # refused: nothing changed
    for action, state in (("resubmitted", "open"), ("corrected", "open"), ("closed", "closed"),
                          ("reopened", "open")):
        r = cl.post(f"/cases/{case.id}/{action}", json={})
        assert r.status_code == 200 and r.json()["state"] == state, (action, r.text)
    assert env.hub.centre.cases[case.id].state == "open"


def test_fleet_alerts_on_the_fleet_page_and_the_dashboard(env):
    sup = env.client("sup")
    assert sup.get("/fleet/state").json()["alerts"] == []
    env.now += 61  # kp-1 never came: offline since the hub started (60 s by default)
    fleet = sup.get("/fleet/state").json()
    assert fleet["alerts"] == [{"dev": "kp-1", "what": "offline", "state": "unknown",
                                "seconds": 61}]
    assert fleet["devices"][0]["online"] is False and fleet["devices"][0]["offline_s"] == 61
    floor_alerts = sup.get("/dashboard/state").json()["alerts"]
    assert {"kind": "device", "dev": "kp-1", "what": "offline", "state": "unknown",
            "seconds": 61} in floor_alerts
    topic = f"ow/{env.hub.centre_id}/dev/kp-1/status"
    env.hub.handle(topic, b'{"v": 1, "dev": "kp-1", "state": "ready", "seq": 0}', env.now)
    fleet = sup.get("/fleet/state").json()
    assert fleet["alerts"] == [] and fleet["online"] == 1
