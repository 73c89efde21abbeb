"""The front door, the icon and the headings over HTTP (the hub's app in-process, Starlette's
TestClient; issue 18): `/` sends residents, the hall screen and each staff role where they
belong (a logged-in user's own page first), in zh-CN, zh-TW and English; `/favicon.ico` is
the OneWindow mark and every page links it; every page has a heading (<h1>) that says what
it is; the QR codes carry their text."""

from __future__ import annotations

import re

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.devices import Device, DeviceSpec

from .test_staff_http import PAGE, Env

H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S)
ROLE_PAGES = {"clerk": "/console", "specialist": "/specialist", "supervisor": "/dashboard",
              "technician": "/fleet", "backoffice": "/cases", "admin": "/accounts",
              "station": "/station"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("landing"))
    e.hub.registry.devices["kiosk-1"] = Device(DeviceSpec("kiosk-1", "kiosk"))
    e.act(c.OpenWindow(1, "clerk1"))
    e.act(c.TakeTicket("SOC-001"))
    [e.ticket] = e.hub.centre.tickets.values()
    yield e
    e.site.accounts.close()


def heading(html: str) -> str:
    m = H1.search(html)
    assert m is not None, "no <h1>"
    return re.sub(r"<[^>]+>", "", m.group(1)).strip()


def test_the_front_door_sends_each_role_where_it_belongs(env):
    cl = env.client()
    r = cl.get("/", headers=PAGE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert heading(html) == env.hub.centre.catalog.name.zh
    for href in ("/remote", "/book", "/hall", "/kiosk?device=kiosk-1", "/login"):
        assert f'href="{href}"' in html, href
    for role, href in ROLE_PAGES.items():
        row = re.search(rf'<li data-role="{role}">(.*?)</li>', html, re.S)
        assert row is not None and f'href="{href}"' in row.group(1), role
    assert "手机远程取号" in html and "工作人员" in html and 'id="mine"' not in html
    en = cl.get("/?lang=en", headers=PAGE).text
    assert "Take a ticket from your phone" in en and "Staff" in en and heading(en) == \
        env.hub.centre.catalog.name.en
    tw = cl.get("/?lang=zh_TW", headers=PAGE).text
    assert "手機遠端取號" in tw and "工作人員" in tw


@pytest.mark.parametrize("user", ["clerk1", "sup", "tech", "back", "admin", "spec"])
def test_a_logged_in_user_gets_their_own_page_first(env, user):
    cl = env.client(user, window=1 if user == "admin" else None)
    html = cl.get("/", headers=PAGE).text
    m = re.search(r'<a class="button" href="([^"]+)" id="mine-link">', html)
    role = {"clerk1": "clerk", "sup": "supervisor", "tech": "technician", "back": "backoffice",
            "admin": "admin", "spec": "specialist"}[user]
    home = {"admin": "/dashboard"}.get(role, ROLE_PAGES[role])
    assert m is not None and m.group(1) == home
    # and that page answers the user
    assert cl.get(home, headers=PAGE, follow_redirects=False).status_code == 200


def test_the_favicon_is_served_and_linked(env):
    cl = env.client()
    r = cl.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.lstrip().startswith("<svg") and "<title>OneWindow</title>" in r.text
    for path in ("/", "/kiosk?device=kiosk-1", "/hall", "/login"):
        assert '<link rel="icon" href="/favicon.ico"' in cl.get(path, headers=PAGE).text, path


def test_every_page_has_a_heading(env):
    t = env.ticket
    k = "device=kiosk-1"
    public = {"/": None, f"/kiosk?{k}": None, f"/kiosk/line/social?{k}": None,
              f"/kiosk/item/SOC-001?{k}": None, f"/kiosk/search?q=社保&{k}": None,
              "/tips?items=SOC-001": None, f"/t/{t.id}": None, "/book": None,
              "/remote": None, "/kiosk/checkin": None, "/kiosk/pickup": None,
              "/login": "工作人员登录", "/hall": env.hub.centre.catalog.name.zh}
    cl = env.client()
    for path, want in public.items():
        r = cl.get(path, headers=PAGE)
        assert r.status_code == 200, (path, r.status_code)
        h = heading(r.text)
        assert h, path
        if want:
            assert h == want
    # the hall screen's heading is the centre's name in the screen's language, in its bar
    for lang, name in (("zh_TW", env.hub.centre.catalog.name.traditional),
                       ("en", env.hub.centre.catalog.name.en)):
        html = cl.get(f"/hall?lang={lang}", headers=PAGE).text
        assert heading(html) == name and html.count("<h1") == 1, lang
        assert re.search(r'<header class="bar">\s*<h1 class="centre">', html), lang
    staff = {"sup": ("/dashboard", "/fleet", "/cases", "/dashboard/followups",
                     "/stations/handovers", "/department"),
             "clerk1": ("/console",), "spec": ("/specialist",), "admin": ("/accounts",)}
    for user, paths in staff.items():
        cl = env.client(user, window=1 if user == "admin" else None)
        for path in paths:
            r = cl.get(path, headers=PAGE)
            assert r.status_code == 200, (user, path, r.status_code)
            assert heading(r.text), path


def test_a_kiosk_ticket_s_qr_carries_its_text(env):
    cl = env.client()
    r = cl.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-001",
                                          "insist": True})
    assert r.status_code in (200, 201), r.text
    t = r.json()
    assert t["qr"].startswith('<svg role="img"')
    assert f"<title>{t['url']}</title>" in t["qr"]
    page = cl.get("/kiosk/item/SOC-001?device=kiosk-1", headers=PAGE).text
    assert 'id="t-url"' in page and 'id="tips-url"' in page  # the text beside each code


def test_the_accounts_page_names_roles_and_permissions_in_the_page_s_language(env):
    cl = env.client("admin", window=1)
    html = cl.get("/accounts", headers=PAGE).text
    assert '<td data-role="clerk">窗口人员</td>' in html
    assert '<option value="backoffice">后台审批</option>' in html
    row = re.search(r'<tr data-role="supervisor">(.*?)</tr>', html, re.S)
    assert row is not None and "监控大屏" in row.group(1) and "开关窗口、设置可办事项" in \
        row.group(1) and "windows.manage" not in row.group(1)
    tw = cl.get("/accounts?lang=zh_TW", headers=PAGE).text
    assert "開關窗口、設定可辦事項" in tw
